/**
 * `parley-relay start --store postgres://…` as a process, on a real
 * PostgreSQL server started for this file (Unix socket in a temp dir): the
 * store is in the database, the key in the data dir, the config file's
 * `store` key works, and bad settings or a newer schema stop the start with a
 * clear error.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { PgServer } from '../helpers/postgres.js'
import { RELAY_BIN, RelayProc } from '../helpers/proc.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import { SCHEMA_VERSION } from '../../relay/src/store/pg-schema.js'

const run = promisify(execFile)

describe('parley-relay on PostgreSQL', () => {
  let server: PgServer
  let dir: string
  let url: string
  before(async () => {
    server = await PgServer.start({ fsync: false })
    url = await server.createDatabase('relay')
    dir = await tmpDir('parley-relay-pg-')
  })
  after(async () => {
    await server?.destroy()
    await removeDir(dir)
  })

  it('starts with --store, keeps users and invites in the database and its key in the data dir', async () => {
    const relay = new RelayProc({ dataDir: join(dir, 'r1'), args: ['--listen', '/ip4/127.0.0.1/tcp/0', '--store', url], logFile: join(dir, 'r1.log') })
    await relay.start()
    try {
      // the start lines reach the log file asynchronously
      await until(() => /store: postgres:\/\/postgres@\/relay/.test(relay.logText()), 'store line in the log')
      const token = relay.admin('invite', 'create', '--note', 'pg')
      const peer = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'
      relay.admin('allow', peer)
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      assert.equal((await c.query('SELECT count(*)::int AS n FROM relay_invites WHERE token = $1', [token])).rows[0].n, 1)
      assert.equal((await c.query('SELECT via FROM relay_users WHERE peer_id = $1', [peer])).rows[0].via, 'allow-list')
      await c.end()
      assert.ok(JSON.parse(relay.admin('users', '--json')).some((u: { peerId: string }) => u.peerId === peer))
      const key = join(dir, 'r1', 'relay-key')
      assert.equal(statSync(key).mode & 0o777, 0o600)
      assert.equal(existsSync(join(dir, 'r1', 'db')), false, 'no LevelDB made')
    } finally {
      await relay.stop()
    }
  })

  it('takes the store from the config file; a restart keeps the peer ID', async () => {
    const cfg = join(dir, 'relay.json')
    await writeFile(cfg, JSON.stringify({ store: url, listen: ['/ip4/127.0.0.1/tcp/0'] }))
    const relay = new RelayProc({ dataDir: join(dir, 'r2'), args: ['--config', cfg], logFile: join(dir, 'r2.log') })
    await relay.start()
    const first = JSON.parse(relay.admin('stats', '--json')).peerId as string
    await relay.stop()
    await relay.start()
    try {
      assert.equal(JSON.parse(relay.admin('stats', '--json')).peerId, first)
      await until(() => /store: postgres:/.test(relay.logText()), 'store line in the log')
    } finally {
      await relay.stop()
    }
  })

  it('refuses a store setting that is neither "level" nor a PostgreSQL URL (exit 2)', async () => {
    await assert.rejects(run(process.execPath, [RELAY_BIN, 'start', '--data', join(dir, 'r3'), '--store', 'mysql://x/y']), (err: { code: number, stderr: string }) => {
      assert.equal(err.code, 2)
      assert.match(err.stderr, /store must be "level" or a PostgreSQL URL/)
      return true
    })
  })

  it('refuses a database of a newer schema at start, clearly (exit 1, ERR_SCHEMA_TOO_NEW)', async () => {
    const newer = await server.createDatabase('newer')
    const c = new pg.Client({ connectionString: newer })
    await c.connect()
    await c.query('CREATE TABLE parley_schema (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())')
    await c.query("INSERT INTO parley_schema (version, name) VALUES ($1, 'future')", [SCHEMA_VERSION + 5])
    await c.end()
    await assert.rejects(run(process.execPath, [RELAY_BIN, 'start', '--data', join(dir, 'r4'), '--listen', '/ip4/127.0.0.1/tcp/0', '--store', newer]),
      (err: { code: number, stderr: string }) => {
        assert.equal(err.code, 1)
        assert.match(err.stderr, /ERR_SCHEMA_TOO_NEW: the relay database .* has schema version \d+, newer than this parley-relay knows/)
        return true
      })
  })

  it('an unreachable database stops the start with ERR_STORE_UNAVAILABLE (exit 1)', async () => {
    const bad = `postgres://postgres@/relay?host=${encodeURIComponent(join(dir, 'no-such-socket-dir'))}`
    await assert.rejects(run(process.execPath, [RELAY_BIN, 'start', '--data', join(dir, 'r5'), '--listen', '/ip4/127.0.0.1/tcp/0', '--store', bad]),
      (err: { code: number, stderr: string }) => {
        assert.equal(err.code, 1)
        assert.match(err.stderr, /ERR_STORE_UNAVAILABLE: the relay database .* is not reachable/)
        return true
      })
  })
})
