/**
 * RFC 6762 discovery at office scale (issue 18), on the in-memory LAN of
 * test/helpers/fake-mdns-lan.ts: a colleague leaving without a goodbye costs
 * the office nothing but that record (no browse restart at every node: an N²
 * query storm per departure); a host cut off from the LAN and back finds
 * everyone and is found again; a newcomer's QU question gets a unicast answer
 * however long ago our last multicast was; unicast answers are rate-limited
 * per querier and in all.
 */
import { describe, it, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import * as dnsPacket from 'dns-packet'
import type { MdnsDiscoveryInit } from '../../../node/src/host/mdns/discovery.js'
import { MdnsResponder } from '../../../node/src/host/mdns/responder.js'
import type { MdnsTransport, PacketSource } from '../../../node/src/host/mdns/socket.js'
import { SERVICE_TYPE, instanceName, type Rr } from '../../../node/src/host/mdns/records.js'
import { until } from '../../helpers/nodes.js'
import { FakeLan, fakePeerId, startPeer, type DiscoveryPeer } from '../../helpers/fake-mdns-lan.js'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

type Peer = DiscoveryPeer

const isBrowse = (p: dnsPacket.Packet): boolean => p.type === 'query' && (p.questions ?? []).some(q => q.name === SERVICE_TYPE && q.type === 'PTR')

describe('mDNS discovery in a large office', () => {
  let peers: Peer[] = []
  afterEach(() => { for (const p of peers) p.d.stop(); peers = [] })

  const make = (lan: FakeLan, i: number, init: MdnsDiscoveryInit = {}): Peer => {
    const p = startPeer(lan, i, init)
    peers.push(p)
    return p
  }

  it('a colleague leaving without a goodbye: its record expires everywhere, and nobody restarts its browse queries', async () => {
    const N = 30
    const lan = new FakeLan()
    const browseAt: number[] = []
    lan.onSend = (packet) => { if (isBrowse(packet)) browseAt.push(Date.now()) }
    // a short fixed TTL (6 s) so the departure expires within the test
    const init = { minTtlS: 6, ttlPerPeerS: 0 }
    const t0 = Date.now()
    const office = Array.from({ length: N }, (_, i) => make(lan, i + 1, init))
    await until(() => office.every(p => p.seen.size === N - 1), 'office warm', 15_000)
    // past the first queries (0, 1, 3, 7, 15 s): every browse interval is 16 s or more now, as in a warm office
    await sleep(Math.max(0, 17_000 - (Date.now() - t0)))
    assert.deepEqual(office.flatMap(p => p.gone), [], 'a steady office: no record lost before the departure')
    const leaver = office[N - 1]!
    leaver.socket.up = false
    const rest = office.slice(0, N - 1)
    await until(() => rest.every(p => p.gone.some(g => g.peerId === leaver.id)), 'the leaver expired everywhere', 10_000, 50)
    const expiredAt = Math.min(...rest.map(p => p.gone.find(g => g.peerId === leaver.id)!.at))
    assert.ok(rest.every(p => p.gone.find(g => g.peerId === leaver.id)!.reason === 'expired'))
    await sleep(Math.max(0, expiredAt + 10_000 - Date.now()))
    const storm = browseAt.filter(t => t >= expiredAt && t < expiredAt + 10_000).length
    // without the fix every node restarts its backoff: queries at +0.1, +1, +3, +7 s, 4 per node (116 here);
    // with it, each node sends at most its one scheduled browse query in these 10 s (fewer: §7.3 suppression)
    assert.ok(storm <= 1.25 * (N - 1), `browse queries in the 10 s after the expiry: ${storm} (about one per node at most)`)
    assert.equal(rest.reduce((n, p) => n + p.d.restarts, 0), 0, 'no browse restarts')
    assert.ok(rest.every(p => p.seen.size === N - 2), 'everyone else still listed everywhere')
  })

  it('a warm office: one browse query per round suppresses the others (§7.3), not one per colleague', async () => {
    const N = 30
    const lan = new FakeLan()
    const browseAt: number[] = []
    lan.onSend = (packet) => { if (isBrowse(packet)) browseAt.push(Date.now()) }
    const t0 = Date.now()
    const office = Array.from({ length: N }, (_, i) => make(lan, i + 1))
    await until(() => office.every(p => p.seen.size === N - 1), 'office warm', 10_000)
    await sleep(Math.max(0, 20_000 - (Date.now() - t0)))
    // the rounds due at about 7 and 15 s: every query lists every colleague, the asker's own record included
    const asked = browseAt.filter(t => t - t0 >= 5000 && t - t0 < 20_000).length
    // without suppression (a query that lists us counted as one with an answer we lack) all 30 asked in each round (60)
    assert.ok(asked <= N / 3, `${asked} browse queries in two rounds of a warm office of ${N}`)
    assert.ok(asked >= 1, 'someone still asks')
  })

  it('a host cut off from the LAN and back: it finds the office again and the office finds it', async () => {
    const N = 12
    const lan = new FakeLan()
    const init = { minTtlS: 3, ttlPerPeerS: 0 }
    const office = Array.from({ length: N }, (_, i) => make(lan, i + 1, init))
    await until(() => office.every(p => p.seen.size === N - 1), 'office warm', 10_000)
    const away = office[0]!
    const rest = office.slice(1)
    away.socket.up = false
    // both sides lose the other by TTL: for the others one record each, for the host all of them (a mass loss)
    await until(() => away.seen.size === 0 && rest.every(p => !p.seen.has(away.id)), 'expired on both sides', 10_000, 50)
    assert.ok(away.d.restarts >= 1, 'the host that lost its whole cache browses from 1 s again')
    assert.equal(rest.reduce((n, p) => n + p.d.restarts, 0), 0, 'the others lost one record each: no restart')
    await sleep(1000)
    away.socket.up = true
    const back = Date.now()
    await until(() => away.seen.size === N - 1 && rest.every(p => p.seen.has(away.id)), 'found again on both sides', 12_000, 50)
    assert.ok(Date.now() - back < 12_000)
  })
})

describe('mDNS answers: unicast to newcomers, rate-limited', () => {
  const capture = (): { transport: MdnsTransport, sent: Array<{ to?: PacketSource, packet: dnsPacket.Packet }> } => {
    const sent: Array<{ to?: PacketSource, packet: dnsPacket.Packet }> = []
    return {
      sent,
      transport: {
        stats: { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0 },
        send: (buf, _sender, to) => { sent.push({ ...(to !== undefined ? { to } : {}), packet: dnsPacket.decode(Buffer.from(buf)) }) },
        subscribe: () => () => {},
        token: () => 1
      }
    }
  }
  const browseQ: Rr[] = [{ name: SERVICE_TYPE, type: 'PTR' }]

  it('a newcomer (QU, no known answers) gets a unicast answer even long after our last multicast; a QU with known answers a multicast', async () => {
    const { transport, sent } = capture()
    // TTL 4 s: a quarter of it (1 s) has passed since the second announcement once we wait 1.2 s after it
    const r = new MdnsResponder({ transport, token: 1, random: () => 0, ttl: () => 4 })
    const id = fakePeerId(1)
    r.update({ peerId: id, addrs: [`/ip4/10.0.0.1/tcp/4001/p2p/${id}`] })
    try {
      await until(() => sent.length === 2, 'two announcements', 3000, 20)
      await sleep(1200)
      sent.length = 0
      r.onQuery({ questions: browseQ, knownAnswers: [], from: { address: '10.0.0.9', port: 5353 }, id: 0, unicast: true }, false)
      await until(() => sent.length === 1, 'answered', 2000, 10)
      assert.deepEqual(sent[0]!.to, { address: '10.0.0.9', port: 5353 }, 'unicast to the newcomer, not a multicast to the office')
      assert.ok(sent[0]!.packet.answers?.some(a => a.type === 'PTR' && a.data === instanceName(id)))
      // a QU querier that knows others (not a newcomer) and our records are stale in caches: multicast, §5.4
      sent.length = 0
      const other = { name: SERVICE_TYPE, type: 'PTR', ttl: 4, data: instanceName(fakePeerId(2)) }
      r.onQuery({ questions: browseQ, knownAnswers: [other], from: { address: '10.0.0.8', port: 5353 }, id: 0, unicast: true }, false)
      await until(() => sent.length === 1, 'answered', 2000, 10)
      assert.equal(sent[0]!.to, undefined, 'multicast')
    } finally { r.stop() }
  })

  it('unicast answers: one a second per querier, a bounded number a second in all', async () => {
    const { transport, sent } = capture()
    const r = new MdnsResponder({ transport, token: 1, random: () => 0, ttl: () => 120 })
    const id = fakePeerId(1)
    r.update({ peerId: id, addrs: [`/ip4/10.0.0.1/tcp/4001/p2p/${id}`] })
    try {
      await until(() => sent.length === 2, 'two announcements', 3000, 20)
      sent.length = 0
      // a one-shot resolver (not port 5353, §6.7) asking 20 times at once: one answer
      const legacy = { address: '10.0.0.9', port: 40000 }
      for (let k = 0; k < 20; k++) r.onQuery({ questions: browseQ, knownAnswers: [], from: legacy, id: k, unicast: false }, false)
      assert.equal(sent.length, 1, 'one answer per querier per second')
      await sleep(1100)
      r.onQuery({ questions: browseQ, knownAnswers: [], from: legacy, id: 99, unicast: false }, false)
      assert.equal(sent.length, 2, 'a second later it is answered again')
      // spoofed sources by the thousand: the answers a second are bounded, and so is what is remembered
      await sleep(1100)
      sent.length = 0
      for (let k = 0; k < 3000; k++) r.onQuery({ questions: browseQ, knownAnswers: [], from: { address: `10.1.${k >> 8}.${k & 255}`, port: 40000 }, id: k, unicast: false }, false)
      assert.ok(sent.length <= 200, `${sent.length} answers to 3000 spoofed sources within a second`)
      assert.ok(sent.length >= 100, 'real queriers are still answered')
      const remembered = (r as unknown as { unicastSentAt: Map<string, number> }).unicastSentAt.size
      assert.ok(remembered <= 1024, `queriers remembered: ${remembered}`)
    } finally { r.stop() }
  })
})
