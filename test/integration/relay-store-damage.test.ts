/**
 * The relay's store is never silently replaced: with its CURRENT file gone,
 * LevelDB's default (createIfMissing) would make a new empty database and
 * delete the old tables, losing every admitted user and all acknowledged
 * offline mail. The relay refuses to start with ERR_STORE_CORRUPT and says
 * what to do; `parley-relay repair` brings the store back.
 */
import { it } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { removeDir, tmpDir } from '../helpers/nodes.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { ParleyError } from '../../core/errors.js'
import { createLogger } from '../../core/util/log.js'
import { PEER_A } from '../unit/helpers/peer-ids.js'

const CLI = new URL('../../bin/parley-relay.js', import.meta.url).pathname
const relay = (dataDir: string): RelayServer =>
  new RelayServer({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], allow: [] }, createLogger('test', 'error'))

it('relay: a missing CURRENT refuses the start (nothing replaced); parley-relay repair brings the users back', async () => {
  const dir = await tmpDir('parley-relay-damage-')
  try {
    const first = relay(dir)
    await first.start()
    await first.mailbox.admit(PEER_A, 'allow-list')
    const peerId = first.peerId
    await first.stop()
    // a clean stop leaves the data in a table: then only CURRENT is gone
    const again = relay(dir); await again.start(); await again.stop()
    await rm(join(dir, 'db', 'CURRENT'))
    const before = (await readdir(join(dir, 'db'))).sort()
    await assert.rejects(relay(dir).start(), (err: unknown) => {
      assert.ok(err instanceof ParleyError)
      assert.equal(err.code, 'ERR_STORE_CORRUPT')
      assert.match(err.message, /the relay's store in .*db is damaged \(its CURRENT file is missing\)\. Nothing was changed\. .*`parley-relay repair --data /)
      return true
    })
    assert.deepEqual((await readdir(join(dir, 'db'))).sort(), before, 'no new database made over the old one')
    const repaired = spawnSync(process.execPath, [CLI, 'repair', '--data', dir], { encoding: 'utf8', timeout: 60_000 })
    assert.equal(repaired.status, 0, repaired.stderr)
    assert.match(repaired.stdout, /repaired/)
    const back = relay(dir)
    await back.start()
    try {
      assert.equal(back.peerId, peerId, 'same relay identity')
      assert.equal(back.mailbox.isAdmitted(PEER_A), true, 'the admitted user is still there')
    } finally {
      await back.stop()
    }
  } finally {
    await removeDir(dir)
  }
})
