/**
 * An in-memory LAN for the mDNS unit tests: every packet is encoded and
 * decoded as on the wire and handed to every socket (multicast, loopback
 * included) or to one (unicast). Counts what is sent; `onSend` sees each
 * packet as it goes out.
 */
import * as dnsPacket from 'dns-packet'
import type { MdnsTransport, PacketSource, ReceivedPacket } from '../../node/src/host/mdns/socket.js'

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
