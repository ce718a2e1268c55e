/**
 * An office of 30 real nodes in namespaces on one bridge, all started at
 * once (a power cut, Monday morning): full presence from discovery, one
 * connection per pair after settling (pairs that message each other at the
 * same moment dial each other at the same moment), a group message reaching
 * all 30; kill -9 of 10 of them: the others show them offline, and after
 * the restart online again, with nothing lost.
 *
 * Deadlines are generous (CI shares 2 cores with the whole suite); timing
 * goals live in `npm run bench:office`. Records carry a fixed 20 s TTL here
 * (--mdns-ttl) so a crashed, unconnected peer leaves the lists within the test.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { NetnsLan, canUseNamespaces } from '../helpers/netns.js'
import { NodeProc, cpuTicks, rssKiB } from '../helpers/proc.js'
import { audit } from '../helpers/audit.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { GroupView, IdentityView, MessageView } from '../../node/src/api/contract.js'
import type { PeerView } from '../../node/src/messaging/messenger.js'
import type { HostStats } from '../../node/src/host/types.js'

const N = 30
const KILLED = 10
const ARGS = ['--listen', '/ip4/0.0.0.0/tcp/4001', '--mdns-ttl', '20']
const IDLE_WINDOW_MS = 5000

describe(`LAN office: ${N} nodes started together`, () => {
  const lan = new NetnsLan('poft', N, '10.231.30')
  let dir: string
  let nodes: NodeProc[] = []
  const ids: string[] = []
  let group: GroupView
  let failed = false
  const guard = async (fn: () => Promise<void>): Promise<void> => { try { await fn() } catch (e) { failed = true; throw e } }
  const online = async (n: NodeProc): Promise<Set<string>> => new Set((await n.api!.call<PeerView[]>('GET', '/peers')).filter(p => p.online).map(p => p.peerId))
  const history = async (n: NodeProc, conv: string): Promise<MessageView[]> => await n.api!.call<MessageView[]>('GET', `/conversations/${conv}/messages?limit=100000`)
  const connectionsOf = async (n: NodeProc): Promise<Array<{ peerId: string, addr: string, direction: string }>> =>
    (await n.api!.call<{ connectionList: Array<{ peerId: string, addr: string, direction: string }> }>('GET', '/status')).connectionList
  /** every node in `who` lists exactly `expected` (minus itself) as online */
  const presenceIs = async (who: number[], expected: number[]): Promise<boolean> => {
    for (const i of who) {
      const seen = await online(nodes[i]!)
      const want = expected.filter(j => j !== i).map(j => ids[j]!)
      if (seen.size !== want.length || !want.every(id => seen.has(id))) return false
    }
    return true
  }

  before(async () => {
    try {
      const why = canUseNamespaces()
      if (why !== null) throw new Error(why)
      dir = await tmpDir('parley-office-')
      lan.up()
      nodes = lan.hosts.map((h, i) => new NodeProc({ dataDir: join(dir, h.name), name: `Colleague ${i + 1}`, netns: h.name, args: ARGS, logFile: join(dir, `${h.name}.log`) }))
      // all at once, on 2 cores: starting takes a while
      await Promise.all(nodes.map(async n => { await n.start(180_000) }))
      for (const n of nodes) ids.push((await n.api!.call<IdentityView>('GET', '/identity')).peerId)
    } catch (e) { failed = true; throw e }
  })

  after(async () => {
    await Promise.all(nodes.map(async n => { await n.stop() }))
    lan.down()
    if (failed || process.env.KEEP_LOGS === '1') console.error(`office test logs kept in ${dir}`)
    else await removeDir(dir)
  })

  const all = Array.from({ length: N }, (_, i) => i)

  it('everyone sees everyone online, by name, without a full mesh', async (t) => guard(async () => {
    const t0 = Date.now()
    await until(async () => await presenceIs(all, all), 'full presence at every node', 180_000, 500)
    t.diagnostic(`full presence (${N * (N - 1)} directed pairs) ${Date.now() - t0} ms after the last node was ready`)
    // names come with the signed discovery record, without a connection
    const named = await until(async () => { const p = await nodes[0]!.api!.call<PeerView[]>('GET', '/peers'); return p.filter(x => x.name !== null).length === N - 1 ? p : undefined }, 'names', 60_000, 500)
    assert.ok(named.every(p => /^Colleague \d+$/.test(p.name ?? '')))
    const conns = await Promise.all(nodes.map(connectionsOf))
    const total = conns.reduce((k, c) => k + c.length, 0)
    t.diagnostic(`connections while idle: ${total} over ${N} nodes (a full mesh would be ${N * (N - 1)})`)
    assert.ok(total < N * (N - 1) / 4, `no full mesh: ${total} connections`)
    // figures for docs/PERFORMANCE.md (issue 18's "before" table was measured the same way): idle CPU, mDNS packets
    const stats = async (): Promise<Array<{ cpu: number, pkts: number }>> => await Promise.all(nodes.map(async n => ({
      cpu: cpuTicks(n.pid as number),
      pkts: (await n.api!.call<{ host: HostStats }>('GET', '/status')).host.mdns?.packetsIn ?? 0
    })))
    const s0 = await stats()
    const w0 = Date.now()
    // a short window (figures only, nothing asserted on them): about a quarter of a refresh round at TTL 20 s
    // (refreshes at 80-95 % of it), so its packets/s do not compare with longer windows
    await new Promise(resolve => setTimeout(resolve, IDLE_WINDOW_MS))
    const s1 = await stats()
    const secs = (Date.now() - w0) / 1000
    const cpu = s1.map((x, i) => (x.cpu - s0[i]!.cpu) / 100 / secs * 100)
    const pkts = s1.map((x, i) => (x.pkts - s0[i]!.pkts) / secs)
    const rss = nodes.map(n => rssKiB(n.pid as number) / 1024)
    const avg = (a: number[]): string => (a.reduce((x, y) => x + y, 0) / a.length).toFixed(2)
    t.diagnostic(`idle per node over ${secs.toFixed(0)} s: CPU ${avg(cpu)} % (max ${Math.max(...cpu).toFixed(2)}), mDNS packets in ${avg(pkts)}/s, RSS ${avg(rss)} MiB`)
  }))

  it('pairs writing to each other at the same moment end up with one connection each; a group message reaches all 30', async (t) => guard(async () => {
    // 15 pairs, both sides at once
    const sends: Array<Promise<MessageView>> = []
    for (let i = 0; i < N; i += 2) {
      sends.push(nodes[i]!.api!.call<MessageView>('POST', '/messages', { to: ids[i + 1], text: `hi ${i + 1}`, wait: 'delivered', timeoutMs: 120_000 }))
      sends.push(nodes[i + 1]!.api!.call<MessageView>('POST', '/messages', { to: ids[i], text: `hi ${i}`, wait: 'delivered', timeoutMs: 120_000 }))
    }
    for (const m of await Promise.all(sends)) assert.equal(m.state, 'delivered')
    group = await nodes[0]!.api!.call<GroupView>('POST', '/groups', { name: 'Everyone', members: ids.slice(1) })
    const g0 = Date.now()
    const m = await nodes[0]!.api!.call<MessageView>('POST', '/messages', { to: group.id, text: 'all hands at ten', wait: 'delivered', timeoutMs: 180_000 })
    assert.equal(m.state, 'delivered')
    t.diagnostic(`group message to ${N - 1} members delivered (stored by all) in ${Date.now() - g0} ms`)
    await Promise.all(nodes.map(async n => await until(async () => (await history(n, group.id)).some(x => x.text === 'all hands at ten'), 'group message everywhere', 60_000, 750)))
    // settled: at most one connection per pair, seen from both sides, in every look over 3 s (a duplicate
    // closed on one side may still be listed on the other for a moment; one re-made is caught)
    const onePerPair = async (): Promise<boolean> => {
      for (const c of await Promise.all(nodes.map(connectionsOf))) {
        const peers = c.map(x => x.peerId)
        if (new Set(peers).size !== peers.length) return false
      }
      return true
    }
    let since = Infinity
    await until(async () => {
      if (!await onePerPair()) { since = Infinity; return false }
      since = Math.min(since, Date.now())
      return Date.now() - since >= 3000
    }, 'one connection per pair', 60_000, 250)
    const conns = await Promise.all(nodes.map(connectionsOf))
    for (const [i, c] of conns.entries()) {
      const peers = c.map(x => x.peerId)
      assert.equal(new Set(peers).size, peers.length, `node ${i + 1} holds two connections to a peer: ${JSON.stringify(c)}`)
    }
    t.diagnostic(`connections after the group message: ${conns.reduce((k, c) => k + c.length, 0)}`)
  }))

  it(`kill -9 of ${KILLED}: offline for the others; restarted: online again, nothing lost`, async (t) => guard(async () => {
    const killed = all.slice(N - KILLED)
    const alive = all.slice(0, N - KILLED)
    await Promise.all(killed.map(async i => { await nodes[i]!.kill9() }))
    const k0 = Date.now()
    await until(async () => await presenceIs(alive, alive), 'the killed are offline everywhere', 180_000, 1000)
    t.diagnostic(`killed nodes offline at all survivors ${Date.now() - k0} ms after kill -9`)
    // while they are down: group messages and direct ones to them stay queued
    const sent: string[] = []
    for (let k = 0; k < 5; k++) {
      const text = `while down ${k}`
      await nodes[0]!.api!.call('POST', '/messages', { to: group.id, text })
      sent.push(text)
    }
    const direct: string[] = []
    for (const i of killed) {
      const text = `to ${i} from 2`
      await nodes[1]!.api!.call('POST', '/messages', { to: ids[i], text })
      direct.push(text)
    }
    await Promise.all(killed.map(async i => { await nodes[i]!.start(180_000) }))
    const r0 = Date.now()
    await until(async () => await presenceIs(all, all), 'full presence again', 180_000, 1000)
    t.diagnostic(`full presence again ${Date.now() - r0} ms after the restarts`)
    await Promise.all(killed.map(async i => {
      await until(async () => { const h = await history(nodes[i]!, group.id); return sent.every(s => h.some(m => m.text === s)) }, `group messages at node ${i + 1}`, 120_000, 500)
      // the message stored before the kill -9 is still there, before those sent while it was down
      const r = audit(['all hands at ten', ...sent], await history(nodes[i]!, group.id), ids[0]!)
      assert.deepEqual([r.lost, r.duplicated, r.orderViolations], [0, 0, 0], `node ${i + 1}: ${JSON.stringify(r)}`)
      await until(async () => (await history(nodes[i]!, ids[1]!)).some(m => m.text === `to ${i} from 2`), `direct message at node ${i + 1}`, 120_000, 500)
      const d = audit([`to ${i} from 2`], (await history(nodes[i]!, ids[1]!)).filter(m => m.text.startsWith('to ')), ids[1]!)
      assert.deepEqual([d.lost, d.duplicated], [0, 0])
    }))
  }))
})
