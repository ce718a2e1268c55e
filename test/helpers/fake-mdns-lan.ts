/**
 * An in-memory LAN for the mDNS unit tests: every packet is encoded and
 * decoded as on the wire and handed to every socket (multicast, loopback
 * included) or to one (unicast). Counts what is sent; `onSend` sees each
 * packet as it goes out.
 */
import * as dnsPacket from 'dns-packet'
import type { MdnsTransport, PacketSource, ReceivedPacket } from '../../node/src/host/mdns/socket.js'
import { MdnsDiscovery, type MdnsDiscoveryInit } from '../../node/src/host/mdns/discovery.js'
import type { CachedPeer, GoneReason } from '../../node/src/host/mdns/browser.js'
import { silentLogger } from '../../core/util/log.js'

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
/** A peer ID-shaped string, different for each `i` (unsigned records: no key needed). */
export const fakePeerId = (i: number): string => '12D3KooW' + Array.from({ length: 44 }, (_, k) => B58[(i * 7919 + k * 31 + (i >> 3) * k) % 58]).join('')

export interface DiscoveryPeer {
  d: MdnsDiscovery
  seen: Map<string, CachedPeer>
  gone: Array<{ peerId: string, reason: GoneReason, at: number }>
  socket: FakeSocket
  id: string
}

/** Discovery number `i` on `lan` (address 10.0.x.y), started; what it sees and loses is recorded. */
export function startPeer (lan: FakeLan, i: number, init: MdnsDiscoveryInit = {}, advert?: string): DiscoveryPeer {
  const id = fakePeerId(i)
  const socket = lan.socket(`10.0.${i >> 8}.${i & 255}`)
  const seen = new Map<string, CachedPeer>()
  const gone: DiscoveryPeer['gone'] = []
  const d = new MdnsDiscovery({ transport: socket, log: silentLogger }, id, {
    peer: (p) => { seen.set(p.peerId, p) },
    gone: (p, reason) => { seen.delete(p.peerId); gone.push({ peerId: p.peerId, reason, at: Date.now() }) }
  }, init)
  d.start({ peerId: id, addrs: [`/ip4/${socket.address}/tcp/4001/p2p/${id}`], ...(advert !== undefined ? { advert } : {}) })
  return { d, seen, gone, socket, id }
}

export class FakeLan {
  readonly sockets: FakeSocket[] = []
  multicasts = 0
  unicasts = 0
  responses = 0
  queries = 0
  onSend?: (packet: dnsPacket.Packet, from: FakeSocket, to?: PacketSource) => void
  socket (address: string): FakeSocket {
    const s = new FakeSocket(this, address)
    this.sockets.push(s)
    return s
  }
}

export class FakeSocket implements MdnsTransport {
  readonly stats = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0 }
  private readonly subs = new Set<(p: ReceivedPacket) => void>()
  private tokens = 0
  /** false: the host is cut off (sends and hears nothing) */
  up = true
  constructor (private readonly lan: FakeLan, readonly address: string) {}
  token (): number { return ++this.tokens }
  subscribe (fn: (p: ReceivedPacket) => void): () => void { this.subs.add(fn); return () => { this.subs.delete(fn) } }
  send (buf: Uint8Array, sender: number, to?: PacketSource): void {
    if (!this.up) return
    this.stats.packetsOut++
    const packet = dnsPacket.decode(Buffer.from(buf))
    if (packet.type === 'response') this.lan.responses++
    else this.lan.queries++
    if (to === undefined) this.lan.multicasts++
    else this.lan.unicasts++
    this.lan.onSend?.(packet, this, to)
    const from = { address: this.address, port: 5353 }
    for (const s of this.lan.sockets) {
      if (to !== undefined && s.address !== to.address) continue
      setImmediate(() => { s.deliver({ packet: dnsPacket.decode(Buffer.from(buf)), from, ...(s === this && to === undefined ? { sentBy: sender } : {}) }) })
    }
  }
  deliver (p: ReceivedPacket): void {
    if (!this.up) return
    this.stats.packetsIn++
    for (const fn of this.subs) fn(p)
  }
}
