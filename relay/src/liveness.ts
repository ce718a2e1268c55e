/**
 * Liveness of the relay's idle connections (issue 15). libp2p's connection monitor pings every connection
 * every 10 s, all in the same tick: with 10,000 idle users that is 10,000 streams opened at once every
 * 10 s, a burst of memory and CPU that grows with the office. Here every connection is still pinged, once
 * per `intervalMs`, but spread evenly over the interval (one slice per tick) and at most `parallel` at a
 * time; a connection whose ping fails or takes longer than `timeoutMs` is closed (its reservation goes
 * with it, and the client reconnects). Between pings yamux's own keep-alive (a frame, no stream) keeps
 * NATs open.
 */
export interface LivenessInit {
  /** each connection is pinged once per this long. @default 60000 */
  intervalMs: number
  /** a ping that takes longer fails (the connection is closed). @default 20000 */
  timeoutMs: number
  /** pings in progress at once, at most. @default 32 */
  parallel: number
  /** how often a slice is taken. @default 1000 */
  tickMs: number
}

export const DEFAULT_LIVENESS: LivenessInit = { intervalMs: 60_000, timeoutMs: 20_000, parallel: 32, tickMs: 1000 }

export interface LivenessComponents<C> {
  connections: () => C[]
  /** settles once the other end answered a ping on `conn` */
  ping: (conn: C, signal: AbortSignal) => Promise<void>
  dead: (conn: C, err: Error) => void
}

export class Liveness<C> {
  private timer?: NodeJS.Timeout
  private round: C[] = []
  private roundSize = 0
  private roundStartedAt = 0
  private inFlight = 0

  constructor (private readonly c: LivenessComponents<C>, private readonly init: LivenessInit = DEFAULT_LIVENESS) {}

  start (): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(() => { this.tick(Date.now()) }, this.init.tickMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.round = []
  }

  /** One slice of the round (exported for tests with a fake clock). */
  tick (now: number): void {
    if (this.round.length === 0 && now - this.roundStartedAt >= this.init.intervalMs) {
      this.round = [...this.c.connections()]
      this.roundSize = this.round.length
      this.roundStartedAt = now
    }
    const slice = Math.ceil(this.roundSize * this.init.tickMs / this.init.intervalMs)
    for (let i = 0; i < slice && this.round.length > 0 && this.inFlight < this.init.parallel; i++) {
      const conn = this.round.pop() as C
      this.inFlight++
      const signal = AbortSignal.timeout(this.init.timeoutMs)
      this.c.ping(conn, signal).catch((err: unknown) => { this.c.dead(conn, err instanceof Error ? err : new Error(String(err))) })
        .finally(() => { this.inFlight-- })
    }
  }
}
