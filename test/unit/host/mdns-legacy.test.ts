/**
 * Parley 0.1.0 peers on the LAN (issue 11, migration; review s4 B2): 0.1.0 announced `_parley._udp.local`
 * with @libp2p/mdns, today's discovery browses `_parley._tcp.local`. The old type is browsed too, rarely
 * and with suppression (no storm), and a host dials each old peer heard once (its profile then says
 * "needs an update"). On the in-memory LAN (test/helpers/fake-mdns-lan.ts) with the real record parser.
 */
import { describe, it, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import * as dnsPacket from 'dns-packet'
import { FakeLan, fakePeerId, type FakeSocket } from '../../helpers/fake-mdns-lan.js'
import { MdnsDiscovery } from '../../../node/src/host/mdns/discovery.js'
import { LEGACY_SERVICE_TYPE, type Rr } from '../../../node/src/host/mdns/records.js'
import { Libp2pHost } from '../../../node/src/host/libp2p-host.js'
import { createIdentityBytes, loadIdentity } from '../../../core/keys.js'
import { silentLogger } from '../../../core/util/log.js'
import { until } from '../../helpers/nodes.js'

/** Answers as @libp2p/mdns did in Parley 0.1.0: every PTR question for its service, by multicast, unsigned. */
function v01Responder (socket: FakeSocket, peerId: string, addrs: string[]): () => void {
  const name = `x7f3kq9zt2m4${peerId.slice(-6).toLowerCase()}.${LEGACY_SERVICE_TYPE}`
  return socket.subscribe(({ packet }) => {
    if (packet.type !== 'query' || !(packet.questions ?? []).some(q => q.name === LEGACY_SERVICE_TYPE && q.type === 'PTR')) return
    socket.send(dnsPacket.encode({
      type: 'response',
      answers: [
        { name: LEGACY_SERVICE_TYPE, type: 'PTR', class: 'IN', ttl: 120, data: name },
        { name, type: 'SRV', class: 'IN', ttl: 120, data: { port: 4001, target: 'old.local', priority: 10, weight: 1 } },
        { name, type: 'TXT', class: 'IN', ttl: 120, data: addrs.map(a => `dnsaddr=${a}`) }
      ]
    }), 0)
  })
}

describe('mDNS: Parley 0.1.0 peers (_parley._udp.local)', () => {
  const stops: Array<() => unknown> = []
  afterEach(async () => { for (const s of stops.splice(0).reverse()) await s() })

  it('every updated peer hears the old one; an office of them asks a few times, not once each', async () => {
    const lan = new FakeLan()
    const old = fakePeerId(900)
    const oldSocket = lan.socket('10.0.9.1')
    stops.push(v01Responder(oldSocket, old, [`/ip4/10.0.9.1/tcp/4001/p2p/${old}`]))
    const heard = new Map<string, string[]>()
    const all: MdnsDiscovery[] = []
    for (let i = 1; i <= 10; i++) {
      const id = fakePeerId(i)
      const socket = lan.socket(`10.0.0.${i}`)
      const d = new MdnsDiscovery({ transport: socket, log: silentLogger }, id, {
        peer: () => {}, gone: () => {}, legacy: (peerId, addrs) => { heard.set(`${i} ${peerId}`, addrs) }
      })
      d.start({ peerId: id, addrs: [`/ip4/10.0.0.${i}/tcp/4001/p2p/${id}`] })
      all.push(d)
      stops.push(() => { d.stop() })
    }
    await until(() => heard.size === 10, 'every updated peer hears the old one', 5000)
    assert.deepEqual(heard.get(`1 ${old}`), [`/ip4/10.0.9.1/tcp/4001/p2p/${old}`])
    // 4 s: without suppression each of the 10 asks at about 0.1, 1.1 and 3.1 s (30 questions)
    await new Promise(resolve => setTimeout(resolve, 4000))
    const asked = all.reduce((n, d) => n + d.legacyQueries, 0)
    assert.ok(asked >= 1 && asked <= 12, `legacy questions in 4 s by 10 peers: ${asked}`)
    assert.equal(heard.size, 10, 'each old peer is reported once')
  })

  it('a host dials the old peer it heard (its profile then says "needs an update")', async () => {
    const lan = new FakeLan()
    // the "old" peer: a libp2p host without mDNS of its own; the responder announces its address the 0.1.0 way
    const old = new Libp2pHost({ identity: loadIdentity(await createIdentityBytes()), log: silentLogger }, { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, announceLoopback: true })
    await old.start()
    stops.push(async () => { await old.stop() })
    const addr = old.addresses().find(a => a.includes('/127.0.0.1/')) as string
    stops.push(v01Responder(lan.socket('10.0.9.1'), old.peerId, [addr.includes('/p2p/') ? addr : `${addr}/p2p/${old.peerId}`]))
    const host = new Libp2pHost({ identity: loadIdentity(await createIdentityBytes()), log: silentLogger, mdnsTransport: lan.socket('10.0.0.1') },
      { listen: ['/ip4/127.0.0.1/tcp/0'], announceLoopback: true })
    await host.start()
    stops.push(async () => { await host.stop() })
    await until(() => host.isConnected(old.peerId), 'the updated host connects to the old peer', 10_000)
  })

  it('ignores records of the old type that name no peer, and its own', async () => {
    const lan = new FakeLan()
    const id = fakePeerId(1)
    const heard: string[] = []
    const d = new MdnsDiscovery({ transport: lan.socket('10.0.0.1'), log: silentLogger }, id, { peer: () => {}, gone: () => {}, legacy: (p) => { heard.push(p) } })
    d.start({ peerId: id, addrs: [] })
    stops.push(() => { d.stop() })
    const other = lan.socket('10.0.0.2')
    const txt = (name: string, data: string[]): Rr => ({ name, type: 'TXT', class: 'IN', ttl: 120, data })
    other.send(dnsPacket.encode({ type: 'response', answers: [txt(`a.${LEGACY_SERVICE_TYPE}`, ['dnsaddr=/ip4/10.0.0.2/tcp/1']), txt(`b.${LEGACY_SERVICE_TYPE}`, [`dnsaddr=/ip4/10.0.0.1/tcp/1/p2p/${id}`])] as dnsPacket.Answer[] }), 0)
    const good = fakePeerId(2)
    other.send(dnsPacket.encode({ type: 'response', answers: [txt(`c.${LEGACY_SERVICE_TYPE}`, [`dnsaddr=/ip4/10.0.0.2/tcp/1/p2p/${good}`])] as dnsPacket.Answer[] }), 0)
    await until(() => heard.length > 0, 'the valid old record heard', 2000)
    assert.deepEqual(heard, [good])
  })
})
