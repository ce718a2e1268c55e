/**
 * Connection policy: connections are opened on demand and closed when idle,
 * their number is capped, dials are bounded in concurrency, and each pair of
 * peers ends up with exactly one connection.
 *
 * - Activity is stream traffic: every stream the host hands out or accepts
 *   is watched, and a connection is quiet when none of its streams sent or
 *   received anything for a while. Only quiet connections are ever closed,
 *   so nothing in flight is cut.
 * - One per pair: when two connections exist (both sides dialled at once),
 *   both sides keep the same one, a direct before a relayed one, then the one
 *   dialled by the smaller peer ID, then the older; the other is closed once
 *   quiet (new streams already go to the kept one).
 * - Cap: above `maxConnections`, the connections quiet the longest go first.
 *   The relay and configured peers are not counted and never pruned.
 */
import type { Connection, Stream } from '@libp2p/interface'
import type { Logger } from '../../../core/util/log.js'

export interface ConnectionPolicyInit {
  /** open connections to peers at most (the relay and configured peers not counted). @default 64 */
  maxConnections?: number
  /** a connection whose streams were quiet this long is closed. @default 120_000 */
  idleCloseMs?: number
  /** dials in flight at most. @default 8 */
  maxParallelDials?: number
  /** a duplicate, or a connection over the cap, is closed once its streams were quiet this long. @default 1500 */
  quietMs?: number
}

export const DEFAULT_MAX_CONNECTIONS = 64
export const DEFAULT_IDLE_CLOSE_MS = 120_000
export const DEFAULT_MAX_PARALLEL_DIALS = 8
export const DEFAULT_QUIET_MS = 1500
const TICK_MS = 1000
/** a dial waiting for a free place under the cap looks again this often */
const CAP_WAIT_MS = 200
/** the longest a dial waits for room under the cap */
const CAP_WAIT_MAX_MS = 10_000

export interface ConnectionPolicyComponents {
  peerId: string
  connections: () => Connection[]
  /** the relay and configured peers: never pruned, not counted */
  isProtected: (peerId: string) => boolean
  log: Logger
}

export class ConnectionPolicy {
  readonly init: Required<ConnectionPolicyInit>
  private readonly lastActive = new Map<string, number>()
  private timer?: NodeJS.Timeout
  private dialsInFlight = 0
  private readonly dialWaiters: Array<() => void> = []
  /** connections we closed ourselves (their close must not reconfirm the peer's discovery record) */
  private readonly closedByUs = new Set<string>()
  stats = { prunedIdle: 0, prunedCap: 0, duplicatesClosed: 0, peakConnections: 0 }

  constructor (private readonly c: ConnectionPolicyComponents, init: ConnectionPolicyInit = {}) {
    this.init = {
      maxConnections: init.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      idleCloseMs: init.idleCloseMs ?? DEFAULT_IDLE_CLOSE_MS,
      maxParallelDials: init.maxParallelDials ?? DEFAULT_MAX_PARALLEL_DIALS,
      quietMs: init.quietMs ?? DEFAULT_QUIET_MS
    }
    for (const [k, v] of Object.entries(this.init)) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`connection policy: ${k} must be a positive integer, got ${String(v)}`)
    }
  }

  start (): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(() => { this.tick() }, TICK_MS)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.lastActive.clear()
    this.closedByUs.clear()
  }

  /** A connection opened: it counts as active now. */
  opened (conn: Connection): void {
    this.lastActive.set(conn.id, Date.now())
    const n = this.c.connections().length
    if (n > this.stats.peakConnections) this.stats.peakConnections = n
  }

  /** Forgets a closed connection; true if we closed it. */
  closed (conn: Connection): boolean {
    this.lastActive.delete(conn.id)
    this.dialWaiters.shift()?.()
    return this.closedByUs.delete(conn.id)
  }

  /** Watches a stream's traffic in both directions. */
  watch<S extends Stream> (stream: S, conn: Connection): S {
    const touch = (): void => { this.lastActive.set(conn.id, Date.now()) }
    touch()
    stream.addEventListener('message', touch)
    const send = stream.send.bind(stream)
    stream.send = (data) => { touch(); return send(data) }
    return stream
  }

  /** The connection new streams to `peerId` go on: the one both sides keep. */
  preferred (conns: Connection[]): Connection | undefined {
    return [...conns].filter(c => c.status === 'open').sort((a, b) => this.rank(a) - this.rank(b) || a.timeline.open - b.timeline.open)[0]
  }

  /**
   * Runs `fn` (a dial) when fewer than `maxParallelDials` dials are in flight
   * and, for an unprotected peer, when the connections are below the cap (the
   * quietest are pruned meanwhile): a burst waits its turn instead of opening
   * a connection to everyone at once. When every connection stays busy for
   * `CAP_WAIT_MAX_MS`, the dial goes ahead over the cap (the cap never stops
   * messaging; the extra connection is pruned once quiet).
   */
  async bounded<T> (fn: () => Promise<T>, signal?: AbortSignal, peerId?: string): Promise<T> {
    const counted = peerId === undefined || !this.c.isProtected(peerId)
    const until = Date.now() + CAP_WAIT_MAX_MS
    const full = (): boolean => counted && Date.now() < until && this.counted() >= this.init.maxConnections
    while (this.dialsInFlight >= this.init.maxParallelDials || full()) {
      signal?.throwIfAborted()
      // make room for this dial: the quietest connection goes if it is quiet enough
      if (this.dialsInFlight < this.init.maxParallelDials) this.tick(Date.now(), 1)
      await new Promise<void>(resolve => {
        const t = setTimeout(done, CAP_WAIT_MS)
        function done (): void { clearTimeout(t); resolve() }
        this.dialWaiters.push(done)
      })
    }
    this.dialsInFlight++
    try {
      return await fn()
    } finally {
      this.dialsInFlight--
      this.dialWaiters.shift()?.()
    }
  }

  /** open connections to unprotected peers (one per peer) */
  private counted (): number {
    const peers = new Set<string>()
    for (const c of this.c.connections()) {
      const p = c.remotePeer.toString()
      if (c.status === 'open' && !this.c.isProtected(p)) peers.add(p)
    }
    return peers.size
  }

  /** lower is kept: direct before relayed, then the one dialled by the smaller peer ID */
  private rank (conn: Connection): number {
    const relayed = conn.remoteAddr.toString().includes('/p2p-circuit') ? 2 : 0
    const weDial = this.c.peerId < conn.remotePeer.toString()
    const byRule = (conn.direction === 'outbound') === weDial ? 0 : 1
    return relayed + byRule
  }

  private quietFor (conn: Connection, now: number): number {
    return now - (this.lastActive.get(conn.id) ?? conn.timeline.open)
  }

  private close (conn: Connection, why: 'prunedIdle' | 'prunedCap' | 'duplicatesClosed'): void {
    this.stats[why]++
    this.closedByUs.add(conn.id)
    this.c.log.debug('closing connection', { peerId: conn.remotePeer.toString(), why })
    conn.close().catch((err: Error) => { conn.abort(err) })
  }

  /** Closes duplicates, idle connections and, over the cap, the quietest ones; only quiet ones. */
  tick (now = Date.now(), room = 0): void {
    const byPeer = new Map<string, Connection[]>()
    for (const conn of this.c.connections()) {
      if (conn.status !== 'open') continue
      const p = conn.remotePeer.toString()
      byPeer.set(p, [...(byPeer.get(p) ?? []), conn])
    }
    const kept: Connection[] = []
    for (const [peer, conns] of byPeer) {
      const keep = this.preferred(conns) as Connection
      for (const conn of conns) {
        if (conn !== keep && this.quietFor(conn, now) >= this.init.quietMs) this.close(conn, 'duplicatesClosed')
      }
      if (this.c.isProtected(peer)) continue
      if (this.quietFor(keep, now) >= this.init.idleCloseMs) { this.close(keep, 'prunedIdle'); continue }
      kept.push(keep)
    }
    const over = kept.length + room - this.init.maxConnections
    if (over <= 0) return
    const quiet = kept.filter(c => this.quietFor(c, now) >= this.init.quietMs).sort((a, b) => this.quietFor(b, now) - this.quietFor(a, now))
    for (const conn of quiet.slice(0, over)) this.close(conn, 'prunedCap')
  }
}
