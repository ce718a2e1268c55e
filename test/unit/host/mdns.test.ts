/**
 * RFC 6762 discovery (node/src/host/mdns/) on an in-memory LAN
 * (test/helpers/fake-mdns-lan.ts). Counts what is sent.
 */
import { describe, it, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import * as dnsPacket from 'dns-packet'
import { MdnsDiscovery, type MdnsDiscoveryInit } from '../../../node/src/host/mdns/discovery.js'
import type { MdnsTransport } from '../../../node/src/host/mdns/socket.js'
import { FakeLan, fakePeerId, startPeer, type DiscoveryPeer } from '../../helpers/fake-mdns-lan.js'
import type { CachedPeer, GoneReason } from '../../../node/src/host/mdns/browser.js'
import { SERVICE_TYPE, readInstances, selfRecords, type Rr } from '../../../node/src/host/mdns/records.js'
import { MdnsResponder } from '../../../node/src/host/mdns/responder.js'
import { silentLogger } from '../../../core/util/log.js'
import { until } from '../../helpers/nodes.js'
import { createIdentityBytes, loadIdentity } from '../../../core/keys.js'
import { signWithDevice, verifyByPeer } from '../../../node/src/host/signing.js'

type Peer = DiscoveryPeer

describe('mDNS discovery (RFC 6762 behaviour)', () => {
  let peers: Peer[] = []
  afterEach(() => { for (const p of peers) p.d.stop(); peers = [] })

  const make = (lan: FakeLan, i: number, init: MdnsDiscoveryInit = {}, advert?: string): Peer => {
    const p = startPeer(lan, i, init, advert)
    peers.push(p)
    return p
  }

  it('two peers find each other with their addresses and advert; a goodbye removes at once', async () => {
    const lan = new FakeLan()
    const a = make(lan, 1, {}, 'hello from a ' + '字'.repeat(200))
    const b = make(lan, 2)
    await until(() => a.seen.has(b.id) && b.seen.has(a.id), 'both see each other', 5000)
    assert.deepEqual(b.seen.get(a.id)?.addrs, [`/ip4/10.0.0.1/tcp/4001/p2p/${a.id}`])
    assert.equal(b.seen.get(a.id)?.advert, 'hello from a ' + '字'.repeat(200), 'the advert survives chunking on UTF-8 boundaries')
    assert.equal(b.seen.get(a.id)?.ttlS, 120)
    a.d.stop()
    await until(() => b.gone.some(g => g.peerId === a.id && g.reason === 'goodbye'), 'goodbye seen', 2000)
    assert.ok(!b.d.has(a.id))
  })

  it('known-answer suppression: a warm office answers a browse query with nothing', async () => {
    const lan = new FakeLan()
    const all = Array.from({ length: 20 }, (_, i) => make(lan, i + 1))
    await until(() => all.every(p => p.seen.size === 19), 'everyone sees everyone', 10_000)
    // let the first queries and announcements pass
    await new Promise(resolve => setTimeout(resolve, 2500))
    const before = lan.responses
    const observer = lan.socket('10.9.9.9')
    // a query with everyone in its known-answer list: nobody answers
    const ka = all.map(p => ({ name: SERVICE_TYPE, type: 'PTR' as const, ttl: 100, data: `${p.id}.${SERVICE_TYPE}` }))
    observer.send(dnsPacket.encode({ type: 'query', questions: [{ name: SERVICE_TYPE, type: 'PTR' }], answers: ka }), 1)
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.equal(lan.responses - before, 0, 'no answers to a query that knows everyone')
    // without the list, every other peer answers once (after its 20-120 ms delay), at most one multicast per second each
    observer.send(dnsPacket.encode({ type: 'query', questions: [{ name: SERVICE_TYPE, type: 'PTR' }] }), 1)
    observer.send(dnsPacket.encode({ type: 'query', questions: [{ name: SERVICE_TYPE, type: 'PTR' }] }), 1)
    await new Promise(resolve => setTimeout(resolve, 400))
    assert.equal(lan.responses - before, 20, 'one aggregated answer per peer')
  })

  it('a crashed peer (no goodbye) is dropped after reconfirmation or at its TTL, a live one never', async () => {
    const lan = new FakeLan()
    const a = make(lan, 1, { minTtlS: 3, reconfirmMs: 1500 })
    const b = make(lan, 2, { minTtlS: 3, reconfirmMs: 1500 })
    const c = make(lan, 3, { minTtlS: 3, reconfirmMs: 1500 })
    await until(() => a.seen.size === 2 && b.seen.size === 2 && c.seen.size === 2, 'all see all', 5000)
    // c crashes: it stops sending and hearing, without a goodbye
    c.socket.up = false
    a.d.reconfirm(c.id)
    await until(() => a.gone.some(g => g.peerId === c.id && g.reason === 'unconfirmed'), 'reconfirmation drops c at a', 3000)
    // b did not ask: c leaves b's cache when its TTL runs out
    await until(() => b.gone.some(g => g.peerId === c.id), 'c expires at b', 6000)
    // b stays in a's cache across several TTLs (refresh queries at 80-95 % get answers)
    await new Promise(resolve => setTimeout(resolve, 4000))
    assert.ok(a.seen.has(b.id) && b.seen.has(a.id), 'live peers are refreshed, not expired')
    assert.ok(!a.gone.some(g => g.peerId === b.id), JSON.stringify(a.gone))
  })

  it('a QU first query gets unicast answers from a warm office; later queries back off', async () => {
    const lan = new FakeLan()
    const office = Array.from({ length: 10 }, (_, i) => make(lan, i + 1))
    await until(() => office.every(p => p.seen.size === 9), 'office warm', 10_000)
    await new Promise(resolve => setTimeout(resolve, 1200))
    const uni = lan.unicasts
    const newcomer = make(lan, 50)
    await until(() => newcomer.seen.size === 10, 'newcomer sees the office', 5000)
    assert.ok(lan.unicasts - uni >= 5, `most answers to the QU query are unicast (${lan.unicasts - uni})`)
    // a responder and the cache over 6 s: queries at ~0, 1, 3 s then 7 s: few packets
    const q0 = lan.queries
    await new Promise(resolve => setTimeout(resolve, 6000))
    assert.ok(lan.queries - q0 <= 22, `browse queries back off (${lan.queries - q0} in 6 s from 11 peers)`)
  })

  it('a newcomer to a large office gets its answers spread out, not in one burst', async () => {
    // 50 responders that announced a moment ago (so a QU question gets a unicast answer, §5.4), with the
    // spread window a large office gives them (discovery.ts: 2 ms per colleague, here 400 ms)
    const sent: number[] = []
    const transport: MdnsTransport = {
      stats: { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0 },
      send: (_buf, _sender, to) => { if (to !== undefined) sent.push(Date.now()) },
      subscribe: () => () => {},
      token: () => 1
    }
    const responders = Array.from({ length: 50 }, (_, i) => {
      const r = new MdnsResponder({ transport, token: 1, random: Math.random, ttl: () => 120, spreadMs: () => 400 })
      const id = fakePeerId(i + 1)
      r.update({ peerId: id, addrs: [`/ip4/10.0.0.${i + 1}/tcp/4001/p2p/${id}`] })
      return r
    })
    try {
      const t0 = Date.now()
      const from = { address: '10.0.9.9', port: 5353 }
      for (const r of responders) r.onQuery({ questions: [{ name: SERVICE_TYPE, type: 'PTR' }], knownAnswers: [], from, id: 0, unicast: true }, false)
      assert.equal(sent.length, 0, 'no answer at once')
      await until(() => sent.length === 50, 'every responder answered by unicast', 3000, 10)
      const span = Math.max(...sent) - Math.min(...sent)
      assert.ok(span > 200, `50 answers spread over ${span} ms (20 + up to 400 ms), not one burst`)
      assert.ok(Math.max(...sent) - t0 < 1000)
    } finally {
      for (const r of responders) r.stop()
    }
    // the window: 100 ms (the RFC's 20-120 ms) for a small office
    const lan = new FakeLan()
    assert.equal(make(lan, 1).d.spreadMs(), 100)
  })

  it('TTL grows with the office, capped', () => {
    const lan = new FakeLan()
    const p = make(lan, 1, { minTtlS: 120, ttlPerPeerS: 2 })
    assert.equal(p.d.ttl(), 120)
    const recs = selfRecords({ peerId: p.id, addrs: [`/ip4/10.0.0.1/tcp/1/p2p/${p.id}`] }, 0)
    assert.equal((recs.ptr as Rr).ttl, 0)
  })

  it('reads only consistent TXT records: one peer ID per instance, bounded advert', () => {
    const id = fakePeerId(3)
    const other = fakePeerId(4)
    const recs: Rr[] = [
      { name: SERVICE_TYPE, type: 'PTR', ttl: 120, data: `x.${SERVICE_TYPE}` },
      { name: `x.${SERVICE_TYPE}`, type: 'TXT', ttl: 120, data: [Buffer.from(`dnsaddr=/ip4/1.2.3.4/tcp/1/p2p/${id}`), Buffer.from(`dnsaddr=/ip4/1.2.3.5/tcp/1/p2p/${other}`)] },
      { name: `y.${SERVICE_TYPE}`, type: 'TXT', ttl: 50, data: [Buffer.from(`dnsaddr=/ip4/1.2.3.4/tcp/1/p2p/${id}`), Buffer.from('a1=only the second chunk')] }
    ]
    const seen = readInstances(recs)
    assert.equal(seen.length, 1)
    assert.equal(seen[0]!.instance, `y.${SERVICE_TYPE}`)
    assert.equal(seen[0]!.ttl, 50)
    assert.equal(seen[0]!.advert, undefined, 'an incomplete advert is not passed on')
  })

  it('signed records: an unsigned or forged record and a forged goodbye are refused; the real one counts', async () => {
    const lan = new FakeLan()
    const ana = loadIdentity(await createIdentityBytes())
    const ben = loadIdentity(await createIdentityBytes())
    const mk = (id: typeof ana, addr: string): Peer => {
      const socket = lan.socket(addr)
      const seen = new Map<string, CachedPeer>()
      const gone: Peer['gone'] = []
      const d = new MdnsDiscovery({ transport: socket, log: silentLogger, sign: (b) => signWithDevice(id, b), verify: verifyByPeer }, id.peerId, {
        peer: (p) => { seen.set(p.peerId, p) },
        gone: (p, reason) => { seen.delete(p.peerId); gone.push({ peerId: p.peerId, reason, at: Date.now() }) }
      })
      const p = { d, seen, gone, socket, id: id.peerId }
      peers.push(p)
      d.start({ peerId: id.peerId, addrs: [`/ip4/${addr}/tcp/4001/p2p/${id.peerId}`] })
      return p
    }
    const a = mk(ana, '10.0.0.1')
    const b = mk(ben, '10.0.0.2')
    await until(() => a.seen.has(ben.peerId) && b.seen.has(ana.peerId), 'signed records accepted', 5000)
    const spoofer = lan.socket('10.0.0.66')
    const txt = (ttl: number, extra: string[] = []): Rr[] => [
      { name: SERVICE_TYPE, type: 'PTR', ttl, data: `x.${SERVICE_TYPE}` },
      { name: `x.${SERVICE_TYPE}`, type: 'TXT', ttl, data: [`dnsaddr=/ip4/10.0.0.66/tcp/4001/p2p/${ben.peerId}`, ...extra] }
    ]
    spoofer.send(dnsPacket.encode({ type: 'response', answers: txt(120) as dnsPacket.Answer[] }), 1)
    spoofer.send(dnsPacket.encode({ type: 'response', answers: txt(120, [`s=${Buffer.alloc(64, 7).toString('base64')}`]) as dnsPacket.Answer[] }), 1)
    spoofer.send(dnsPacket.encode({ type: 'response', answers: txt(0) as dnsPacket.Answer[] }), 1)
    await until(() => a.d.rejected >= 3, 'the three lies refused', 2000)
    assert.deepEqual(a.seen.get(ben.peerId)?.addrs, [`/ip4/10.0.0.2/tcp/4001/p2p/${ben.peerId}`], 'the address was not replaced')
    assert.equal(a.gone.length, 0, 'no forged goodbye took effect')
  })
})
