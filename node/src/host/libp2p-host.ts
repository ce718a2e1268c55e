/**
 * The libp2p host: TCP + Noise + yamux + identify + ping, RFC 6762 mDNS on the
 * LAN (mdns/), connections on demand under a policy (connections.ts).
 * node/src/host/ is the only place that imports libp2p, so a new libp2p major
 * version touches it alone.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { FaultTolerance } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Connection } from '@libp2p/interface'
import { ParleyError, toParleyError } from '../../../core/errors.js'
import type { AbortOptions } from '../../../core/util/abort.js'
import { peerOfAddr, relayAddrs, type DeviceIdentity } from '../../../core/keys.js'
import type { RawStream, StreamHandler } from '../../../core/rpc/stream.js'
import { TypedEventEmitter } from '../../../core/util/events.js'
import { signWithDevice, verifyByPeer } from './signing.js'
import { ConnectionPolicy, type ConnectionPolicyInit } from './connections.js'
import { MdnsDiscovery, type MdnsDiscoveryInit } from './mdns/discovery.js'
import { UdpMdnsSocket, type MdnsTransport } from './mdns/socket.js'
import { SERVICE_TYPE } from './mdns/records.js'
import type { CachedPeer, GoneReason } from './mdns/browser.js'
import type { HostStats, PeerHost, PeerHostEvents, Reach } from './types.js'
import type { Logger } from '../../../core/util/log.js'
import { listenError } from '../../../core/listen.js'

export interface HostInit {
  /** @default ['/ip4/0.0.0.0/tcp/0'] */
  listen?: string[]
  /** LAN discovery by multicast DNS. @default true */
  mdns?: boolean
  /** RFC 6762 discovery settings (TTLs, query backoff, reconfirmation). */
  discovery?: MdnsDiscoveryInit
  /** caps, idle close, dial concurrency (connections.ts) */
  connections?: ConnectionPolicyInit
  /** Announce 127.0.0.1 addresses (loopback-only test setups). @default false */
  announceLoopback?: boolean
  /** Multiaddrs (with /p2p/) dialled at start and redialled while disconnected. @default [] */
  peers?: string[]
  /** Interval of the redial loop for `peers` and the relay. @default 5000 */
  redialIntervalMs?: number
  /** Relay multiaddr (with /p2p/), or several comma-separated (instances of one relay); can be changed at run time with setRelay. @default none */
  relay?: string
}

export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/0']
export const DEFAULT_REDIAL_INTERVAL_MS = 5000
/** DNS-SD service type: Parley peers only find each other, not every libp2p node. */
export const MDNS_SERVICE_TAG = SERVICE_TYPE
const DIAL_TIMEOUT_MS = 10_000
/**
 * Streams a peer may open to us on one connection, per Parley protocol (a
 * peer needs one, a few while reconnecting) and in all; more are reset by
 * libp2p as they open.
 */
export const MAX_INBOUND_STREAMS_PER_PROTOCOL = 16
export const MAX_INBOUND_STREAMS_PER_CONNECTION = 256
/** peers kept connected while present (recent and favourite conversations), at most */
export const MAX_PREFERRED_PEERS = 16

const isLoopback = (ma: Multiaddr): boolean => {
  const s = ma.toString()
  return s.startsWith('/ip4/127.') || s.startsWith('/ip6/::1/')
}

type Services = Record<string, unknown>

export class Libp2pHost extends TypedEventEmitter<PeerHostEvents> implements PeerHost {
  readonly peerId: string
  private node?: Libp2p<Services>
  private readonly init: Required<Omit<HostInit, 'relay'>>
  /** the relay instance in use, one of `relays` */
  private relay: { addr: string, peerId: string } | null = null
  /** every configured instance of the relay (kept connected; the reservation is on one of them) */
  private relays: Array<{ addr: string, peerId: string }> = []
  private redialTimer?: NodeJS.Timeout
  private readonly dialing = new Map<string, Promise<string>>()
  private discovery?: MdnsDiscovery
  private mdnsSocket?: UdpMdnsSocket
  readonly policy: ConnectionPolicy
  /** presence as last reported, per peer */
  private readonly present = new Set<string>()
  private preferredPeers = new Set<string>()
  private advert?: string
  /** kept so a restart (new relay setting) registers them again */
  private readonly handlers = new Map<string, StreamHandler>()

  /**
   * `mdnsTransport`: an mDNS socket shared with other hosts in this process
   * (the office benchmark's emulated colleagues); by default the host opens its own.
   */
  constructor (private readonly components: { identity: DeviceIdentity, log: Logger, mdnsTransport?: MdnsTransport }, init: HostInit = {}) {
    super()
    if (components.identity == null) throw new ParleyError('ERR_INVALID_ARGUMENT', 'Libp2pHost needs an identity')
    this.peerId = components.identity.peerId
    this.init = {
      listen: init.listen ?? DEFAULT_LISTEN,
      mdns: init.mdns ?? true,
      discovery: init.discovery ?? {},
      connections: init.connections ?? {},
      announceLoopback: init.announceLoopback ?? false,
      peers: init.peers ?? [],
      redialIntervalMs: init.redialIntervalMs ?? DEFAULT_REDIAL_INTERVAL_MS
    }
    this.policy = new ConnectionPolicy({
      peerId: this.peerId,
      connections: () => this.node?.getConnections() ?? [],
      isProtected: (p) => this.relays.some(r => r.peerId === p) || this.configuredPeers().has(p) || this.preferredPeers.has(p),
      log: components.log
    }, this.init.connections)
    for (const p of this.init.peers) peerOfAddr(p)
    if (init.relay !== undefined) this.setRelay(init.relay)
  }

  get relayPeerId (): string | null { return this.relay?.peerId ?? null }

  setRelay (addr: string | null): string | null {
    const before = this.relays.map(r => r.peerId).join()
    this.relays = addr === null || addr === '' ? [] : relayAddrs(addr).map(a => ({ addr: a, peerId: peerOfAddr(a) }))
    this.relay = this.relays[0] ?? null
    if (this.node !== undefined) {
      // the circuit listen address is part of the libp2p config, and a reservation held on an old relay
      // would keep libp2p from reserving on the new one: restart the host when the relay changes
      if (before !== this.relays.map(r => r.peerId).join()) void this.restart()
      else this.redialConfigured()
    }
    return this.relay?.peerId ?? null
  }

  /**
   * Failover between the instances of one relay (several addresses, one
   * shared store: same admission, same mailbox): when the one in use goes,
   * the next connected instance is used; when none was connected, the first
   * to connect.
   */
  private pickRelay (): void {
    const current = this.relay
    if (this.relays.length < 2 || (current !== null && this.isConnected(current.peerId))) return
    const next = this.relays.find(r => this.isConnected(r.peerId))
    if (next === undefined || next === current) return
    this.relay = next
    this.components.log.info('relay instance in use changed', { from: current?.peerId, to: next.peerId })
    this.emit('relayChanged', { peerId: next.peerId })
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
    // the reservation may have been refused on any instance (libp2p picks one): all of them afresh
    for (const r of this.relays) await node.hangUp(peerIdFromString(r.peerId)).catch(() => {})
    for (const r of this.relays) if (r !== relay) void this.dial(r.addr).catch(() => {})
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
      connectionManager: {
        // our policy (connections.ts) caps and prunes quiet connections; libp2p's own limit is only a backstop
        // against floods (its pruner does not know what is in flight)
        maxConnections: this.policy.init.maxConnections * 2 + MAX_PREFERRED_PEERS + 32,
        maxParallelDials: this.policy.init.maxParallelDials,
        // an office behind one NAT, or a whole LAN answering one group message, arrives from few addresses at once
        inboundConnectionThreshold: 100,
        maxIncomingPendingConnections: 32
      },
      services: services as never
    }).catch((err: unknown) => { throw listenError(err) }) as unknown as Libp2p<Services>
    node.addEventListener('peer:connect', (evt) => {
      const peerId = evt.detail.toString()
      this.components.log.info('peer connected', { peerId, at: Date.now() })
      this.pickRelay()
      this.emit('peerConnected', { peerId, reach: this.reach(peerId) ?? 'lan' })
      this.updatePresence(peerId)
    })
    node.addEventListener('peer:disconnect', (evt) => {
      const peerId = evt.detail.toString()
      this.components.log.info('peer disconnected', { peerId, at: Date.now() })
      this.pickRelay()
      this.emit('peerDisconnected', { peerId })
      this.updatePresence(peerId)
    })
    node.addEventListener('connection:open', (evt) => { this.policy.opened(evt.detail) })
    node.addEventListener('connection:close', (evt) => {
      const conn = evt.detail
      // closed by the other side or broken (not by our pruning): the peer may be gone; ask the LAN (RFC 6762 §10.4)
      if (!this.policy.closed(conn) && !this.isConnected(conn.remotePeer.toString())) this.discovery?.reconfirm(conn.remotePeer.toString())
    })
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
    this.policy.start()
    // `at`: when it began to listen (a peer may already have connected by the time start() returns)
    this.components.log.info('host started', { peerId: this.peerId, at, addrs: this.addresses() })
    if (this.init.mdns) await this.startDiscovery(node)
    this.redialTimer = setInterval(() => { this.redialConfigured() }, this.init.redialIntervalMs)
    this.redialTimer.unref()
    this.redialConfigured()
  }

  private async doStop (): Promise<void> {
    const node = this.node
    if (node === undefined) return
    this.node = undefined
    clearInterval(this.redialTimer)
    this.policy.stop()
    // goodbye first (TTL 0), so colleagues show us offline at once
    this.discovery?.stop()
    this.discovery = undefined
    await this.mdnsSocket?.stop()
    this.mdnsSocket = undefined
    // libp2p closes its connections on stop without peer:disconnect events: report them, so presence
    // and the messenger's channels follow (also across a restart for a new relay)
    const peers = [...new Set(node.getConnections().map(c => c.remotePeer.toString()))]
    await node.stop()
    for (const peerId of peers) this.emit('peerDisconnected', { peerId })
    for (const peerId of [...this.present]) this.updatePresence(peerId)
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

  /**
   * Dials through the policy: concurrent dials to one target share one
   * attempt, and at most `maxParallelDials` run at once (the others wait
   * their turn), so a burst (a group message to 200, a whole office
   * starting) never turns into hundreds of handshakes on a busy CPU.
   */
  async dial (target: string, options: AbortOptions = {}): Promise<string> {
    const node = this.started
    if (!target.startsWith('/') && this.isConnected(target)) return target
    // by peer: a dial by peer ID and one by an address of the same peer share one attempt
    const peer = peerOfTarget(target)
    const key = peer ?? target
    const running = this.dialing.get(key)
    if (running !== undefined) return await running
    const attempt = this.policy.bounded(async () => await this.dialNow(node, target, options), options.signal, peer)
    this.dialing.set(key, attempt)
    try { return await attempt } finally { this.dialing.delete(key) }
  }

  private async dialNow (node: Libp2p<Services>, target: string, options: AbortOptions): Promise<string> {
    if (!target.startsWith('/') && this.isConnected(target)) return target
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
      // the record that led us here may be stale: ask the LAN (RFC 6762 §10.4)
      if (!target.startsWith('/')) this.discovery?.reconfirm(target)
      // no direct route: try through the relay (remote staff, peers behind NAT), each connected instance
      // in turn, the one in use first: the peer holds its reservation on one of them
      const via = [...(this.relay !== null ? [this.relay] : []), ...this.relays.filter(r => r !== this.relay)]
        .filter(r => r.peerId !== target && this.isConnected(r.peerId))
      if (!target.startsWith('/') && via.length > 0) {
        try {
          // its own time: the direct attempt may have used all of its own on dead addresses
          const relaySignal = AbortSignal.any([AbortSignal.timeout(DIAL_TIMEOUT_MS), ...(options.signal !== undefined ? [options.signal] : [])])
          const conn = await this.dialVia(node, via, target, relaySignal)
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
    void this.started
    try {
      let conn = this.policy.preferred(this.openConnections(peerId))
      if (conn === undefined) {
        await this.dial(peerId, options)
        conn = this.policy.preferred(this.openConnections(peerId))
        if (conn === undefined) throw new Error('the connection closed right after the dial')
      }
      const stream = await conn.newStream(protocol, { signal: options.signal, runOnLimitedConnection: true })
      return this.policy.watch(stream, conn) as unknown as RawStream
    } catch (err) {
      if (err instanceof ParleyError) throw err
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
      handler(this.policy.watch(stream, connection) as unknown as RawStream, connection.remotePeer.toString())
    }, { maxInboundStreams: MAX_INBOUND_STREAMS_PER_PROTOCOL, maxOutboundStreams: 64, runOnLimitedConnection: true })
  }

  private async startDiscovery (node: Libp2p<Services>): Promise<void> {
    let transport = this.components.mdnsTransport
    if (transport === undefined) {
      const socket = new UdpMdnsSocket(this.components.log)
      try {
        await socket.start()
      } catch (err) {
        // another program holding 5353 without SO_REUSEADDR: Parley still runs (configured peers, relay)
        this.components.log.warn('mDNS unavailable: LAN discovery is off', { err: toParleyError(err).message })
        return
      }
      this.mdnsSocket = socket
      transport = socket
    }
    const identity = this.components.identity
    this.discovery = new MdnsDiscovery({
      transport,
      log: this.components.log,
      sign: (payload) => signWithDevice(identity, payload),
      verify: verifyByPeer
    }, this.peerId, {
      peer: (p, isNew) => { this.onDiscovered(node, p, isNew) },
      gone: (p, reason) => { this.onVanished(p, reason) },
      legacy: (peerId, addrs) => { this.onLegacyPeer(node, peerId, addrs) }
    }, this.init.discovery)
    this.discovery.start(this.selfRecords())
    node.addEventListener('self:peer:update', () => { this.discovery?.update(this.selfRecords()) })
  }

  private selfRecords (): { peerId: string, addrs: string[], advert?: string } {
    const addrs = (this.node?.getMultiaddrs() ?? []).filter(a => !a.toString().includes('/p2p-circuit'))
      .filter(a => this.init.announceLoopback || !isLoopback(a)).map(a => a.toString())
      .map(a => a.includes('/p2p/') ? a : `${a}/p2p/${this.peerId}`)
    return { peerId: this.peerId, addrs, ...(this.advert !== undefined ? { advert: this.advert } : {}) }
  }

  /**
   * A colleague's signed record: its addresses go to the peer store (never
   * loopback: a LAN peer that announces 127.0.0.1 is wrong or lying). No dial:
   * connections are opened on demand, or for a preferred peer.
   */
  private onDiscovered (node: Libp2p<Services>, p: CachedPeer, isNew: boolean): void {
    const addrs = p.addrs.map(a => { try { return multiaddr(a) } catch { return null } })
      .filter((a): a is Multiaddr => a !== null && (this.init.announceLoopback || !isLoopback(a)))
    if (isNew) this.components.log.info('peer discovered', { peerId: p.peerId, at: Date.now(), addrs: addrs.map(String) })
    void node.peerStore.patch(peerIdFromString(p.peerId), { multiaddrs: addrs })
      .catch((err) => { this.components.log.warn('peer store update failed', { err: toParleyError(err).message }) })
    this.emit('peerDiscovered', { peerId: p.peerId, addrs: addrs.map(String), ...(p.advert !== undefined ? { advert: p.advert } : {}) })
    this.updatePresence(p.peerId)
    if (this.preferredPeers.has(p.peerId)) this.dialInBackground(p.peerId)
  }

  /**
   * A Parley 0.1.0 peer heard on the old service type (mdns/legacy.ts): its addresses go to the peer store
   * and it is dialled once; the profile fetched over that connection marks it "needs an update" (issue 11).
   */
  private onLegacyPeer (node: Libp2p<Services>, peerId: string, addrs: string[]): void {
    let id
    try { id = peerIdFromString(peerId) } catch { return }
    if (peerId === this.peerId) return
    const mas = addrs.map(a => { try { return multiaddr(a) } catch { return null } })
      .filter((a): a is Multiaddr => a !== null && (this.init.announceLoopback || !isLoopback(a)))
    if (mas.length === 0) return
    this.components.log.info('older Parley peer discovered', { peerId, addrs: mas.map(String) })
    node.peerStore.patch(id, { multiaddrs: mas })
      .then(() => { this.dialInBackground(peerId) })
      .catch((err) => { this.components.log.debug('older peer not dialled', { peerId, err: toParleyError(err).message }) })
  }

  private onVanished (p: CachedPeer, reason: GoneReason): void {
    this.components.log.info('peer vanished', { peerId: p.peerId, reason, at: Date.now() })
    this.updatePresence(p.peerId)
  }

  /** Present: a live discovery record, or an open connection. Reported on change. */
  private updatePresence (peerId: string): void {
    const now = this.node !== undefined && (this.isConnected(peerId) || this.discovery?.has(peerId) === true)
    if (now === this.present.has(peerId)) return
    if (now) this.present.add(peerId)
    else this.present.delete(peerId)
    this.emit('presenceChanged', { peerId, online: now })
  }

  isOnline (peerId: string): boolean { return this.present.has(peerId) }
  onlinePeers (): string[] { return [...this.present] }

  /** Text that colleagues get with our discovery records (the signed profile); announced when it changes. */
  setAdvert (text: string | undefined): void {
    this.advert = text
    this.discovery?.update(this.selfRecords())
  }

  advertOf (peerId: string): string | undefined { return this.discovery?.get(peerId)?.advert }

  hold (peerId: string): () => void { return this.policy.hold(peerId) }

  /** Peers kept connected while present (bounded: the first MAX_PREFERRED_PEERS). */
  setPreferred (peerIds: string[]): void {
    this.preferredPeers = new Set(peerIds.slice(0, MAX_PREFERRED_PEERS))
    for (const p of this.preferredPeers) if (this.discovery?.has(p) === true) this.dialInBackground(p)
  }

  /** mDNS and connection figures for the status API and the office benchmark. */
  stats (): HostStats {
    const d = this.discovery
    const sock = this.mdnsSocket ?? this.components.mdnsTransport
    return {
      mdns: d === undefined || sock === undefined
        ? null
        : {
            packetsIn: sock.stats.packetsIn,
            packetsOut: sock.stats.packetsOut,
            peers: d.peers().length,
            rejected: d.rejected,
            ttlS: d.ttl(),
            ...(sock instanceof UdpMdnsSocket ? sock.kinds : {})
          },
      connections: { ...this.policy.stats }
    }
  }

  private dialInBackground (peerId: string): void {
    if (this.node === undefined || this.isConnected(peerId)) return
    this.dial(peerId).catch((err) => { this.components.log.debug('dial failed', { peerId, err: toParleyError(err).message }) })
  }

  /** A circuit to `target` through the first of `via` (connected relay instances) that holds its reservation. */
  private async dialVia (node: Libp2p<Services>, via: Array<{ addr: string }>, target: string, signal: AbortSignal): Promise<Connection> {
    let last: unknown
    for (const relay of via) {
      try { return await node.dial(multiaddr(`${relay.addr}/p2p-circuit/p2p/${target}`), { signal }) } catch (err) { last = err }
    }
    throw last
  }

  private configuredPeers (): Set<string> {
    return new Set(this.init.peers.map(peerOfAddr))
  }

  private redialConfigured (): void {
    const addrs = [...this.init.peers, ...this.relays.map(r => r.addr)]
    for (const addr of addrs) {
      if (this.isConnected(peerOfAddr(addr))) continue
      this.dial(addr).catch((err) => { this.components.log.debug('redial failed', { addr, err: toParleyError(err).message }) })
    }
  }
}

/** The peer a dial target names (a peer ID, or a multiaddr's /p2p/ part), if any. */
function peerOfTarget (target: string): string | undefined {
  if (!target.startsWith('/')) return target
  try { return peerOfAddr(target) } catch { return undefined }
}
