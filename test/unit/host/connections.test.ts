/**
 * Connection policy (node/src/host/connections.ts) with real hosts on
 * loopback: one connection per pair after both sides dialled at once, the
 * same one kept on both sides; idle connections closed; above the cap the
 * quiet ones go and a busy one stays.
 */
import { describe, it, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { Libp2pHost, type HostInit } from '../../../node/src/host/libp2p-host.js'
import { createIdentityBytes, loadIdentity } from '../../../core/keys.js'
import { silentLogger } from '../../../core/util/log.js'
import { until } from '../../helpers/nodes.js'
import type { RawStream } from '../../../core/rpc/stream.js'

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
})
