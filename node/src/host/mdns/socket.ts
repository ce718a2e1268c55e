/**
 * The mDNS socket: UDP 5353 shared with other responders on the machine
 * (avahi-daemon, Bonjour) through SO_REUSEADDR, member of 224.0.0.251 on every
 * IPv4 interface, multicast loopback on (another Parley or a browser on the
 * same machine must see us). Packets are decoded once here and handed to every
 * subscriber, so one socket can carry many discovery instances (the office
 * benchmark runs hundreds of emulated colleagues in one process).
 */
import dgram from 'node:dgram'
import { networkInterfaces } from 'node:os'
import * as dnsPacket from 'dns-packet'
import type { Logger } from '../../../../core/util/log.js'

export const MDNS_PORT = 5353
export const MDNS_GROUP = '224.0.0.251'
/** RFC 6762 §17: an mDNS message, IP and UDP headers included, is at most 9000 bytes. */
export const MAX_MDNS_PACKET_BYTES = 8900
/** Kernel receive buffer asked for (the kernel caps it at net.core.rmem_max): a burst of answers must not be dropped. */
const RECV_BUFFER_BYTES = 4 << 20
const INTERFACE_RESCAN_MS = 10_000
/** How long a sent packet is remembered to recognise it when multicast loopback hands it back. */
const OWN_PACKET_MEMORY_MS = 2000
/** stop() waits this long at most for queued sends (the goodbye) */
const FLUSH_MAX_MS = 500

export interface PacketSource { address: string, port: number }

export interface ReceivedPacket {
  packet: dnsPacket.Packet
  from: PacketSource
  /** the token of the subscriber that sent it (multicast loopback), if it came from this socket */
  sentBy?: number
}

export interface MdnsTransport {
  /** Sends an encoded packet to the group, or unicast to `to`. `sender` marks it as ours when it loops back. */
  send(buf: Uint8Array, sender: number, to?: PacketSource): void
  subscribe(fn: (p: ReceivedPacket) => void): () => void
  /** a fresh token for a subscriber that sends */
  token(): number
  /** calls `fn` when the socket joined the group on an interface that appeared after the start */
  onNetworkChange?(fn: () => void): () => void
  readonly stats: { packetsIn: number, packetsOut: number, bytesIn: number, bytesOut: number, dropped: number }
}

export class UdpMdnsSocket implements MdnsTransport {
  readonly stats = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0 }
  /** packets in by kind: queries, responses, and our own multicasts handed back by the loopback (part of both) */
  readonly kinds = { queriesIn: 0, responsesIn: 0, ownIn: 0 }
  private socket?: dgram.Socket
  private readonly subscribers = new Set<(p: ReceivedPacket) => void>()
  private readonly changeListeners = new Set<() => void>()
  private readonly memberships = new Set<string>()
  private readonly recentlySent = new Map<string, { sender: number, at: number }>()
  private rescan?: NodeJS.Timeout
  private tokens = 0
  /** sends handed to the kernel whose callback has not come yet */
  private sending = 0

  constructor (private readonly log: Logger, private readonly port = MDNS_PORT) {}

  token (): number { return ++this.tokens }

  async start (): Promise<void> {
    if (this.socket !== undefined) return
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true })
    this.socket = socket
    socket.on('message', (buf, rinfo) => { this.onMessage(buf, { address: rinfo.address, port: rinfo.port }) })
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(this.port, () => { socket.off('error', reject); resolve() })
    })
    socket.on('error', (err) => { this.log.warn('mdns socket error', { err: err.message }) })
    socket.setMulticastTTL(255)
    socket.setMulticastLoopback(true)
    try { socket.setRecvBufferSize(RECV_BUFFER_BYTES) } catch { /* capped by the kernel: keep its size */ }
    this.joinInterfaces()
    this.rescan = setInterval(() => { if (this.joinInterfaces()) for (const fn of this.changeListeners) fn() }, INTERFACE_RESCAN_MS)
    this.rescan.unref()
  }

  async stop (): Promise<void> {
    const socket = this.socket
    if (socket === undefined) return
    this.socket = undefined
    clearInterval(this.rescan)
    this.memberships.clear()
    // the goodbye was just handed to the socket: closing now would drop it
    const deadline = Date.now() + FLUSH_MAX_MS
    while (this.sending > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
    await new Promise<void>(resolve => { socket.close(() => { resolve() }) })
  }

  onNetworkChange (fn: () => void): () => void {
    this.changeListeners.add(fn)
    return () => { this.changeListeners.delete(fn) }
  }

  subscribe (fn: (p: ReceivedPacket) => void): () => void {
    this.subscribers.add(fn)
    return () => { this.subscribers.delete(fn) }
  }

  send (buf: Uint8Array, sender: number, to?: PacketSource): void {
    const socket = this.socket
    if (socket === undefined) return
    this.stats.packetsOut++
    this.stats.bytesOut += buf.length
    if (to === undefined) this.remember(buf, sender)
    this.sending++
    socket.send(buf, to?.port ?? MDNS_PORT, to?.address ?? MDNS_GROUP, (err) => {
      this.sending--
      if (err != null) this.log.debug('mdns send failed', { err: err.message })
    })
  }

  /** Joins the group on interfaces that appeared since the last scan (a laptop's Wi-Fi, a test's veth); true if it joined one. */
  private joinInterfaces (): boolean {
    const socket = this.socket
    if (socket === undefined) return false
    let joined = false
    for (const list of Object.values(networkInterfaces())) {
      const v4 = list?.find(i => i.family === 'IPv4')
      if (v4 === undefined || this.memberships.has(v4.address)) continue
      try {
        socket.addMembership(MDNS_GROUP, v4.address)
        this.memberships.add(v4.address)
        joined = true
      } catch (err) {
        this.log.debug('mdns membership failed', { addr: v4.address, err: (err as Error).message })
      }
    }
    return joined
  }

  private remember (buf: Uint8Array, sender: number): void {
    const now = Date.now()
    if (this.recentlySent.size > 256) {
      for (const [k, v] of this.recentlySent) if (now - v.at > OWN_PACKET_MEMORY_MS) this.recentlySent.delete(k)
    }
    this.recentlySent.set(Buffer.from(buf).toString('latin1'), { sender, at: now })
  }

  private onMessage (buf: Buffer, from: PacketSource): void {
    this.stats.packetsIn++
    this.stats.bytesIn += buf.length
    let packet: dnsPacket.Packet
    try {
      packet = dnsPacket.decode(buf)
    } catch {
      this.stats.dropped++
      return
    }
    const mine = this.recentlySent.get(buf.toString('latin1'))
    const sentBy = mine !== undefined && Date.now() - mine.at <= OWN_PACKET_MEMORY_MS ? mine.sender : undefined
    if (packet.type === 'response') this.kinds.responsesIn++
    else this.kinds.queriesIn++
    if (sentBy !== undefined) this.kinds.ownIn++
    for (const fn of this.subscribers) {
      try { fn({ packet, from, ...(sentBy !== undefined ? { sentBy } : {}) }) } catch (err) {
        this.log.warn('mdns packet handler failed', { err: (err as Error).message })
      }
    }
  }
}
