/**
 * A damaged store is never silently replaced. For each kind of damage (missing
 * CURRENT, truncated log, garbage in the log, zeroed table, garbage MANIFEST,
 * the whole db/ gone) Ann's node either refuses to start with
 * ERR_STORE_CORRUPT (and `parley doctor --repair` makes it startable) or
 * reports the loss at start; either way she keeps her identity (the key file),
 * and what she lost comes back from Bob by sync.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { connect, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { describeReport, doctor } from '../../node/src/cli/doctor.js'
import { ParleyError } from '../../core/errors.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { StoredMessage } from '../../node/src/store/types.js'
import type { StoreHealthView } from '../../node/src/api/contract.js'
import { sameSlots } from '../helpers/slots.js'

const N = 4
const CLI = new URL('../../bin/parley.js', import.meta.url).pathname
const cli = (args: string[]): { status: number | null, stdout: string, stderr: string } =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PARLEY_LOG: 'error' } })

interface Scene { dir: string, annDir: string, bob: ParleyNode, annId: string, sent: StoredMessage[], cleanup: () => Promise<void> }

/** Ann and Bob exchange N messages each; Ann stops cleanly (with `toTable`, after a restart that moves her log into a table). */
async function scene (toTable: boolean): Promise<Scene> {
  const dir = await tmpDir('parley-damage-')
  const annDir = join(dir, 'ann')
  const ann = loopbackNode(annDir, { name: 'Ann' })
  const bob = loopbackNode(join(dir, 'bob'), { name: 'Bob' })
  await ann.start(); await bob.start()
  await connect(ann, bob)
  const sent: StoredMessage[] = []
  for (let i = 0; i < N; i++) {
    sent.push(await ann.messenger.sendMessage(bob.peerId, `ann ${i}`))
    sent.push(await bob.messenger.sendMessage(ann.peerId, `bob ${i}`))
  }
  for (const m of sent) await (m.author === ann.peerId ? ann : bob).messenger.waitForState(m.id, 'delivered', { signal: AbortSignal.timeout(10_000) })
  const annId = ann.peerId
  await ann.stop()
  if (toTable) {
    const again = loopbackNode(annDir, { name: 'Ann', host: { peers: [] } })
    await again.start()
    await again.stop()
  }
  return { dir, annDir, bob, annId, sent, cleanup: async () => { await bob.stop(); await removeDir(dir) } }
}

async function withScene (toTable: boolean, fn: (s: Scene) => Promise<void>): Promise<void> {
  const s = await scene(toTable)
  try { await fn(s) } finally { await s.cleanup() }
}

/** Overwrites `length` bytes of `file` from `at` with `byte`. */
async function garble (file: string, byte: number, at: number, length: number): Promise<void> {
  const bytes = await readFile(file)
  bytes.fill(byte, at, Math.min(bytes.length, at + length))
  await writeFile(file, bytes)
}

const dbFile = async (s: Scene, test: (f: string) => boolean): Promise<string> => {
  const f = (await readdir(join(s.annDir, 'db'))).find(test)
  assert.ok(f !== undefined, 'the damaged file exists')
  return join(s.annDir, 'db', f)
}

async function refusesToStart (s: Scene): Promise<void> {
  const ann = loopbackNode(s.annDir, { name: 'Ann' })
  await assert.rejects(ann.start(), (err: unknown) => {
    assert.ok(err instanceof ParleyError)
    assert.equal(err.code, 'ERR_STORE_CORRUPT')
    assert.match(err.message, /parley doctor --data .* --repair/)
    return true
  })
  // nothing was made over it: the store is still not startable, the same files are there
  await assert.rejects(loopbackNode(s.annDir).start(), (err: unknown) => (err as ParleyError).code === 'ERR_STORE_CORRUPT')
}

/** GET /status of an in-process node, through its local API (what the UI reads for its banner). */
async function storeStatus (node: ParleyNode, dataDir: string): Promise<StoreHealthView> {
  const token = (await readFile(join(dataDir, 'api-token'), 'utf8')).trim()
  const res = await fetch(`http://127.0.0.1:${node.apiPort ?? 0}/v1/status`, { headers: { authorization: `Bearer ${token}` } })
  assert.equal(res.status, 200)
  return ((await res.json()) as { store: StoreHealthView }).store
}

/**
 * Ann starts, keeps her identity, says at start what was damaged if `damaged`.
 * A message she sends before Bob is back is accepted; after damage it is held
 * until Bob reported what he holds of hers. After sync she holds every message
 * of both again, and nothing of hers reused a sequence number.
 */
async function recovers (s: Scene, damaged: boolean, lossy: boolean): Promise<void> {
  const ann = loopbackNode(s.annDir, { name: 'Ann' })
  await ann.start()
  try {
    assert.equal(ann.peerId, s.annId, 'same identity')
    assert.equal(ann.storeReport.damaged, damaged, ann.storeReport.reasons.join('; '))
    const before = await ann.messenger.history(s.bob.peerId)
    if (lossy) assert.ok(before.length < 2 * N, `messages were lost (${before.length} of ${2 * N} left)`)
    else assert.equal(before.length, 2 * N)
    // the loss is counted (against what the last clean stop recorded), not said to be 0
    assert.equal(ann.storeReport.lost, damaged ? 2 * N - before.length : 0)
    assert.deepEqual(ann.storeReport.uncounted, [])
    // the same report in the local API, for the UI's banner; her numbers are being checked with Bob
    const status = await storeStatus(ann, s.annDir)
    assert.equal(status.damaged, damaged)
    assert.equal(status.lost, ann.storeReport.lost)
    assert.equal(status.checking, damaged)
    if (damaged) assert.ok(status.reasons.length > 0 && status.kept === before.length, JSON.stringify(status))
    const early = await ann.messenger.sendMessage(s.bob.peerId, 'while Bob is away')
    assert.equal(early.held === true, damaged, 'held until reconciled exactly when damage was found')
    await connect(ann, s.bob)
    await until(async () => {
      const h = await ann.messenger.history(s.bob.peerId)
      return s.sent.every(m => h.some(x => x.id === m.id && x.text === m.text && x.seq === m.seq))
    }, 'every message (Ann\'s own too) back in Ann\'s history', 15_000)
    const delivered = await ann.messenger.waitForState(early.id, 'delivered', { signal: AbortSignal.timeout(15_000) })
    const later = await ann.messenger.sendMessage(s.bob.peerId, 'after')
    await ann.messenger.waitForState(later.id, 'delivered', { signal: AbortSignal.timeout(15_000) })
    // reconciled with Bob, her only colleague: nothing waits any more
    assert.equal((await storeStatus(ann, s.annDir)).checking, false)
    const top = Math.max(...s.sent.filter(m => m.author === s.annId).map(m => m.seq))
    assert.ok(delivered.seq > top, `the held message went out above Ann's old numbers (${delivered.seq} > ${top})`)
    const histories: Record<string, StoredMessage[]> = {}
    for (const node of [ann, s.bob]) {
      const h = await node.messenger.history(node === ann ? s.bob.peerId : s.annId)
      assert.deepEqual(h.filter(m => m.state === 'failed').map(m => m.error), [], 'nothing failed')
      const annSeqs = h.filter(m => m.author === s.annId).map(m => m.seq)
      assert.equal(annSeqs.length, N + 2)
      histories[node.messenger.name] = h
    }
    // no sequence number used twice, across the two nodes (one id per slot, one slot per id)
    sameSlots(histories)
  } finally {
    await ann.stop()
  }
}

describe('damaged store', () => {
  it('missing CURRENT: refuses to start; doctor --repair recovers everything', async () => await withScene(true, async (s) => {
    await rm(join(s.annDir, 'db', 'CURRENT'))
    await refusesToStart(s)
    // the CLI says it in words, with the exit codes scripts can test
    const start = cli(['start', '--data', s.annDir, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', '0'])
    assert.equal(start.status, 1)
    assert.match(start.stderr, /ERR_STORE_CORRUPT: the message store in .* is damaged \(its CURRENT file is missing\)\. Nothing was changed\. Run `parley doctor/)
    const check = cli(['doctor', '--data', s.annDir])
    assert.equal(check.status, 1)
    assert.match(check.stdout, /message store: damaged\n {2}- LevelDB cannot open it/)
    assert.match(check.stdout, /run `parley doctor --data .* --repair` to repair it/)
    const found = await doctor(s.annDir, false)
    assert.equal(found.store, 'damaged')
    const fixed = await doctor(s.annDir, true)
    assert.equal(fixed.store, 'repaired')
    assert.equal(fixed.messages, 2 * N)
    assert.equal(fixed.lost, 0)
    assert.equal(fixed.repair?.filesLost, 0)
    await recovers(s, true, false)
  }))

  it('truncated log: the loss is reported at start and the lost messages come back from Bob', async () => await withScene(false, async (s) => {
    const log = await dbFile(s, f => f.endsWith('.log'))
    await truncate(log, Math.floor((await stat(log)).size / 2))
    await recovers(s, true, true)
  }))

  it('a start that fails after finding the damage (API port taken) leaves it to the next start, count and all', async () => await withScene(false, async (s) => {
    const log = await dbFile(s, f => f.endsWith('.log'))
    await truncate(log, Math.floor((await stat(log)).size / 2))
    const taken = createServer()
    await new Promise<void>(resolve => { taken.listen(0, '127.0.0.1', resolve) })
    try {
      const port = (taken.address() as AddressInfo).port
      await assert.rejects(loopbackNode(s.annDir, { name: 'Ann', apiPort: port }).start())
    } finally {
      taken.close()
    }
    await recovers(s, true, true)
  }))

  it('garbage in the log: LevelDB drops the damaged records, the node says so and gets them back', async () => await withScene(false, async (s) => {
    const log = await dbFile(s, f => f.endsWith('.log'))
    await garble(log, 0x5a, Math.floor((await stat(log)).size / 3), 200)
    await recovers(s, true, true)
  }))

  it('zeroed table: refuses to start; doctor --repair sets it aside and counts it; the key file keeps the identity', async () => await withScene(true, async (s) => {
    const table = await dbFile(s, f => f.endsWith('.ldb'))
    await garble(table, 0, 0, (await stat(table)).size)
    await refusesToStart(s)
    assert.equal((await doctor(s.annDir, false)).store, 'damaged')
    const fixed = await doctor(s.annDir, true)
    assert.equal(fixed.store, 'repaired')
    assert.equal(fixed.repair?.filesLost, 1)
    assert.ok((fixed.messages ?? 0) < 2 * N)
    assert.equal(fixed.lost, 2 * N - (fixed.messages ?? 0))
    assert.match(describeReport(fixed, true), new RegExp(`\\n${fixed.lost} messages? lost \\(they come back from your colleagues`))
    await recovers(s, true, true)
  }))

  it('garbage MANIFEST: refuses to start; doctor --repair rebuilds it from the tables', async () => await withScene(true, async (s) => {
    const manifest = await dbFile(s, f => f.startsWith('MANIFEST-'))
    await garble(manifest, 0x41, 0, 64)
    await refusesToStart(s)
    const fixed = await doctor(s.annDir, true)
    assert.equal(fixed.store, 'repaired')
    assert.equal(fixed.messages, 2 * N)
    await recovers(s, true, false)
  }))

  it('db/ gone: refuses to start (no fresh database over an initialised data dir); doctor --repair makes it anew', async () => await withScene(false, async (s) => {
    await rm(join(s.annDir, 'db'), { recursive: true })
    await refusesToStart(s)
    const fixed = await doctor(s.annDir, true)
    assert.equal(fixed.store, 'repaired')
    assert.equal(fixed.messages, 0)
    assert.equal(fixed.lost, 2 * N)
    await recovers(s, true, true)
  }))

  it('damaged key file: the start says to run doctor --repair; doctor exits 1, then rewrites it from the store\'s copy', async () => await withScene(false, async (s) => {
    const keyFile = join(s.annDir, 'device-key')
    await writeFile(keyFile, '{"v":1,"key":"garbage"}\n', { mode: 0o600 })
    await assert.rejects(loopbackNode(s.annDir).start(), (err: unknown) => {
      assert.equal((err as ParleyError).code, 'ERR_STORE_CORRUPT')
      assert.match((err as Error).message, /device key file .* is damaged .*Run `parley doctor --data .* --repair`/)
      return true
    })
    const check = cli(['doctor', '--data', s.annDir])
    assert.equal(check.status, 1, 'a data dir Parley cannot start on is not "ok"')
    assert.match(check.stdout, /device key file: damaged/)
    assert.match(check.stdout, /run `parley doctor --data .* --repair`/)
    const fixed = cli(['doctor', '--data', s.annDir, '--repair'])
    assert.equal(fixed.status, 0, fixed.stdout + fixed.stderr)
    assert.match(fixed.stdout, /device key file: repaired/)
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600)
    await recovers(s, false, false)
  }))

  it('doctor refuses while the node runs on the data dir, also where it would repair without opening the store (an unreadable table)', async () => await withScene(true, async (s) => {
    const ann = loopbackNode(s.annDir, { name: 'Ann' })
    await ann.start()
    try {
      const table = await dbFile(s, f => f.endsWith('.ldb'))
      await garble(table, 0, 0, (await stat(table)).size)
      await assert.rejects(doctor(s.annDir, true), (err: unknown) => {
        assert.equal((err as ParleyError).code, 'ERR_DATA_DIR_LOCKED')
        assert.match((err as Error).message, new RegExp(`Parley is running on this data dir \\(process ${process.pid}\\): stop it first`))
        assert.match((err as Error).message, /If no Parley is running, delete .*parley\.pid/)
        return true
      })
      const run = cli(['doctor', '--data', s.annDir, '--repair'])
      assert.equal(run.status, 1)
      assert.match(run.stderr, /ERR_DATA_DIR_LOCKED: Parley is running on this data dir/)
      // nothing was repaired behind the running node's back: no lost/ folder, the table still there
      await assert.rejects(stat(join(s.annDir, 'db', 'lost')))
      await stat(table)
    } finally {
      await ann.stop()
    }
    // stopped: doctor goes ahead (a pid file left by a kill -9 names no live process)
    await writeFile(join(s.annDir, 'parley.pid'), '999999999\n')
    assert.equal((await doctor(s.annDir, true)).store, 'repaired')
    // ... or one that an unrelated node process took since (it started after the pid file was written)
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' })
    try {
      const pidFile = join(s.annDir, 'parley.pid')
      await writeFile(pidFile, `${other.pid!}\n`)
      const past = new Date(Date.now() - 60_000)
      await utimes(pidFile, past, past)
      assert.equal((await doctor(s.annDir, false)).store, 'ok', 'a reused pid does not lock the data dir')
    } finally { other.kill() }
  }))

  it('a data dir from before the key file: the key is copied out of the store at start, mode 0600', async () => await withScene(false, async (s) => {
    await rm(join(s.annDir, 'device-key'))
    await recovers(s, false, false)
    assert.equal((await stat(join(s.annDir, 'device-key'))).mode & 0o777, 0o600)
    assert.equal((await doctor(s.annDir, false)).store, 'ok')
  }))
})
