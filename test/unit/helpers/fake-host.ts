/**
 * A typed in-memory PeerHost for unit tests: hosts on one FakeNetwork connect
 * and disconnect when the test says so (events as the libp2p host fires
 * them), and open streams to each other's handlers over FakeStream pairs.
 */
import { ParleyError } from '../../../core/errors.js'
import type { RawStream, StreamHandler } from '../../../core/rpc/stream.js'
import type { AbortOptions } from '../../../core/util/abort.js'
import { TypedEventEmitter } from '../../../core/util/events.js'
import type { HostStats, PeerHost, PeerHostEvents, Reach } from '../../../node/src/host/types.js'
import { streamPair, type FakeStream } from './fake-stream.js'

export class FakeNetwork {
  private readonly hosts = new Map<string, FakeHost>()
  /** open streams per pair of peers (sorted ids joined by a space), cut when they disconnect */
  private readonly streams = new Map<string, FakeStream[]>()

  host (peerId: string): FakeHost {
    const h = new FakeHost(this, peerId)
    this.hosts.set(peerId, h)
    return h
  }

  get (peerId: string): FakeHost | undefined { return this.hosts.get(peerId) }

  connect (a: string, b: string): void {
    const [ha, hb] = [this.need(a), this.need(b)]
    if (ha.isConnected(b)) return
    ha.linked(b, true)
    hb.linked(a, true)
  }

  disconnect (a: string, b: string): void {
    const [ha, hb] = [this.need(a), this.need(b)]
    if (!ha.isConnected(b)) return
    for (const s of this.streams.get(pair(a, b)) ?? []) s.abort(new Error('connection closed'))
    this.streams.delete(pair(a, b))
    ha.linked(b, false)
    hb.linked(a, false)
  }

  track (a: string, b: string, ...s: FakeStream[]): void {
    this.streams.set(pair(a, b), [...(this.streams.get(pair(a, b)) ?? []), ...s])
  }

  private need (peerId: string): FakeHost {
    const h = this.hosts.get(peerId)
    if (h === undefined) throw new Error(`no fake host ${peerId}`)
    return h
  }
}

const pair = (a: string, b: string): string => [a, b].sort().join(' ')

export class FakeHost extends TypedEventEmitter<PeerHostEvents> implements PeerHost {
  relayPeerId: string | null = null
  /** every dial, in order */
  readonly dials: string[] = []
  /** set to make dials connect (true) or fail (false) */
  dialConnects = false
  private readonly handlers = new Map<string, StreamHandler>()
  private readonly connected = new Set<string>()

  constructor (private readonly net: FakeNetwork, readonly peerId: string) { super() }

  async start (): Promise<void> {}
  async stop (): Promise<void> {}
  addresses (): string[] { return [] }
  connectedPeers (): string[] { return [...this.connected] }
  isConnected (peerId: string): boolean { return this.connected.has(peerId) }
  connectionCount (): number { return this.connected.size }
  connections (): Array<{ peerId: string, addr: string, direction: string }> {
    return [...this.connected].map(peerId => ({ peerId, addr: '/memory', direction: 'outbound' }))
  }

  reach (peerId: string): Reach | null { return this.connected.has(peerId) ? 'lan' : null }
  /** no LAN discovery here: present means connected */
  isOnline (peerId: string): boolean { return this.connected.has(peerId) }
  onlinePeers (): string[] { return [...this.connected] }
  /** the last advert set (the signed profile, as JSON) */
  advert: string | undefined
  setAdvert (text: string | undefined): void { this.advert = text }
  advertOf (_peerId: string): string | undefined { return undefined }
  preferred: string[] = []
  setPreferred (peerIds: string[]): void { this.preferred = [...peerIds] }
  stats (): HostStats { return { mdns: null, connections: { prunedIdle: 0, prunedCap: 0, duplicatesClosed: 0, peakConnections: this.connected.size } } }

  /** The relay is the peer at the end of `addr` (after /p2p/). */
  setRelay (addr: string | null): string | null {
    this.relayPeerId = addr === null ? null : addr.slice(addr.lastIndexOf('/p2p/') + 5)
    return this.relayPeerId
  }

  async reconnectRelay (): Promise<void> {}

  async dial (target: string, _options?: AbortOptions): Promise<string> {
    this.dials.push(target)
    if (!this.dialConnects || this.net.get(target) === undefined) throw new ParleyError('ERR_PEER_UNREACHABLE', `cannot reach ${target}`)
    this.net.connect(this.peerId, target)
    return target
  }

  async openStream (peerId: string, protocol: string, _options?: AbortOptions): Promise<RawStream> {
    if (!this.connected.has(peerId)) throw new ParleyError('ERR_PEER_UNREACHABLE', `not connected to ${peerId}`)
    const handler = this.net.get(peerId)?.handlers.get(protocol)
    if (handler === undefined) throw new ParleyError('ERR_NOT_FOUND', `${peerId} does not handle ${protocol}`)
    const [mine, theirs] = streamPair()
    this.net.track(this.peerId, peerId, mine, theirs)
    handler(theirs, this.peerId)
    return mine
  }

  async handle (protocol: string, handler: StreamHandler): Promise<void> {
    this.handlers.set(protocol, handler)
  }

  /** Called by the network: the connection to `peerId` opened or closed. */
  linked (peerId: string, up: boolean): void {
    if (up) {
      this.connected.add(peerId)
      this.emit('peerConnected', { peerId, reach: 'lan' })
      this.emit('presenceChanged', { peerId, online: true })
    } else {
      this.connected.delete(peerId)
      this.emit('peerDisconnected', { peerId })
      this.emit('presenceChanged', { peerId, online: false })
    }
  }
}
