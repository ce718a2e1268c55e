/**
 * The narrow view of the network that messaging uses. It is shaped after
 * libp2p's Stream so the libp2p host passes its streams straight through,
 * but nothing outside node/src/host/ imports libp2p.
 */
import type { AbortOptions } from '../../../core/util/abort.js'
import type { RawStream, StreamHandler } from '../../../core/rpc/stream.js'
import type { TypedEventTarget } from '../../../core/util/events.js'

export interface HostStats {
  /** null when LAN discovery is off */
  mdns: {
    packetsIn: number
    packetsOut: number
    peers: number
    rejected: number
    ttlS: number
    /** packets in by kind (our own socket only): queries, responses, our own multicasts looped back (in both) */
    queriesIn?: number
    responsesIn?: number
    ownIn?: number
  } | null
  connections: { prunedIdle: number, prunedCap: number, duplicatesClosed: number, peakConnections: number }
}

/** How we currently reach a peer. */
export type Reach = 'lan' | 'relay'

export interface PeerHostEvents {
  /** first connection to a peer opened */
  peerConnected: CustomEvent<{ peerId: string, reach: Reach }>
  /** last connection to a peer closed */
  peerDisconnected: CustomEvent<{ peerId: string }>
  /** a peer announced itself (mDNS) or changed its record: the addresses we will dial, its advert (the signed profile) */
  peerDiscovered: CustomEvent<{ peerId: string, addrs: string[], advert?: string }>
  /** a peer became present (a live discovery record or an open connection) or stopped being present */
  presenceChanged: CustomEvent<{ peerId: string, online: boolean }>
  /** the relay instance in use changed (failover between the configured addresses of one relay cluster) */
  relayChanged: CustomEvent<{ peerId: string | null }>
}

export interface PeerHost extends TypedEventTarget<PeerHostEvents> {
  readonly peerId: string
  start(): Promise<void>
  stop(): Promise<void>
  /** our listen addresses, as announced to peers */
  addresses(): string[]
  connectedPeers(): string[]
  isConnected(peerId: string): boolean
  /** present on the LAN (a live discovery record) or connected: what the UI shows as online */
  isOnline(peerId: string): boolean
  onlinePeers(): string[]
  /** text colleagues get with our discovery record (the signed profile); announced when it changes */
  setAdvert(text: string | undefined): void
  /** the advert of a peer's live discovery record, if any (what peerDiscovered carried last) */
  advertOf(peerId: string): string | undefined
  /**
   * Work in flight with `peerId` (a push, a request being answered): its
   * connection is not closed by the connection policy until the returned
   * function is called.
   */
  hold(peerId: string): () => void
  /** peers kept connected while present (recent and favourite conversations; bounded) */
  setPreferred(peerIds: string[]): void
  /** mDNS and connection-policy figures (status API, benchmarks) */
  stats(): HostStats
  /** open connections, all peers together (one per pair is the goal) */
  connectionCount(): number
  /** every open connection, for diagnostics */
  connections(): Array<{ peerId: string, addr: string, direction: string }>
  /** 'lan' if any direct connection is open, 'relay' if only relayed ones, null if none */
  reach(peerId: string): Reach | null
  /**
   * Sets (or clears) the relay: its address is kept connected, a reservation
   * makes us reachable through it, and peers we cannot dial directly are dialled through it.
   * Several addresses (comma-separated: instances of one relay sharing a store) are all kept
   * connected; one is in use (`relayPeerId`), the next connected one when it goes.
   * Several addresses (comma-separated: instances of one relay sharing a store) are all kept
   * connected; one is in use (`relayPeerId`), the next connected one when it goes.
   * Returns the relay's peer ID.
   */
  setRelay(addr: string | null): string | null
  /** Closes and re-opens the connection to the relay (a fresh reservation after admission). */
  reconnectRelay(): Promise<void>
  readonly relayPeerId: string | null
  /** Dials a peer ID (known addresses) or a multiaddr with /p2p/; resolves to the remote peer ID. */
  dial(target: string, options?: AbortOptions): Promise<string>
  openStream(peerId: string, protocol: string, options?: AbortOptions): Promise<RawStream>
  handle(protocol: string, handler: StreamHandler): Promise<void>
}
