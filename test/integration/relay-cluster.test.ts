/**
 * Two relay instances on one PostgreSQL database (a real server started for
 * this file, on a Unix socket in a temp dir), users spread over them: an
 * invite made on one admits on the other; mail deposited on one instance for
 * a user connected to the other is pushed to that user at once (LISTEN/NOTIFY
 * wakes the instance holding the connection; the nodes' own mailbox poll is
 * set to 60 s, so only the push can explain a quick delivery); 1:1 and group
 * traffic across instances; PostgreSQL restarted (crash-like) under load:
 * the relays reconnect and nothing acknowledged is lost (also mail that
 * waits for an offline user, its sender gone too); a removal on one
 * instance cuts the user off on the other. The console's policy (TTL,
 * quotas, federation on/off) and company directory are the relay's: set on
 * one instance, applied by the other at once (NOTIFY); invite links and
 * sheets name both instances. Every audit: lost = duplicated = reordered = 0.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { audit } from '../helpers/audit.js'
import { PgServer } from '../helpers/postgres.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { MailboxLimits } from '../../relay/src/store/types.js'

const NO_POLL_MS = 60_000

describe('two relay instances on one PostgreSQL database', () => {
  let dir: string
  let server: PgServer
  const relays: RelayServer[] = []
  const n: Record<'a' | 'b' | 'c' | 'd', ParleyNode> = {} as never
  let token: string

  const relayOf = (k: keyof typeof n): RelayServer => relays[k === 'a' || k === 'c' ? 0 : 1]!

  before(async () => {
    dir = await tmpDir('parley-cluster-')
    server = await PgServer.start()
    const url = await server.createDatabase('cluster')
    for (const name of ['r1', 'r2']) {
      const r = new RelayServer({ dataDir: join(dir, name), listen: ['/ip4/127.0.0.1/tcp/0'], store: url }, createLogger(name, 'error'))
      await r.start()
      relays.push(r)
    }
    assert.notEqual(relays[0]!.peerId, relays[1]!.peerId, 'each instance has its own peer ID')
    token = (await relays[0]!.mailbox.createInvite({ maxUses: 4 })).token
    for (const k of ['a', 'b', 'c', 'd'] as const) {
      n[k] = loopbackNode(join(dir, k), {
        name: k.toUpperCase(), relay: relayOf(k).addresses()[0], invite: token, messenger: { depositAfterMs: 100 }, relayClient: { mailboxPollMs: NO_POLL_MS }
      })
      await n[k].start()
    }
  })
  after(async () => {
    for (const node of Object.values(n)) await node?.stop()
    for (const r of relays) await r.stop()
    await server?.destroy()
    await removeDir(dir)
  })

  it('an invite made on instance 1 admits on instance 2; admitted on one is admitted on all', async () => {
    for (const k of ['a', 'b', 'c', 'd'] as const) {
      await until(() => n[k].relay.status().admitted === true, `${k} admitted`, 20_000)
      await until(() => n[k].host.addresses().some(x => x.includes(`${relayOf(k).peerId}/p2p-circuit`)), `${k} reserved on its instance`, 20_000)
    }
    for (const r of relays) for (const node of Object.values(n)) await until(() => r.mailbox.isAdmitted(node.peerId), 'admitted on every instance')
    assert.equal((await relays[1]!.listUsers()).length, 4)
    assert.deepEqual([(await relays[0]!.stats()).reservations, (await relays[1]!.stats()).reservations], [2, 2])
  })

  it('1:1 both ways between users on different instances: pushed at once, lost = duplicated = reordered = 0', async () => {
    const toB: string[] = []
    const toA: string[] = []
    const t0 = Date.now()
    await Promise.all([
      (async () => { for (let i = 0; i < 30; i++) { const t = `a→b ${i}`; toB.push(t); await n.a.messenger.sendMessage(n.b.peerId, t) } })(),
      (async () => { for (let i = 0; i < 30; i++) { const t = `b→a ${i}`; toA.push(t); await n.b.messenger.sendMessage(n.a.peerId, t) } })()
    ])
    // far inside the 60 s poll: only the instance holding the connection pushing mailWaiting explains it
    await until(async () => (await n.b.messenger.history(n.a.peerId, { limit: 1000 })).filter(m => !m.outgoing).length >= 30, 'b has all', 20_000, 50)
    await until(async () => (await n.a.messenger.history(n.b.peerId, { limit: 1000 })).filter(m => !m.outgoing).length >= 30, 'a has all', 20_000, 50)
    assert.ok(Date.now() - t0 < NO_POLL_MS / 2)
    for (const [rx, tx, sent] of [[n.b, n.a, toB], [n.a, n.b, toA]] as const) {
      const r = audit([...sent], await rx.messenger.history(tx.peerId, { limit: 1000 }), tx.peerId)
      assert.deepEqual([r.lost, r.duplicated, r.orderViolations], [0, 0, 0])
    }
    // acked where it was fetched (instance 2 for b), gone on both
    await until(async () => (await relays[0]!.stats()).mailbox.messages === 0, 'mailboxes emptied')
  })

  it('a group spread over both instances: every member has every message, same order everywhere', async () => {
    const g = await n.a.messenger.createGroup('Cluster', [n.b.peerId, n.c.peerId, n.d.peerId])
    for (const node of Object.values(n)) await until(() => node.messenger.group(g.conv), 'group known everywhere', 20_000)
    const senders = [n.a, n.b, n.c, n.d]
    const sent = new Map<string, string[]>(senders.map(s => [s.peerId, []]))
    for (let i = 0; i < 40; i++) {
      const s = senders[i % 4]!
      const text = `g${i} from ${s.peerId.slice(-4)}`
      await s.messenger.sendMessage(g.conv, text)
      sent.get(s.peerId)!.push(text)
    }
    const count = async (node: ParleyNode): Promise<number> => (await node.messenger.history(g.conv, { limit: 1000 })).filter(m => m.op === undefined).length
    for (const node of senders) await until(async () => (await count(node)) >= 40, 'every member has all 40', 30_000, 100)
    const histories = await Promise.all(senders.map(async node => (await node.messenger.history(g.conv, { limit: 1000 })).map(m => m.id)))
    for (const h of histories.slice(1)) assert.deepEqual(h, histories[0], 'identical order everywhere')
    for (const node of senders) {
      const h = await node.messenger.history(g.conv, { limit: 1000 })
      for (const [author, texts] of sent) {
        const r = audit(texts, h, author)
        assert.deepEqual([r.lost, r.duplicated, r.orderViolations], [0, 0, 0], `${author.slice(-4)} at ${node.peerId.slice(-4)}`)
      }
    }
  })

  it('the console\'s policy and the company directory are the relay\'s: set on instance 1, applied and seen on instance 2; invites name both', async () => {
    const [r1, r2] = relays as [RelayServer, RelayServer]
    const limits = (r: RelayServer): MailboxLimits => (r.mailbox as unknown as { limits: MailboxLimits }).limits
    const days3 = 3 * 24 * 3600_000
    await assert.rejects(r2.federation.invite(), { code: 'ERR_FEDERATION_OFF' })
    await r1.admin.service.setPolicy('test', { set: { mailboxTtlMs: days3, quotaMessages: 5000, federationAllowed: true } })
    await until(() => r2.admin.policy.effective().federationAllowed && limits(r2).ttlMs === days3, 'the policy applied on instance 2', 5000, 50)
    assert.equal(limits(r2).quotaMessages, 5000, 'the quota too')
    assert.equal(r2.admin.service.policy().source.mailboxTtlMs, 'console')
    assert.match((await r2.federation.invite()).token, /./, 'federation switched on for instance 2 too')
    await r1.admin.service.setPolicy('test', { reset: ['mailboxTtlMs', 'quotaMessages', 'federationAllowed'] })
    await until(() => !r2.admin.policy.effective().federationAllowed && limits(r2).ttlMs !== days3, 'the reset applied on instance 2', 5000, 50)
    await assert.rejects(r2.federation.invite(), { code: 'ERR_FEDERATION_OFF' })
    // the directory imported on instance 1 is what b (on instance 2) reads; its sheet names both instances
    const { added } = await r1.admin.service.importDirectory('test', 'name,department,email\nZhang Wei,Sales,zw@example.com\n')
    assert.equal(added.length, 1)
    for (const r of relays) assert.ok(added[0]!.link.includes(r.peerId), 'the sheet\'s link names every instance')
    assert.match(JSON.stringify(await n.b.relay.directory()), /Zhang Wei/)
    assert.deepEqual((await r2.admin.service.listPeople()).map(p => p.name), ['Zhang Wei'])
    const link = (await r1.admin.service.createInvite('test', {})).link
    for (const r of relays) assert.ok(link.includes(r.peerId), 'the invite link names every instance')
  })

  it('PostgreSQL crash-restarted under load: both relays reconnect, nothing acknowledged is lost, the push works again', async () => {
    const sent: string[] = []
    let restarted = false
    const load = (async () => {
      for (let i = 0; i < 80; i++) {
        const t = `load ${i}`
        sent.push(t)
        await n.c.messenger.sendMessage(n.d.peerId, t)
        if (i === 25) { restarted = true; await server.restart('immediate', 1500) }
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    })()
    await load
    assert.ok(restarted)
    const got = async (): Promise<number> => (await n.d.messenger.history(n.c.peerId, { limit: 1000 })).filter(m => !m.outgoing).length
    // drains after the restart come from the node's own retries and the pushes for new deposits
    await until(async () => (await got()) >= 80, 'd has all 80', 60_000, 100)
    const r = audit(sent, await n.d.messenger.history(n.c.peerId, { limit: 1000 }), n.c.peerId)
    assert.deepEqual([r.lost, r.duplicated, r.orderViolations], [0, 0, 0])
    // the notification link of instance 2 is back: a new message is pushed at once again
    const t0 = Date.now()
    await n.a.messenger.sendMessage(n.d.peerId, 'after the restart')
    await until(async () => (await n.d.messenger.history(n.a.peerId, { limit: 1000 })).some(m => m.text === 'after the restart'), 'pushed after restart', 20_000, 50)
    assert.ok(Date.now() - t0 < NO_POLL_MS / 2)
    for (const relay of relays) assert.equal(typeof (await relay.stats()).mailbox.messages, 'number')
  })

  it('PostgreSQL crash-restarted with acknowledged mail waiting for an offline user: all of it is there after the restart', async () => {
    // d is offline: what c's instance acknowledged (state `sent`) is only in the database; c never deposits it again
    await until(async () => (await relays[1]!.mailbox.queued(n.d.peerId)) === 0, 'd acked all it had')
    await n.d.stop()
    const sent: string[] = []
    const ids: string[] = []
    for (let i = 0; i < 20; i++) { const t = `waiting ${i}`; sent.push(t); ids.push((await n.c.messenger.sendMessage(n.d.peerId, t)).id) }
    for (const id of ids) await n.c.messenger.waitForState(id, 'sent', { signal: AbortSignal.timeout(30_000) })
    await until(async () => (await relays[1]!.mailbox.queued(n.d.peerId)) === 20, 'all 20 acknowledged and queued for d')
    await server.restart('immediate')
    // c goes too: nothing it still holds can fill a gap; d drains from instance 2
    await n.c.stop()
    n.d = loopbackNode(join(dir, 'd'), { name: 'D', relay: relays[1]!.addresses()[0], messenger: { depositAfterMs: 100 }, relayClient: { mailboxPollMs: 500 } })
    await n.d.start()
    const got = async (): Promise<number> => (await n.d.messenger.history(n.c.peerId, { limit: 1000 })).filter(m => m.text.startsWith('waiting ')).length
    await until(async () => (await got()) >= 20, 'd has the 20 acknowledged before the crash', 30_000, 100)
    const r = audit(sent, (await n.d.messenger.history(n.c.peerId, { limit: 1000 })).filter(m => m.text.startsWith('waiting ')), n.c.peerId)
    assert.deepEqual([r.lost, r.duplicated, r.orderViolations], [0, 0, 0])
    await until(async () => (await relays[1]!.mailbox.queued(n.d.peerId)) === 0, 'acked after the restart')
  })

  it('a user removed on instance 1 is cut off on instance 2 as well', async () => {
    assert.equal(await relays[0]!.removeUser(n.d.peerId), true)
    await until(() => !relays[1]!.mailbox.isAdmitted(n.d.peerId), 'removal seen by instance 2')
    await until(() => !n.d.host.addresses().some(x => x.includes('/p2p-circuit')), 'd lost its reservation on instance 2', 20_000)
  })
})
