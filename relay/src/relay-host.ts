/**
 * The relay's libp2p host: TCP and WebSocket listeners (wss is terminated by a
 * reverse proxy in front, see docs/RELAY.md), Noise, yamux, identify, ping and
 * a circuit-relay-v2 server. The only relay file that imports libp2p.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer, type CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p, type Libp2p } from 'libp2p'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection } from '@libp2p/interface'
import { ParleyError } from '../../core/errors.js'
import type { DeviceIdentity } from '../../core/keys.js'
import type { RawStream } from '../../core/rpc/stream.js'
import { listenError } from '../../core/listen.js'

export interface CircuitLimits {
  /** max simultaneous reservations. @default 1024 */
  maxReservations: number
  /** relayed connection duration limit in ms; 0 = none. @default 0 */
  durationLimitMs: number
  /** relayed connection data limit in bytes (each direction); 0 = none. @default 0 */
  dataLimitBytes: number
  /** reservation lifetime in ms (clients refresh before it ends). @default 2 hours */
  reservationTtlMs: number
}

export interface RelayHostInit {
  listen: string[]
  /** addresses announced instead of the listen ones (public name behind NAT or a proxy) */
  announce: string[]
  limits: CircuitLimits
  /** admission: only these peers may hold reservations or be relayed */
  isAdmitted: (peerId: string) => boolean
  onRefused: (what: 'reservation' | 'circuit', peerId: string) => void
}

/**
 * Inbound connections. libp2p's defaults (5 new connections per second per
 * source IP, 10 handshakes at a time) refuse most of an office that reconnects
 * from behind one NAT address (of 200 clients on one IP, 5 got in). These let
 * 1,000 clients behind one address in within ~5 s (with their retries) and still
 * bound a flood: per source IP by the rate, overall by the handshakes in
 * progress (each costs a Noise handshake of CPU) and by maxConnections.
 */
export const INBOUND_PER_IP_PER_SECOND = 200
export const MAX_PENDING_HANDSHAKES = 128

/** what "no limit" becomes when the other circuit limit is set: the longest timer Node allows (24.8 days), 2^53 bytes */
const NO_DURATION_LIMIT_MS = 2 ** 31 - 1
const NO_DATA_LIMIT_BYTES = Number.MAX_SAFE_INTEGER

export class RelayHost {
  private node?: Libp2p<{ relay: CircuitRelayService } & Record<string, unknown>>

  constructor (private readonly identity: DeviceIdentity, private readonly init: RelayHostInit) {
    for (const a of [...init.listen, ...init.announce]) {
      try { multiaddr(a) } catch (err) { throw new ParleyError('ERR_INVALID_ARGUMENT', `not a multiaddr: ${a}`, { cause: err }) }
    }
  }

  async start (handlers: Record<string, (stream: RawStream, remote: string) => void>): Promise<void> {
    if (this.node !== undefined) return
    const { limits, isAdmitted, onRefused } = this.init
    const unlimited = limits.durationLimitMs === 0 && limits.dataLimitBytes === 0
    const node = await createLibp2p({
      privateKey: this.identity.libp2pKey,
      addresses: { listen: this.init.listen, ...(this.init.announce.length > 0 ? { announce: this.init.announce } : {}) },
      transports: [tcp(), webSockets()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: {
        maxConnections: 4 * limits.maxReservations + 64,
        inboundConnectionThreshold: INBOUND_PER_IP_PER_SECOND,
        maxIncomingPendingConnections: MAX_PENDING_HANDSHAKES
      },
      connectionGater: {
        denyInboundRelayReservation: (peer) => {
          const deny = !isAdmitted(peer.toString())
          if (deny) onRefused('reservation', peer.toString())
          return deny
        },
        denyOutboundRelayedConnection: (source, destination) => {
          const deny = !isAdmitted(source.toString()) || !isAdmitted(destination.toString())
          if (deny) onRefused('circuit', source.toString())
          return deny
        }
      },
      services: {
        identify: identify(),
        ping: ping(),
        relay: circuitRelayServer({
          // deliberately not the 128 KiB / 2 min defaults: office chats and their sync run for hours
          reservations: {
            maxReservations: limits.maxReservations,
            reservationTtl: limits.reservationTtlMs,
            applyDefaultLimit: !unlimited,
            // with one limit set, libp2p would apply its default to the other: 0 (none) is spelled out as "practically none"
            defaultDurationLimit: limits.durationLimitMs > 0 ? limits.durationLimitMs : NO_DURATION_LIMIT_MS,
            defaultDataLimit: BigInt(limits.dataLimitBytes > 0 ? limits.dataLimitBytes : NO_DATA_LIMIT_BYTES)
          },
          maxInboundHopStreams: 4 * limits.maxReservations,
          maxOutboundStopStreams: 4 * limits.maxReservations
        })
      }
    }).catch((err: unknown) => { throw listenError(err) })
    for (const [protocol, handler] of Object.entries(handlers)) {
      await node.handle(protocol, (stream, connection) => {
        handler(stream as unknown as RawStream, connection.remotePeer.toString())
      }, { maxInboundStreams: 8, runOnLimitedConnection: false })
    }
    this.node = node as never
  }

  async stop (): Promise<void> {
    const node = this.node
    this.node = undefined
    await node?.stop()
  }

  /** Drops `peerId`'s reservation and closes its connections (and so the circuits through them). */
  async disconnect (peerId: string): Promise<void> {
    const node = this.node
    if (node === undefined) return
    const id = peerIdFromString(peerId)
    node.services.relay.reservations.delete(id)
    await node.hangUp(id).catch(() => {})
  }

  /**
   * A stream of `protocol` to another relay (federation): over an open
   * connection to `peerId` if there is one, else dialled at `addrs`. Noise
   * proves the other end holds `peerId`'s key, so a pinned peer ID is checked by the dial itself.
   */
  async openStream (peerId: string, addrs: string[], protocol: string, signal: AbortSignal): Promise<RawStream> {
    const node = this.node
    if (node === undefined) throw new ParleyError('ERR_NOT_STARTED', 'relay not started')
    const id = peerIdFromString(peerId)
    try {
      let conn = node.getConnections(id).find(c => c.status === 'open' && c.limits === undefined)
      if (conn === undefined) {
        const targets = addrs.map(a => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${peerId}`))
        conn = await node.dial(targets, { signal })
      }
      return await conn.newStream(protocol, { signal }) as unknown as RawStream
    } catch (err) {
      throw new ParleyError('ERR_PEER_UNREACHABLE', `cannot reach the relay ${peerId}: ${(err as Error).message}`, { cause: err })
    }
  }

  addresses (): string[] { return this.node?.getMultiaddrs().map(String) ?? [] }
  isConnected (peerId: string): boolean {
    return this.node?.getConnections(peerIdFromString(peerId)).some(c => c.status === 'open') ?? false
  }

  connectionCount (): number { return this.node?.getConnections().length ?? 0 }
  reservationCount (): number { return this.node?.services.relay.reservations.size ?? 0 }
  relayedCount (): number {
    // each circuit is one inbound hop stream (from the dialler) plus one outbound stop stream (to the
    // listener): count the hop streams only
    const hops = (c: Connection): number => c.streams.filter(s => s.protocol?.includes('circuit/relay') === true && s.protocol.endsWith('/hop')).length
    return this.node?.getConnections().reduce((n, c) => n + hops(c), 0) ?? 0
  }
}
