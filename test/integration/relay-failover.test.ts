/**
 * Two relay instances as processes on one PostgreSQL database; nodes are
 * configured with both addresses (in different orders, so they start on
 * different instances). kill -9 of the instance carrying a conversation,
 * mid-traffic: the users fail over to the other instance, take a new
 * reservation there (circuit address through it), and lost = duplicated =
 * reordered = 0 on both sides. b listens on no address of its own (remote
 * staff behind NAT): after the failover its colleague reaches it through the
 * new circuit only, and b's published addresses (its host's addresses, its
 * account's signed home, held by the colleague) name the surviving instance.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { audit } from '../helpers/audit.js'
import { PgServer } from '../helpers/postgres.js'
import { RelayProc } from '../helpers/proc.js'
import { relayFiles } from '../../relay/src/config.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import { foldAccount } from '../../core/crypto/account.js'

describe('relay instance killed mid-traffic', () => {
  let dir: string
  let server: PgServer
  const relays: RelayProc[] = []
  const info: Array<{ peerId: string, addresses: string[] }> = []
  const nodes: ParleyNode[] = []

  before(async () => {
    dir = await tmpDir('parley-failover-')
    server = await PgServer.start()
    const url = await server.createDatabase('cluster')
    for (const name of ['r1', 'r2']) {
      const r = new RelayProc({ dataDir: join(dir, name), args: ['--listen', '/ip4/127.0.0.1/tcp/0', '--store', url], logFile: join(dir, `${name}.log`) })
      await r.start()
      relays.push(r)
      info.push(JSON.parse(readFileSync(relayFiles(join(dir, name)).info, 'utf8')))
    }
  })
  after(async () => {
    for (const n of nodes) await n.stop()
    for (const r of relays) await r.stop()
    await server?.destroy()
    await removeDir(dir)
  })

  it('kill -9 of the instance a user is connected to: the user fails over; lost = duplicated = reordered = 0', async () => {
    const token = relays[0]!.admin('invite', 'create', '--uses', '2')
    const [addr1, addr2] = info.map(i => `${i.addresses[0]!}`) as [string, string]
    // a on r1 first, b on r2 first; both know both
    // a and b: no listen address of their own, reachable only through a circuit (as behind a NAT); were a
    // listening, b could dial a directly and the check of the circuit after the failover would see that link
    const a = loopbackNode(join(dir, 'a'), {
      name: 'A', relay: `${addr1},${addr2}`, invite: token, host: { listen: [] }, messenger: { depositAfterMs: 300 }, relayClient: { mailboxPollMs: 1000 }
    })
    const b = loopbackNode(join(dir, 'b'), {
      name: 'B', relay: `${addr2},${addr1}`, invite: token, host: { listen: [] }, messenger: { depositAfterMs: 300 }, relayClient: { mailboxPollMs: 1000 }
    })
    nodes.push(a, b)
    await a.start(); await b.start()
    for (const n of [a, b]) await until(() => n.relay.status().admitted === true, 'admitted', 20_000)
    // the instance b holds its reservation on (libp2p picks one of the connected instances): that one is killed
    const circuit = await until(() => b.host.addresses().find(x => x.includes('/p2p-circuit')), 'b reserved on an instance', 20_000)
    const victim = info.findIndex(i => circuit.includes(`${i.peerId}/p2p-circuit`))
    assert.ok(victim >= 0)
    const survivor = 1 - victim
    // a starts on r1, b on r2: one of them uses the victim for its mailbox and deposits
    assert.ok([a, b].some(n => n.relay.status().peerId === info[victim]!.peerId))
    const toB: string[] = []
    const toA: string[] = []
    for (let i = 0; i < 120; i++) {
      if (i === 40) await relays[victim]!.kill9()
      const ta = `a→b ${i}`; toB.push(ta); await a.messenger.sendMessage(b.peerId, ta)
      const tb = `b→a ${i}`; toA.push(tb); await b.messenger.sendMessage(a.peerId, tb)
      await new Promise(resolve => setTimeout(resolve, 25))
    }
    // b fails over to the other instance: uses it, and is reachable through it
    for (const n of [a, b]) await until(() => n.relay.status().peerId === info[survivor]!.peerId, 'every user uses the surviving instance', 20_000)
    await until(() => b.host.addresses().some(x => x.includes(`${info[survivor]!.peerId}/p2p-circuit`)), 'b reserved on the surviving instance', 30_000)
    assert.ok(!b.host.addresses().some(x => x.includes(`${info[victim]!.peerId}/p2p-circuit`)), 'no circuit address through the dead instance')
    await until(async () => (await b.messenger.history(a.peerId, { limit: 1000 })).filter(m => !m.outgoing).length >= 120, 'b has all', 60_000, 100)
    await until(async () => (await a.messenger.history(b.peerId, { limit: 1000 })).filter(m => !m.outgoing).length >= 120, 'a has all', 60_000, 100)
    for (const [rx, tx, sent] of [[b, a, toB], [a, b, toA]] as const) {
      const r = audit([...sent], await rx.messenger.history(tx.peerId, { limit: 1000 }), tx.peerId)
      assert.deepEqual([r.lost, r.duplicated, r.orderViolations], [0, 0, 0])
    }
    // and the conversation works end to end again: delivered, through the surviving instance's circuit (b has no other address)
    const m = await a.messenger.sendMessage(b.peerId, 'after failover')
    await a.messenger.waitForState(m.id, 'delivered', { signal: AbortSignal.timeout(30_000) })
    assert.ok(!b.host.addresses().some(x => !x.includes('/p2p-circuit')), 'b has no address but circuits')
    const copy = (await b.messenger.history(a.peerId, { limit: 1000 })).find(x => x.text === 'after failover')
    assert.equal(copy?.via, 'circuit', 'a reached b through the new circuit (not the mailbox)')
    assert.ok(a.host.connections().some(c => c.peerId === b.peerId && c.addr.includes(`${info[survivor]!.peerId}/p2p-circuit`)), 'through the surviving instance')
    // b's account home names every instance (configured order), so a failover signs nothing new, and a holds it
    const home = [info[1]!.peerId, info[0]!.peerId]
    assert.deepEqual(b.messenger.accounts.ownState().home.map(h => h.relay), home)
    await until(() => {
      const r = a.messenger.accounts.recordOf(b.messenger.account)
      return r !== undefined && JSON.stringify(foldAccount(r.account, r.ops).home.map(h => h.relay)) === JSON.stringify(home)
    }, 'a holds b\'s home with both instances', 20_000)
    assert.ok(b.messenger.accounts.ownState().home.every(h => h.addrs.every(x => x.endsWith(`/p2p/${h.relay}`))))
  })
})
