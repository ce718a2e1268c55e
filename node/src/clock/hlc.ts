/**
 * Hybrid logical clock (Kulkarni et al.): wall time when it moves forward,
 * a counter when it does not. Display order is (w, c, id), never wall time alone,
 * so one author's messages sort in send order even if its clock jumps back.
 */
import type { Hlc } from '../../../core/protocol/envelope.js'

/** A remote timestamp further ahead than this does not drag our clock forward. @default 1 day */
export const DEFAULT_MAX_CLOCK_DRIFT_MS = 24 * 60 * 60 * 1000

/**
 * The largest counter the wire accepts. Our clock never goes past it: a counter
 * that would overflow rolls into the next millisecond instead (the order stays
 * strictly increasing). Without this a peer could send c = 2^31 and every later
 * envelope of ours would fail validation at the receiver.
 */
export const MAX_HLC_COUNTER = 2 ** 31

/** The least timestamp after h whose counter is still within the wire's range. */
function next (h: Hlc): Hlc {
  return h.c + 1 > MAX_HLC_COUNTER ? { w: h.w + 1, c: 0 } : { w: h.w, c: h.c + 1 }
}

export class HybridClock {
  private last: Hlc
  constructor (private readonly now: () => number = Date.now, last: Hlc = { w: 0, c: 0 }, private readonly maxDriftMs = DEFAULT_MAX_CLOCK_DRIFT_MS) {
    this.last = { ...last }
  }

  /** A timestamp for a local event, strictly greater than every earlier one. */
  tick (): Hlc {
    const wall = this.now()
    this.last = wall > this.last.w ? { w: wall, c: 0 } : next(this.last)
    return { ...this.last }
  }

  /** Folds in a timestamp seen on a received message. */
  observe (remote: Hlc): void {
    if (remote.w > this.now() + this.maxDriftMs) return
    if (!Number.isSafeInteger(remote.w) || !Number.isSafeInteger(remote.c) || remote.c < 0) return
    if (compareHlc(remote, this.last) <= 0) return
    // A counter at the limit is taken as the start of the next millisecond, so our
    // next tick is still after it and still valid on the wire.
    this.last = remote.c >= MAX_HLC_COUNTER ? { w: remote.w + 1, c: 0 } : { w: remote.w, c: remote.c }
  }

  current (): Hlc { return { ...this.last } }
}

export function compareHlc (a: Hlc, b: Hlc): number {
  return a.w !== b.w ? a.w - b.w : a.c - b.c
}

/** A string that sorts bytewise in (w, c, id) order: the history index key. */
export function hlcKey (h: Hlc, id: string): string {
  return `${h.w.toString().padStart(16, '0')}.${h.c.toString().padStart(10, '0')}.${id}`
}
