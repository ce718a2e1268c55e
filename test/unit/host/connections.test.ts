/**
 * Connection policy (node/src/host/connections.ts) with real hosts on
 * loopback: one connection per pair after both sides dialled at once, the
 * same one kept on both sides; idle connections closed; above the cap the
 * quiet ones go and a busy one stays; the cap is a bound for dials in flight
 * too; a duplicate with a stream open is not cut while a call may wait there.
 */
import { describe, it, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { Libp2pHost, type HostInit } from '../../../node/src/host/libp2p-host.js'
import { createIdentityBytes, loadIdentity } from '../../../core/keys.js'
import { silentLogger } from '../../../core/util/log.js'
import { until } from '../../helpers/nodes.js'
import type { RawStream } from '../../../core/rpc/stream.js'
import { ConnectionPolicy } from '../../../node/src/host/connections.js'
import type { Connection } from '@libp2p/interface'

const ECHO = '/parley-test/echo/1.0.0'

describe('connection policy', () => {
  let hosts: Libp2pHost[] = []
  afterEach(async () => { await Promise.all(hosts.map(async h => { await h.stop() })); hosts = [] })

  const host = async (init: HostInit = {}): Promise<Libp2pHost> => {
    const h = new Libp2pHost({ identity: loadIdentity(await createIdentityBytes()), log: silentLogger }, { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, announceLoopback: true, ...init })
    await h.start()
    await h.handle(ECHO, (stream) => { stream.addEventListener('message', (e) => { const d = e.data; stream.send(d instanceof Uint8Array ? d : d.subarray()) }) })
    hosts.push(h)
    return h
  }
  const addr = (h: Libp2pHost): string => h.addresses().find(a => a.includes('/127.0.0.1/')) as string

  it('both sides dial at once: after the quiet period both keep the same single connection', async () => {
    const a = await host({ connections: { quietMs: 200 } })
    const b = await host({ connections: { quietMs: 200 } })
    await Promise.all([a.dial(addr(b)), b.dial(addr(a))])
    // libp2p may have merged the two attempts already; what matters is the settled state
    await until(() => a.connections().length === 1 && b.connections().length === 1, 'one connection each side', 8000, 100)
    await new Promise(resolve => setTimeout(resolve, 1500))
    assert.equal(a.connections().length, 1)
    assert.equal(b.connections().length, 1)
    const dir = a.connections()[0]!.direction
    const expected = a.peerId < b.peerId ? 'outbound' : 'inbound'
    assert.equal(dir, expected, 'the kept one is the connection dialled by the smaller peer ID')
    assert.equal(b.connections()[0]!.direction, dir === 'outbound' ? 'inbound' : 'outbound')
  })

  it('an idle connection is closed; streams with traffic keep theirs open', async () => {
    const a = await host({ connections: { idleCloseMs: 1500, quietMs: 200 } })
    const b = await host()
    const c = await host()
    await a.dial(addr(b))
    await a.dial(addr(c))
    const s: RawStream = await a.openStream(b.peerId, ECHO)
    const busy = setInterval(() => { s.send(new Uint8Array([1])) }, 200)
    try {
      await until(() => !a.isConnected(c.peerId), 'the idle connection to c closed', 8000, 100)
      assert.ok(a.isConnected(b.peerId), 'b has traffic: kept')
    } finally {
      clearInterval(busy)
    }
    await until(() => !a.isConnected(b.peerId), 'b closed once idle', 8000, 100)
    assert.ok(a.stats().connections.prunedIdle >= 2)
  })

  it('above the cap the quietest go, a busy one stays, and a new dial waits for room', async () => {
    const a = await host({ connections: { maxConnections: 1, quietMs: 300 } })
    const b = await host()
    const c = await host()
    await a.dial(addr(b))
    const s: RawStream = await a.openStream(b.peerId, ECHO)
    const busy = setInterval(() => { s.send(new Uint8Array([1])) }, 100)
    try {
      // at the cap with a busy connection: the dial waits (no room) until aborted
      await assert.rejects(a.dial(c.peerId, { signal: AbortSignal.timeout(1500) }))
      assert.ok(!a.isConnected(c.peerId))
    } finally {
      clearInterval(busy)
    }
    // b goes quiet: the next dial gets its place
    await a.dial(addr(c))
    assert.ok(a.isConnected(c.peerId))
    await until(() => !a.isConnected(b.peerId), 'quiet b pruned for c', 5000, 100)
    assert.ok(a.stats().connections.prunedCap >= 1)
  })

  it('work in flight holds the peer: its silent connection is neither closed when idle nor pruned for the cap', async () => {
    const a = await host({ connections: { maxConnections: 1, quietMs: 300, idleCloseMs: 800 } })
    const b = await host()
    const c = await host()
    await a.dial(addr(b))
    // a push waiting for a slow answer: no byte moves, but the work is not done
    const release = a.hold(b.peerId)
    await assert.rejects(a.dial(c.peerId, { signal: AbortSignal.timeout(1500) }), 'no room: the held connection stays')
    assert.ok(a.isConnected(b.peerId), 'held: kept past idleCloseMs and the cap')
    release()
    release()
    // released: it counts as active now, then quiet, then its place goes to c
    await a.dial(addr(c))
    await until(() => !a.isConnected(b.peerId), 'b pruned once released and quiet', 5000, 100)
  })

  it('the cap bounds dials in flight too: at the cap no dial goes over it, and one that finds no room fails with ERR_RESOURCE_LIMIT', async () => {
    const a = await host({ connections: { maxConnections: 2, quietMs: 300, capWaitMs: 1500 } })
    const [b, c, d, e] = await Promise.all([host(), host(), host(), host()])
    await a.dial(addr(b))
    // every peer has work in flight: nothing can be pruned to make room
    for (const h of [b, c, d, e]) a.hold(h.peerId)
    const dials = await Promise.allSettled([c, d, e].map(async h => await a.dial(addr(h))))
    const ok = dials.filter(r => r.status === 'fulfilled').length
    assert.equal(ok, 1, `one place left under the cap of 2: ${ok} dials went through`)
    for (const r of dials) if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'ERR_RESOURCE_LIMIT')
    assert.ok(a.stats().connections.peakConnections <= 2, `peak ${a.stats().connections.peakConnections} connections with a cap of 2`)
    assert.equal(a.connections().length, 2)
  })
})

describe('connection policy: duplicates', () => {
  /** a stand-in libp2p connection: what the policy reads, and whether it was closed */
  const fake = (id: string, remote: string, direction: 'inbound' | 'outbound', openedAt: number, streams: number): Connection & { closedNow: boolean } => {
    const conn = {
      id,
      remotePeer: { toString: () => remote },
      remoteAddr: { toString: () => `/ip4/10.0.0.2/tcp/4001/p2p/${remote}` },
      direction,
      status: 'open',
      timeline: { open: openedAt },
      streams: Array.from({ length: streams }, () => ({})),
      closedNow: false,
      close: async () => { conn.closedNow = true; conn.status = 'closed' },
      abort: () => {}
    }
    return conn as unknown as Connection & { closedNow: boolean }
  }
  const self = '12D3KooWAAAA'
  const other = '12D3KooWBBBB'

  it('a duplicate goes once quiet when no stream is open on it; with one open, only after streamQuietMs (a call may still wait there)', () => {
    const t = Date.now()
    // we have the smaller peer ID: the kept connection is our outbound one, the inbound is the duplicate
    const kept = fake('k', other, 'outbound', t, 1)
    const dupIdle = fake('d1', other, 'inbound', t, 0)
    const conns: Connection[] = [kept, dupIdle]
    const policy = new ConnectionPolicy({ peerId: self, connections: () => conns, isProtected: () => false, log: silentLogger }, { quietMs: 1500, streamQuietMs: 20_000 })
    for (const c of conns) policy.opened(c)
    policy.tick(t + 1000)
    assert.ok(!dupIdle.closedNow, 'not yet quiet')
    policy.tick(t + 2000)
    assert.ok(dupIdle.closedNow, 'quiet, no stream: closed')
    assert.ok(!kept.closedNow, 'the kept one stays')
    // a duplicate carrying a stream (the other side's channel, a sync waiting on a busy peer)
    const dupBusy = fake('d2', other, 'inbound', t, 1)
    conns.splice(0, conns.length, kept, dupBusy)
    policy.opened(dupBusy)
    policy.tick(t + 5000)
    assert.ok(!dupBusy.closedNow, 'a stream is open and it was quiet only 5 s: kept')
    policy.tick(t + 21_000)
    assert.ok(dupBusy.closedNow, 'quiet longer than any call timeout: closed')
    assert.ok(!kept.closedNow)
    assert.equal(policy.stats.duplicatesClosed, 2)
  })
})
