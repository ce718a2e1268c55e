/**
 * The failed-write latch. LevelDB keeps appending to a write-ahead log whose
 * last write failed (ENOSPC mid-record), and records written after that can be
 * dropped as corruption when the log is replayed at the next open: "successful"
 * synced writes then vanish on restart. So after any failed write the store
 * accepts no write until it has been closed, reopened (a fresh log) and
 * checked. The reopen is tried on the next write (after a backoff once a
 * reopen failed), and only once the file system has room again, so a full
 * disk does not also close the database for readers.
 */
import { statfs } from 'node:fs/promises'
import { ParleyError } from '../errors.js'

/** First wait before a latched store tries to reopen. @default 250 */
export const DEFAULT_REOPEN_BACKOFF_MS = 250
/** Longest wait between reopen attempts. @default 10000 */
export const MAX_REOPEN_BACKOFF_MS = 10_000
/** A store latched by a full disk reopens only with at least this much free space. @default 1 MiB */
export const DEFAULT_MIN_FREE_BYTES = 1024 * 1024

export interface WriteLatchInit {
  /** @default DEFAULT_REOPEN_BACKOFF_MS */
  backoffMs?: number
  /** @default DEFAULT_MIN_FREE_BYTES */
  minFreeBytes?: number
  /** the clock of the backoff (tests pass a fake one). @default Date.now */
  now?: () => number
}

const NO_SPACE = /ENOSPC|No space left on device|disk quota exceeded|EDQUOT/i

/** Is `err` (or its cause) a full disk? */
export function isDiskFull (err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e != null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (code === 'ERR_DISK_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return true
    if (e instanceof Error && NO_SPACE.test(e.message)) return true
  }
  return false
}

/** The typed error for a failed store write: ERR_DISK_FULL when the disk is full, else ERR_STORE. */
export function storeWriteError (err: unknown): ParleyError {
  if (err instanceof ParleyError && err.code === 'ERR_DISK_FULL') return err
  if (isDiskFull(err)) {
    return new ParleyError('ERR_DISK_FULL', 'the disk holding Parley\'s data is full, so nothing new can be saved. ' +
      'Free some space on it; Parley carries on by itself once there is room', { cause: err })
  }
  if (err instanceof ParleyError) return err
  return new ParleyError('ERR_STORE', `write failed: ${(err as Error).message}`, { cause: err })
}

/** Bytes free for unprivileged writers on the file system holding `path`; Infinity when unknown. */
export async function freeBytes (path: string): Promise<number> {
  try {
    const s = await statfs(path)
    return s.bavail * s.bsize
  } catch {
    return Infinity
  }
}

export class WriteLatch {
  private failure?: ParleyError
  private nextAttemptAt = 0
  private backoffMs: number
  private readonly firstBackoffMs: number
  private readonly minFreeBytes: number
  private readonly now: () => number

  /**
   * @param reopen closes and reopens the database and checks it; throws when that fails
   * @param location a path on the file system of the database (for the free-space check)
   */
  constructor (private readonly reopen: () => Promise<void>, private readonly location: string | undefined, init: WriteLatchInit = {}) {
    this.firstBackoffMs = init.backoffMs ?? DEFAULT_REOPEN_BACKOFF_MS
    this.backoffMs = this.firstBackoffMs
    this.minFreeBytes = init.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES
    this.now = init.now ?? Date.now
  }

  /** The failure that latched the store, while it is latched. */
  get latched (): ParleyError | undefined { return this.failure }

  /** A write failed: latch (the first failure is kept as the reason). */
  trip (err: ParleyError): void {
    if (this.failure !== undefined) return
    this.failure = err
    // the next write may try at once: a failure can be momentary (a file removed meanwhile)
    this.nextAttemptAt = 0
  }

  /** Returns when writes may go ahead; throws the latched error while the store cannot be reopened. */
  async ensureWritable (): Promise<void> {
    const failure = this.failure
    if (failure === undefined) return
    // a full disk is checked on every write (statfs is cheap), so a write right after space is freed goes ahead
    if (failure.code === 'ERR_DISK_FULL' && this.location !== undefined && await freeBytes(this.location) < this.minFreeBytes) {
      throw failure
    }
    if (this.now() < this.nextAttemptAt) throw failure
    try {
      await this.reopen()
      this.failure = undefined
      this.backoffMs = this.firstBackoffMs
    } catch (err) {
      this.failure = err === failure ? failure : storeWriteError(err)
      this.nextAttemptAt = this.now() + this.backoffMs
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_REOPEN_BACKOFF_MS)
      throw this.failure
    }
  }
}
