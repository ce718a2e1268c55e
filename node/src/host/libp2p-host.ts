/**
 * The libp2p host: TCP + Noise + yamux + identify + ping, mDNS on the LAN.
 * This file (with keys.ts) is the only place that imports libp2p, so a new
 * libp2p major version touches node/src/host/ alone.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { mdns } from '@libp2p/mdns'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { FaultTolerance } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Connection, PeerDiscovery, PeerInfo } from '@libp2p/interface'
import { ParleyError, toParleyError } from '../../../core/errors.js'
import type { AbortOptions } from '../../../core/util/abort.js'
import { peerOfAddr, type DeviceIdentity } from '../../../core/keys.js'
import type { RawStream, StreamHandler } from '../../../core/rpc/stream.js'
import { TypedEventEmitter } from '../../../core/util/events.js'
import type { PeerHost, PeerHostEvents, Reach } from './types.js'
import type { Logger } from '../../../core/util/log.js'
import { listenError } from '../../../core/listen.js'

export interface HostInit {
  /** @default ['/ip4/0.0.0.0/tcp/0'] */
  listen?: string[]
  /** LAN discovery by multicast DNS. @default true */
  mdns?: boolean
  /** mDNS query interval. @default 5000 */
  mdnsIntervalMs?: number
  /** Announce 127.0.0.1 addresses (loopback-only test setups). @default false */
  announceLoopback?: boolean
  /** Multiaddrs (with /p2p/) dialled at start and redialled while disconnected. @default [] */
  peers?: string[]
  /** How long the peer with the larger ID waits for the other to dial before dialling itself. @default 3000 */
  dialGraceMs?: number
  /** Interval of the redial loop for `peers` and the relay. @default 5000 */
  redialIntervalMs?: number
  /** Relay multiaddr (with /p2p/); can be changed at run time with setRelay. @default none */
  relay?: string
}

export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/0']
export const DEFAULT_MDNS_INTERVAL_MS = 5000
export const DEFAULT_DIAL_GRACE_MS = 3000
export const DEFAULT_REDIAL_INTERVAL_MS = 5000
/** mDNS service name: Parley peers only find each other, not every libp2p node. */
export const MDNS_SERVICE_TAG = '_parley._udp.local'
const DIAL_TIMEOUT_MS = 10_000
/**
 * Streams a peer may open to us on one connection, per Parley protocol (a
 * peer needs one, a few while reconnecting) and in all; more are reset by
 * libp2p as they open.
 */
export const MAX_INBOUND_STREAMS_PER_PROTOCOL = 16
export const MAX_INBOUND_STREAMS_PER_CONNECTION = 256
/** mDNS-triggered dials in flight at most */
const MAX_MDNS_DIALS = 32
const MAX_DISCOVERED = 10_000

const isLoopback = (ma: Multiaddr): boolean => {
  const s = ma.toString()
  return s.startsWith('/ip4/127.') || s.startsWith('/ip6/::1/')
}

type Services = Record<string, unknown> & { mdns?: PeerDiscovery }

export class Libp2pHost extends TypedEventEmitter<PeerHostEvents> implements PeerHost {
  readonly peerId: string
  private node?: Libp2p<Services>
  private readonly init: Required<Omit<HostInit, 'relay'>>
  private relay: { addr: string, peerId: string } | null = null
  private readonly timers = new Set<NodeJS.Timeout>()
  private redialTimer?: NodeJS.Timeout
  private readonly discovered = new Set<string>()
  private readonly dialing = new Set<string>()
  /** kept so a restart (new relay setting) registers them again */
  private readonly handlers = new Map<string, StreamHandler>()

  constructor (private readonly components: { identity: DeviceIdentity, log: Logger }, init: HostInit = {}) {
    super()
    if (components.identity == null) throw new ParleyError('ERR_INVALID_ARGUMENT', 'Libp2pHost needs an identity')
    this.peerId = components.identity.peerId
    this.init = {
      listen: init.listen ?? DEFAULT_LISTEN,
      mdns: init.mdns ?? true,
      mdnsIntervalMs: init.mdnsIntervalMs ?? DEFAULT_MDNS_INTERVAL_MS,
      announceLoopback: init.announceLoopback ?? false,
      peers: init.peers ?? [],
      dialGraceMs: init.dialGraceMs ?? DEFAULT_DIAL_GRACE_MS,
      redialIntervalMs: init.redialIntervalMs ?? DEFAULT_REDIAL_INTERVAL_MS
    }
    for (const p of this.init.peers) peerOfAddr(p)
    if (init.relay !== undefined) this.setRelay(init.relay)
  }

  get relayPeerId (): string | null { return this.relay?.peerId ?? null }

  setRelay (addr: string | null): string | null {
    const before = this.relay?.peerId ?? null
    this.relay = addr === null || addr === '' ? null : { addr, peerId: peerOfAddr(addr) }
    if (this.node !== undefined) {
      // the circuit listen address is part of the libp2p config, and a reservation held on an old relay
      // would keep libp2p from reserving on the new one: restart the host when the relay changes
      if (before !== (this.relay?.peerId ?? null)) void this.restart()
      else this.redialConfigured()
    }
    return this.relay?.peerId ?? null
  }

  /** start, stop and restart run one at a time, in call order (a stop during a restart waits for it, then stops) */
  private lifecycle: Promise<void> = Promise.resolve()

  private inTurn (fn: () => Promise<void>): Promise<void> {
    const run = this.lifecycle.then(fn)
    this.lifecycle = run.catch(() => {})
    return run
  }

  private async restart (): Promise<void> {
    await this.inTurn(async () => {
      if (this.node === undefined) return // stopped meanwhile: stays stopped
      await this.doStop()
      await this.doStart()
      this.components.log.info('host restarted for the new relay setting')
    }).catch((err) => {
      this.components.log.error('host restart failed', { err: toParleyError(err).message })
    })
  }

  async reconnectRelay (): Promise<void> {
    const node = this.node
    const relay = this.relay
    if (node === undefined || relay === null) return
    await node.hangUp(peerIdFromString(relay.peerId)).catch(() => {})
    await this.dial(relay.addr)
  }

  /** Open connections (a closing one no longer counts: presence and dials must not rely on it). */
  private openConnections (peerId?: string): Connection[] {
    const node = this.node
    if (node === undefined) return []
    let conns: Connection[]
    if (peerId === undefined) conns = node.getConnections()
    else {
      // libp2p keeps connections by peer: a lookup, not a scan (this runs for every message sent)
      try { conns = node.getConnections(peerIdFromString(peerId)) } catch { return [] }
    }
    return conns.filter(c => c.status === 'open')
  }

  reach (peerId: string): Reach | null {
    const conns = this.openConnections(peerId)
    if (conns.length === 0) return null
    return conns.some(c => !c.remoteAddr.toString().includes('/p2p-circuit')) ? 'lan' : 'relay'
  }

  async start (): Promise<void> { await this.inTurn(async () => { await this.doStart() }) }

  async stop (): Promise<void> { await this.inTurn(async () => { await this.doStop() }) }

  private async doStart (): Promise<void> {
    if (this.node !== undefined) return
    const announceLoopback = this.init.announceLoopback
    const services: Record<string, unknown> = { identify: identify(), ping: ping() }
    if (this.init.mdns) services.mdns = mdns({ serviceTag: MDNS_SERVICE_TAG, interval: this.init.mdnsIntervalMs })
    // created stopped: the protocol handlers and event listeners go in before it listens, announces by mDNS or
    // dials, so a peer that connects at once never finds /parley/msg missing ("could not negotiate")
    const node = await createLibp2p({
      start: false,
      privateKey: this.components.identity.libp2pKey,
      addresses: {
        // '/p2p-circuit': take a reservation on any connected relay (re-taken when it comes back)
        // '/p2p-circuit' takes a reservation on a connected relay and takes it again when the relay
        // comes back. Only with a relay configured: while it searches, libp2p's relay discovery also
        // dials every discovered peer, which would defeat the one-connection-per-pair tie-break.
        listen: this.relay !== null ? [...this.init.listen, '/p2p-circuit'] : [...this.init.listen],
        announceFilter: (addrs: Multiaddr[]) => announceLoopback ? addrs : addrs.filter(a => !isLoopback(a))
      },
      transports: [tcp(), webSockets(), circuitRelayTransport()],
      // every listen address must work (a taken port stops the start with ERR_PORT_IN_USE); '/p2p-circuit'
      // only starts the search for a relay, so a configured relay that is down does not stop the start
      transportManager: { faultTolerance: FaultTolerance.FATAL_ALL },
      connectionEncrypters: [noise()],
      // all protocols together (circuit stop streams included: one per peer reaching us through the relay)
      streamMuxers: [yamux({ maxInboundStreams: MAX_INBOUND_STREAMS_PER_CONNECTION })],
      services: services as never
    }).catch((err: unknown) => { throw listenError(err) }) as unknown as Libp2p<Services>
    node.addEventListener('peer:connect', (evt) => {
      const peerId = evt.detail.toString()
      this.components.log.info('peer connected', { peerId, at: Date.now() })
      this.emit('peerConnected', { peerId, reach: this.reach(peerId) ?? 'lan' })
    })
    node.addEventListener('peer:disconnect', (evt) => {
      this.components.log.info('peer disconnected', { peerId: evt.detail.toString(), at: Date.now() })
      this.emit('peerDisconnected', { peerId: evt.detail.toString() })
    })
    node.services.mdns?.addEventListener('peer', (evt) => { this.onMdnsPeer(evt.detail) })
    for (const [protocol, handler] of this.handlers) await this.register(node, protocol, handler)
    this.node = node
    const at = Date.now()
    try {
      await node.start()
    } catch (err) {
      this.node = undefined
      try { await node.stop() } catch { /* it never fully started */ }
      throw listenError(err)
    }
    // `at`: when it began to listen (a peer may already have connected by the time start() returns)
    this.components.log.info('host started', { peerId: this.peerId, at, addrs: this.addresses() })
    this.redialTimer = setInterval(() => { this.redialConfigured() }, this.init.redialIntervalMs)
    this.redialTimer.unref()
    this.redialConfigured()
  }

  private async doStop (): Promise<void> {
    const node = this.node
    if (node === undefined) return
    this.node = undefined
    clearInterval(this.redialTimer)
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    // libp2p closes its connections on stop without peer:disconnect events: report them, so presence
    // and the messenger's channels follow (also across a restart for a new relay)
    const peers = [...new Set(node.getConnections().map(c => c.remotePeer.toString()))]
    await node.stop()
    for (const peerId of peers) this.emit('peerDisconnected', { peerId })
  }

  private get started (): Libp2p<Services> {
    if (this.node === undefined) throw new ParleyError('ERR_NOT_STARTED', 'the host is not started')
    return this.node
  }

  addresses (): string[] {
    return this.node?.getMultiaddrs().map(a => a.toString()) ?? []
  }

  connectedPeers (): string[] {
    return [...new Set(this.openConnections().map(c => c.remotePeer.toString()))]
  }

  isConnected (peerId: string): boolean {
    return this.openConnections(peerId).length > 0
  }

  connectionCount (): number {
    return this.node?.getConnections().length ?? 0
  }

  /** For diagnostics: every open connection. */
  connections (): Array<{ peerId: string, addr: string, direction: string }> {
    return this.node?.getConnections().map(c => ({ peerId: c.remotePeer.toString(), addr: c.remoteAddr.toString(), direction: c.direction })) ?? []
  }

  async dial (target: string, options: AbortOptions = {}): Promise<string> {
    const node = this.started
    const signal = AbortSignal.any([AbortSignal.timeout(DIAL_TIMEOUT_MS), ...(options.signal !== undefined ? [options.signal] : [])])
    let t
    try {
      t = target.startsWith('/') ? multiaddr(target) : peerIdFromString(target)
    } catch (err) {
      throw new ParleyError('ERR_INVALID_ARGUMENT', `not a multiaddr or peer ID: ${target.slice(0, 200)}`, { cause: err })
    }
    try {
      const conn = await node.dial(t, { signal })
      return conn.remotePeer.toString()
    } catch (err) {
      // no direct route: try through the relay (remote staff, peers behind NAT)
      const relay = this.relay
      if (relay !== null && !target.startsWith('/') && target !== relay.peerId && this.isConnected(relay.peerId)) {
        try {
          // its own time: the direct attempt may have used all of its own on dead addresses
          const relaySignal = AbortSignal.any([AbortSignal.timeout(DIAL_TIMEOUT_MS), ...(options.signal !== undefined ? [options.signal] : [])])
          const conn = await node.dial(multiaddr(`${relay.addr}/p2p-circuit/p2p/${target}`), { signal: relaySignal })
          return conn.remotePeer.toString()
        } catch (err2) {
          const why = `directly (${(err as Error).message}) nor through the relay (${(err2 as Error).message})`
          throw new ParleyError('ERR_PEER_UNREACHABLE', `cannot reach ${target} ${why}`, { cause: err2 })
        }
      }
      throw new ParleyError('ERR_PEER_UNREACHABLE', `cannot reach ${target}: ${(err as Error).message}`, { cause: err })
    }
  }

  async openStream (peerId: string, protocol: string, options: AbortOptions = {}): Promise<RawStream> {
    const node = this.started
    try {
      const stream = await node.dialProtocol(peerIdFromString(peerId), protocol, { signal: options.signal, runOnLimitedConnection: true })
      return stream as unknown as RawStream
    } catch (err) {
      throw new ParleyError('ERR_PEER_UNREACHABLE', `cannot open ${protocol} to ${peerId}: ${(err as Error).message}`, { cause: err })
    }
  }

  /** Registers a protocol handler; before start() it is kept and registered before the host listens. */
  async handle (protocol: string, handler: StreamHandler): Promise<void> {
    this.handlers.set(protocol, handler)
    if (this.node !== undefined) await this.register(this.node, protocol, handler)
  }

  private async register (node: Libp2p<Services>, protocol: string, handler: StreamHandler): Promise<void> {
    await node.handle(protocol, (stream, connection) => {
      handler(stream as unknown as RawStream, connection.remotePeer.toString())
    }, { maxInboundStreams: MAX_INBOUND_STREAMS_PER_PROTOCOL, maxOutboundStreams: 64, runOnLimitedConnection: true })
  }

  /**
   * mDNS answered: remember the addresses (never loopback: a LAN peer that
   * announces 127.0.0.1 is wrong or lying) and dial with a tie-break, so each
   * pair ends up with one connection: the smaller peer ID dials at once, the
   * other only if nothing connected after a grace period (one-way multicast).
   */
  private onMdnsPeer (info: PeerInfo): void {
    const node = this.node
    if (node === undefined) return
    const peerId = info.id.toString()
    if (peerId === this.peerId) return
    const addrs = info.multiaddrs.filter(a => !isLoopback(a))
    if (addrs.length === 0) return
    if (!this.discovered.has(peerId)) {
      // only for the first-time log line: forget all at a bound (spoofed answers with invented IDs)
      if (this.discovered.size >= MAX_DISCOVERED) this.discovered.clear()
      this.discovered.add(peerId)
      this.components.log.info('peer discovered', { peerId, at: Date.now(), addrs: addrs.map(a => a.toString()) })
    }
    this.emit('peerDiscovered', { peerId, addrs: addrs.map(a => a.toString()) })
    // libp2p itself merges every discovery answer, loopback included, into its peer store; unless loopback is
    // wanted, replace the peer's addresses with the same set minus loopback (a later dial by peer ID must not
    // be pointed at this machine's own ports)
    const stored = this.init.announceLoopback
      ? node.peerStore.merge(info.id, { multiaddrs: addrs })
      : node.peerStore.get(info.id).catch(() => undefined).then(async (p) => {
        const kept = (p?.addresses ?? []).map(a => a.multiaddr).filter(a => !isLoopback(a) || a.toString().includes('/p2p-circuit'))
        const seen = new Set(kept.map(String))
        return await node.peerStore.patch(info.id, { multiaddrs: [...kept, ...addrs.filter(a => !seen.has(a.toString()))] })
      })
    void stored.then(() => {
      if (this.isConnected(peerId)) return
      const dialNow = (): void => {
        // repeated mDNS answers arrive within milliseconds: one dial per peer at a time
        if (this.node === undefined || this.isConnected(peerId) || this.dialing.has(peerId)) return
        // a flood of (spoofed) answers must not fill libp2p's dial queue: later answers try again
        if (this.dialing.size >= MAX_MDNS_DIALS) return
        this.dialing.add(peerId)
        this.dial(peerId)
          .catch((err) => { this.components.log.debug('mdns dial failed', { peerId, err: toParleyError(err).message }) })
          .finally(() => { this.dialing.delete(peerId) })
      }
      if (this.peerId < peerId) { dialNow(); return }
      const t = setTimeout(() => { this.timers.delete(t); dialNow() }, this.init.dialGraceMs)
      this.timers.add(t)
    }).catch((err) => { this.components.log.warn('peer store update failed', { err: toParleyError(err).message }) })
  }

  private redialConfigured (): void {
    const addrs = [...this.init.peers, ...(this.relay !== null ? [this.relay.addr] : [])]
    for (const addr of addrs) {
      if (this.isConnected(peerOfAddr(addr))) continue
      this.dial(addr).catch((err) => { this.components.log.debug('redial failed', { addr, err: toParleyError(err).message }) })
    }
  }
}
