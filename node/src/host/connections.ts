/**
 * Connection policy: connections are opened on demand and closed when idle,
 * their number is capped, dials are bounded in concurrency, and each pair of
 * peers ends up with exactly one connection.
 *
 * - Activity is stream traffic: every stream the host hands out or accepts
 *   is watched, and a connection is quiet when none of its streams sent or
 *   received anything for a while. Only quiet connections are ever closed.
 * - Work in flight holds the peer (`hold`: the messenger's push to a peer,
 *   a request it is answering): a held peer's connections are never closed,
 *   however long the other side takes to answer (a busy CPU, a slow disk),
 *   so a fan-out to hundreds never closes a connection it is still using.
 * - One per pair: when two connections exist (both sides dialled at once),
 *   both sides keep the same one, a direct before a relayed one, then the one
 *   dialled by the smaller peer ID, then the older; the other is closed once
 *   quiet (new streams already go to the kept one): after `quietMs` when no
 *   stream is open on it, after `streamQuietMs` (longer than any call's
 *   timeout, so no request can still be waiting there) when one is.
 * - Cap: a hard bound on our dials. A dial to a peer goes ahead only when the
 *   open connections plus the dials in flight are below `maxConnections`
 *   (the quietest unheld connection is closed to make room); otherwise it
 *   waits, at most `capWaitMs`, then fails with ERR_RESOURCE_LIMIT (the
 *   caller retries later or deposits at the relay). Connections others open
 *   to us above the cap are pruned the same way, once quiet. The relay and
 *   configured peers are not counted and never pruned.
 */
import type { Connection, Stream } from '@libp2p/interface'
import type { Logger } from '../../../core/util/log.js'
import { ParleyError } from '../../../core/errors.js'

export interface ConnectionPolicyInit {
  /** open connections to peers at most (the relay and configured peers not counted). @default 64 */
  maxConnections?: number
  /** a connection whose streams were quiet this long is closed. @default 120_000 */
  idleCloseMs?: number
  /** dials in flight at most. @default 8 */
  maxParallelDials?: number
  /** a duplicate, or a connection over the cap, is closed once its streams were quiet this long. @default 1500 */
  quietMs?: number
  /** a duplicate with a stream still open is closed once quiet this long (above every call timeout). @default 20_000 */
  streamQuietMs?: number
  /** a dial waits this long at most for room under the cap, then fails with ERR_RESOURCE_LIMIT. @default 30_000 */
  capWaitMs?: number
}

export const DEFAULT_MAX_CONNECTIONS = 64
export const DEFAULT_IDLE_CLOSE_MS = 120_000
export const DEFAULT_MAX_PARALLEL_DIALS = 8
export const DEFAULT_QUIET_MS = 1500
/** above the RPC call timeout (15 s, core/rpc/channel.ts): a stream quiet this long has no call waiting */
export const DEFAULT_STREAM_QUIET_MS = 20_000
export const DEFAULT_CAP_WAIT_MS = 30_000
const TICK_MS = 1000
/** a dial waiting for a free place under the cap looks again this often */
const CAP_WAIT_MS = 200

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
  /** dials in flight to peers counted against the cap */
  private countedDials = 0
  private readonly dialWaiters: Array<() => void> = []
  /** connections we closed ourselves (their close must not reconfirm the peer's discovery record) */
  private readonly closedByUs = new Set<string>()
  stats = { prunedIdle: 0, prunedCap: 0, duplicatesClosed: 0, peakConnections: 0 }
  /** holds per peer (work in flight) */
  private readonly held = new Map<string, number>()

  constructor (private readonly c: ConnectionPolicyComponents, init: ConnectionPolicyInit = {}) {
    this.init = {
      maxConnections: init.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      idleCloseMs: init.idleCloseMs ?? DEFAULT_IDLE_CLOSE_MS,
      maxParallelDials: init.maxParallelDials ?? DEFAULT_MAX_PARALLEL_DIALS,
      quietMs: init.quietMs ?? DEFAULT_QUIET_MS,
      streamQuietMs: init.streamQuietMs ?? DEFAULT_STREAM_QUIET_MS,
      capWaitMs: init.capWaitMs ?? DEFAULT_CAP_WAIT_MS
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
    this.held.clear()
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

  /**
   * Keeps the connections to `peerId` open until the returned function is
   * called (idempotent): work in flight there (a push, a request being
   * answered). When released, they count as active now.
   */
  hold (peerId: string): () => void {
    this.held.set(peerId, (this.held.get(peerId) ?? 0) + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const n = (this.held.get(peerId) ?? 1) - 1
      if (n > 0) this.held.set(peerId, n)
      else this.held.delete(peerId)
      const now = Date.now()
      for (const conn of this.c.connections()) if (conn.remotePeer.toString() === peerId) this.lastActive.set(conn.id, now)
    }
  }

  isHeld (peerId: string): boolean { return this.held.has(peerId) }

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
   * and, for an unprotected peer, when the open connections plus the dials
   * in flight are below the cap (the quietest are pruned meanwhile): a burst
   * waits its turn instead of opening a connection to everyone at once. A
   * dial that finds no room within `capWaitMs` (every connection busy or
   * held) fails with ERR_RESOURCE_LIMIT: the cap is a bound, not a target.
   */
  async bounded<T> (fn: () => Promise<T>, signal?: AbortSignal, peerId?: string): Promise<T> {
    const counted = peerId === undefined || !this.c.isProtected(peerId)
    const until = Date.now() + this.init.capWaitMs
    const full = (): boolean => counted && this.counted(peerId) + this.countedDials >= this.init.maxConnections
    while (this.dialsInFlight >= this.init.maxParallelDials || full()) {
      signal?.throwIfAborted()
      if (Date.now() >= until) {
        throw new ParleyError('ERR_RESOURCE_LIMIT', `all ${this.init.maxConnections} connections are in use (connections.maxConnections); try again shortly`)
      }
      // make room for this dial: the quietest connection goes if it is quiet enough
      if (this.dialsInFlight < this.init.maxParallelDials) this.tick(Date.now(), 1 + this.countedDials)
      await new Promise<void>(resolve => {
        const t = setTimeout(done, CAP_WAIT_MS)
        function done (): void { clearTimeout(t); resolve() }
        this.dialWaiters.push(done)
      })
    }
    this.dialsInFlight++
    if (counted) this.countedDials++
    try {
      return await fn()
    } finally {
      this.dialsInFlight--
      if (counted) this.countedDials--
      this.dialWaiters.shift()?.()
    }
  }

  /** open connections to unprotected peers (one per peer), but `except`'s (a dial to it adds none) */
  private counted (except?: string): number {
    const peers = new Set<string>()
    for (const c of this.c.connections()) {
      const p = c.remotePeer.toString()
      if (c.status === 'open' && p !== except && !this.c.isProtected(p)) peers.add(p)
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

  /** how long a duplicate must be quiet to go: longer while a stream is open on it (a call may be waiting there) */
  private quietNeeded (conn: Connection): number {
    return conn.streams.length > 0 ? this.init.streamQuietMs : this.init.quietMs
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
      // work in flight: nothing of this peer is closed (a duplicate goes once the work is done and it is quiet)
      if (this.held.has(peer)) { if (!this.c.isProtected(peer)) kept.push(keep); continue }
      for (const conn of conns) {
        if (conn !== keep && this.quietFor(conn, now) >= this.quietNeeded(conn)) this.close(conn, 'duplicatesClosed')
      }
      if (this.c.isProtected(peer)) continue
      if (this.quietFor(keep, now) >= this.init.idleCloseMs) { this.close(keep, 'prunedIdle'); continue }
      kept.push(keep)
    }
    const over = kept.length + room - this.init.maxConnections
    if (over <= 0) return
    // over the cap: unheld and quiet ones, those without an open stream first, then the quietest
    const quiet = kept.filter(c => !this.held.has(c.remotePeer.toString()) && this.quietFor(c, now) >= this.init.quietMs)
      .sort((a, b) => Number(a.streams.length > 0) - Number(b.streams.length > 0) || this.quietFor(b, now) - this.quietFor(a, now))
    for (const conn of quiet.slice(0, over)) this.close(conn, 'prunedCap')
  }
}
