/**
 * PgMailboxStore (relay/src/store/pg-mailbox-store.ts) on a real PostgreSQL
 * server started for this file (test/helpers/postgres.ts: a temp dir and a
 * Unix socket, no port): the MailboxStore compliance suite, then what is
 * PostgreSQL's own: versioned migrations, a newer schema refused, an
 * unreachable database reported, several stores (instances) on one
 * database, the one sweeper, the admission notifications' order, the
 * admin side's shared state (policy, directory, last seen).
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { PgMailboxStore } from '../../../relay/src/store/pg-mailbox-store.js'
import { SCHEMA_VERSION, SWEEP_LOCK } from '../../../relay/src/store/pg-schema.js'
import type { MailboxLimits } from '../../../relay/src/store/types.js'
import { sealEnvelope, newMessageId } from '../../../core/crypto/envelope.js'
import { dmConversationId, type Envelope } from '../../../core/protocol/envelope.js'
import { ParleyError } from '../../../core/errors.js'
import { mailboxStoreCompliance } from '../../compliance/mailbox-store.js'
import { newIdentities } from '../helpers/identities.js'
import { PgServer } from '../../helpers/postgres.js'
import { until } from '../../helpers/nodes.js'
import type { DeviceIdentity } from '../../../core/keys.js'
import type { Person } from '../../../core/protocol/admin-api.js'

let server: Promise<PgServer> | undefined
const pgServer = async (): Promise<PgServer> => await (server ??= PgServer.start({ fsync: false }))
let dbs = 0
/** a fresh database on the one server */
const freshDb = async (): Promise<{ url: string, drop: () => Promise<void> }> => {
  const s = await pgServer()
  const name = `t${++dbs}`
  const url = await s.createDatabase(name)
  return {
    url,
    drop: async () => {
      const c = new pg.Client({ connectionString: s.url() })
      await c.connect()
      try { await c.query(`DROP DATABASE "${name}" WITH (FORCE)`) } finally { await c.end() }
    }
  }
}
after(async () => { await (await server)?.destroy() })

mailboxStoreCompliance('PgMailboxStore on PostgreSQL', async () => {
  const db = await freshDb()
  return { open: (limits) => new PgMailboxStore({ url: db.url }, limits), destroy: db.drop }
})

const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c
const limits: MailboxLimits = { ttlMs: 60_000, quotaMessages: 10_000, quotaBytes: 1 << 30 }

describe('PgMailboxStore', () => {
  let alice: DeviceIdentity, bob: DeviceIdentity
  const env = (text = 'x'): Envelope => sealEnvelope(alice, { id: newMessageId(), conv: dmConversationId(alice.peerId, bob.peerId), seq: 1, hlc: { w: Date.now(), c: 0 }, recipients: [bob.peerId], body: { text } })

  it('migrates a fresh database to the current version once, also with two instances starting at once', async () => {
    [alice, bob] = await newIdentities(2) as [DeviceIdentity, DeviceIdentity]
    const db = await freshDb()
    const a = new PgMailboxStore({ url: db.url }, limits)
    const b = new PgMailboxStore({ url: db.url }, limits)
    await Promise.all([a.start(), b.start()])
    const c = new pg.Client({ connectionString: db.url })
    await c.connect()
    const { rows } = await c.query('SELECT version FROM parley_schema ORDER BY version')
    assert.deepEqual(rows.map(r => r.version), Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1))
    await c.end()
    await a.stop(); await b.stop()
    await db.drop()
  })

  it('refuses a database of a newer schema with ERR_SCHEMA_TOO_NEW, and writes nothing to it', async () => {
    const db = await freshDb()
    const s = new PgMailboxStore({ url: db.url }, limits)
    await s.start(); await s.stop()
    const c = new pg.Client({ connectionString: db.url })
    await c.connect()
    await c.query("INSERT INTO parley_schema (version, name) VALUES ($1, 'from the future')", [SCHEMA_VERSION + 1])
    await assert.rejects(new PgMailboxStore({ url: db.url }, limits).start(), (err: unknown) => {
      assert.ok(code('ERR_SCHEMA_TOO_NEW')(err))
      assert.match((err as Error).message, new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this parley-relay knows \\(${SCHEMA_VERSION}\\)`))
      return true
    })
    assert.equal((await c.query('SELECT count(*)::int AS n FROM parley_schema')).rows[0].n, SCHEMA_VERSION + 1)
    await c.end()
    await db.drop()
  })

  it('an unreachable database is ERR_STORE_UNAVAILABLE, its password never in the message', async () => {
    const s = new PgMailboxStore({ url: 'postgres://parley:s3cret-pw@/nowhere?host=/nonexistent-dir' }, limits)
    await assert.rejects(s.start(), (err: unknown) => {
      assert.ok(code('ERR_STORE_UNAVAILABLE')(err), String(err))
      assert.ok(!(err as Error).message.includes('s3cret-pw'))
      return true
    })
  })

  it('two instances on one database: admitted on one is admitted on the other; mail on one wakes the other; removal is told', async () => {
    const db = await freshDb()
    const a = new PgMailboxStore({ url: db.url }, limits)
    const b = new PgMailboxStore({ url: db.url }, limits)
    await a.start(); await b.start()
    const woke: string[] = []
    const removed: string[] = []
    b.watch({ mail: (r) => woke.push(r), removed: (p) => removed.push(p) })
    const invite = await a.createInvite()
    await a.redeem(invite.token, bob.peerId)
    await until(() => b.isAdmitted(bob.peerId), 'admission seen by the other instance', 5000)
    await assert.rejects(b.redeem(invite.token, alice.peerId), code('ERR_INVITE_INVALID'), 'the invite was used on the other instance')
    await a.deposit(bob.peerId, alice.peerId, env(), 100)
    await until(() => woke.includes(bob.peerId), 'mail notification on the other instance', 5000)
    assert.equal((await b.fetch(bob.peerId, 0, 10)).items.length, 1)
    await a.removeUser(bob.peerId)
    await until(() => !b.isAdmitted(bob.peerId) && removed.includes(bob.peerId), 'removal seen by the other instance', 5000)
    await a.stop(); await b.stop()
    await db.drop()
  })

  it('concurrent deposits for one recipient on two instances: cursors are committed in order, nothing is fetched out of order', async () => {
    const db = await freshDb()
    const a = new PgMailboxStore({ url: db.url, poolSize: 8 }, limits)
    const b = new PgMailboxStore({ url: db.url, poolSize: 8 }, limits)
    await a.start(); await b.start()
    const deposited: Envelope[] = []
    const ids = new Set<string>()
    let fetchedUpTo = 0
    const got: string[] = []
    let done = false
    // a reader that fetches and acks upTo while the writers run: with cursors committed out of
    // order, an ack upTo would delete mail it never fetched
    const reader = (async () => {
      while (!done || (await a.queued(bob.peerId)) > 0) {
        const page = await b.fetch(bob.peerId, 0, 50)
        for (const i of page.items) { assert.ok(i.cursor > fetchedUpTo, 'cursor increasing'); got.push(i.envelope.id) }
        if (page.items.length > 0) { fetchedUpTo = page.items[page.items.length - 1]!.cursor; await b.ack(bob.peerId, fetchedUpTo) }
      }
    })()
    await Promise.all([a, b, a, b].map(async (s) => {
      for (let i = 0; i < 50; i++) { const e = env(); deposited.push(e); ids.add(e.id); assert.equal(await s.deposit(bob.peerId, alice.peerId, e, 10), 1) }
    }))
    done = true
    await reader
    assert.equal(got.length, 200, 'lost = 0')
    assert.equal(new Set(got).size, 200, 'duplicated = 0')
    assert.ok(got.every(id => ids.has(id)))
    assert.deepEqual(await a.totals(), { messages: 0, bytes: 0, recipients: 0 })
    await a.stop(); await b.stop()
    await db.drop()
  })

  it('one sweeper at a time (advisory lock): others skip while it is held, and two sweeping at once delete each row once', async () => {
    const db = await freshDb()
    const a = new PgMailboxStore({ url: db.url }, { ...limits, ttlMs: 1000 })
    const b = new PgMailboxStore({ url: db.url }, { ...limits, ttlMs: 1000 })
    await a.start(); await b.start()
    for (let i = 0; i < 1200; i += 200) await Promise.all(Array.from({ length: 200 }, async () => await a.deposit(bob.peerId, alice.peerId, env(), 10)))
    const later = Date.now() + 5000
    // a third party (an instance mid-sweep) holds the lock: neither instance sweeps
    const holder = new pg.Client({ connectionString: db.url })
    await holder.connect()
    await holder.query('SELECT pg_advisory_lock($1)', [SWEEP_LOCK.toString()])
    assert.deepEqual(await Promise.all([a.sweep(later), b.sweep(later)]), [0, 0])
    assert.equal(await a.queued(bob.peerId), 1200)
    await holder.query('SELECT pg_advisory_unlock($1)', [SWEEP_LOCK.toString()])
    await holder.end()
    const counts = await Promise.all([a.sweep(later), b.sweep(later)])
    assert.equal(counts[0] + counts[1], 1200)
    assert.equal(Math.min(...counts), 0, 'one of them swept everything')
    assert.deepEqual(await b.totals(), { messages: 0, bytes: 0, recipients: 0 })
    await a.stop(); await b.stop()
    await db.drop()
  })

  it('stores envelopes as sealed: the plaintext is nowhere in the database', async () => {
    const db = await freshDb()
    const s = new PgMailboxStore({ url: db.url }, limits)
    await s.start()
    await s.deposit(bob.peerId, alice.peerId, env('canary-in-the-pg-mailbox'), 100)
    const c = new pg.Client({ connectionString: db.url })
    await c.connect()
    const { rows } = await c.query('SELECT envelope FROM relay_mail')
    assert.equal(rows.length, 1)
    assert.ok(!JSON.stringify(rows).includes('canary-in-the-pg-mailbox'))
    await c.end()
    await s.stop()
    await db.drop()
  })

  it('federation: two instances share each queue; whichever is up drains it (FOR UPDATE SKIP LOCKED), in order, once', async () => {
    [alice, bob] = await newIdentities(2) as [DeviceIdentity, DeviceIdentity]
    const db = await freshDb()
    const a = new PgMailboxStore({ url: db.url }, limits)
    const b = new PgMailboxStore({ url: db.url }, limits)
    await a.start(); await b.start()
    const relay = '12D3KooWFedRelayAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1'
    await a.putFedPeer({ peerId: relay, name: 'B', addrs: [], pairedAt: Date.now(), policy: { directory: 'listed', quotaMessages: 1000, quotaBytes: 1 << 20, ttlMs: 60_000 } })
    const quota = { messages: 1000, bytes: 1 << 20 }
    // enqueued on both instances at once: one order of seqs, no gaps in what a drain sees
    const envs = Array.from({ length: 40 }, () => env())
    await Promise.all(envs.map(async (e, i) => await (i % 2 === 0 ? a : b).enqueueFed(relay, [bob.peerId], e, 100, quota)))
    let release!: () => void
    const gate = new Promise<void>((resolve) => { release = resolve })
    const got: number[] = []
    const first = a.drainFed(relay, 10, 1 << 20, async (items) => { await gate; got.push(...items.map(i => i.seq)); return items[items.length - 1]!.seq })
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.equal(await b.drainFed(relay, 10, 1 << 20, async () => 0), null, 'the other instance skips the locked queue')
    release()
    assert.equal(await first, 10)
    // instance a goes away; b drains the rest
    await a.stop()
    for (;;) {
      const n = await b.drainFed(relay, 7, 1 << 20, async (items) => { got.push(...items.map(i => i.seq)); return items[items.length - 1]!.seq })
      if (n === 0) break
    }
    assert.equal(got.length, 40)
    assert.deepEqual(got, [...got].sort((x, y) => x - y), 'in seq order')
    assert.equal(new Set(got).size, 40, 'each once')
    await b.stop()
    await db.drop()
  })

  it('start listens before it loads the admitted users: an admission committed on another instance in between is seen', async () => {
    const db = await freshDb()
    const a = new PgMailboxStore({ url: db.url }, limits)
    const b = new PgMailboxStore({ url: db.url }, limits)
    await a.start()
    // the admission commits between b's two start steps, whichever order they run in
    const steps = b as unknown as Record<'loadAdmitted' | 'listen', () => Promise<void>>
    let first = true
    for (const m of ['loadAdmitted', 'listen'] as const) {
      const orig = steps[m].bind(b)
      steps[m] = async () => { await orig(); if (first) { first = false; await a.admit(alice.peerId, 'allow-list') } }
    }
    await b.start()
    assert.equal(first, false)
    await until(() => b.isAdmitted(alice.peerId), 'the admission made during the start is seen', 5000)
    await a.stop(); await b.stop()
    await db.drop()
  })

  it('admission notifications for one peer are applied in order: an admit closely followed by a removal ends removed', async () => {
    const db = await freshDb()
    const a = new PgMailboxStore({ url: db.url }, limits)
    const b = new PgMailboxStore({ url: db.url }, limits)
    await a.start(); await b.start()
    // b's read of the admission answers late (after the removal's read): the order must still hold
    const inst = b as unknown as { q: (sql: string, params?: unknown[]) => Promise<unknown> }
    const q = inst.q.bind(b)
    let reads = 0
    let firstRead!: () => void
    const firstReadDone = new Promise<void>(resolve => { firstRead = resolve })
    inst.q = async (sql, params) => {
      const r = await q(sql, params)
      if (sql.startsWith('SELECT 1 FROM relay_users')) {
        if (++reads === 1) { firstRead(); await new Promise(resolve => setTimeout(resolve, 500)) }
      }
      return r
    }
    await a.admit(alice.peerId, 'allow-list')
    await firstReadDone
    await a.removeUser(alice.peerId)
    await until(() => reads >= 2, 'both notifications read', 5000)
    await new Promise(resolve => setTimeout(resolve, 600))
    assert.equal(b.isAdmitted(alice.peerId), false, 'the removal is the last word')
    await a.stop(); await b.stop()
    await db.drop()
  })

  it('the admin side\'s state is shared: the policy (every instance told), the company directory, last-seen times', async () => {
    const db = await freshDb()
    const a = new PgMailboxStore({ url: db.url }, limits)
    const b = new PgMailboxStore({ url: db.url }, limits)
    await a.start(); await b.start()
    let told = 0
    b.onPolicyChanged(() => { told++ })
    await a.putPolicy({ mailboxTtlMs: 120_000, federationAllowed: true })
    await until(() => told > 0, 'the other instance is told of the policy change', 5000)
    assert.deepEqual(await b.getPolicy(), { mailboxTtlMs: 120_000, federationAllowed: true })
    const zw: Person = { id: 'email:zw@example.com', name: 'Zhang Wei', department: ['Sales'], email: 'zw@example.com', staffNo: '', invite: 'tok', addedAt: 1 }
    assert.equal((await a.addPeople([zw])).added.length, 1)
    assert.deepEqual(await b.addPeople([zw]), { added: [], existing: [zw.id] })
    assert.deepEqual(await b.listPeople(), [zw])
    assert.deepEqual(await b.getPerson(zw.id), zw)
    await a.putSeen([[bob.peerId, 5]])
    await b.putSeen([[bob.peerId, 3]])
    assert.deepEqual(await b.listSeen(), [[bob.peerId, 5]], 'the latest time is kept')
    assert.deepEqual(await b.removePerson(zw.id), zw)
    assert.deepEqual(await a.listPeople(), [])
    await a.stop(); await b.stop()
    await db.drop()
  })
})
