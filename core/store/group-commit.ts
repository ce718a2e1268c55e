/**
 * Group commit for a LevelDB store: write transactions are prepared one at a
 * time (so read-check-write logic never interleaves), staged into the current
 * group, and every staged group is written as one `sync: true` batch. While a
 * group is being fsynced, the next one fills up; a caller's promise resolves
 * only once its own group is on disk. Reads made while preparing see staged,
 * not yet written values through an overlay.
 */
import type { AbstractLevel, AbstractSublevel } from 'abstract-level'
import { ParleyError } from '../errors.js'
import { SerialQueue } from '../util/abort.js'
import { WriteLatch, isDiskFull, storeWriteError, type WriteLatchInit } from './write-latch.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Db = AbstractLevel<any, string, any>
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Sub<V> = AbstractSublevel<Db, any, string, V>

interface Op { type: 'put' | 'del', sublevel: Sub<unknown>, key: string, value?: unknown }

class Group {
  readonly ops: Op[] = []
  readonly keys: string[] = []
  readonly done: Promise<void>
  resolve!: () => void
  reject!: (e: Error) => void
  constructor () {
    this.done = new Promise<void>((resolve, reject) => { this.resolve = resolve; this.reject = reject })
    // a failed group is reported to each waiter; never an unhandled rejection
    this.done.catch(() => {})
  }
}

const DELETED = Symbol('deleted')
const SYNC = { sync: true } as Record<string, unknown>
/** a cached sublevel holding more keys than this starts again empty (a bound, not an LRU: hot keys come back at once) */
const MAX_CACHED_PER_SUBLEVEL = 50_000

/** One write transaction: reads see the overlay and this transaction's own writes. */
export class Tx {
  readonly ops: Op[] = []
  private readonly own = new Map<string, unknown>()
  constructor (private readonly gc: GroupCommit) {}

  async get<V> (sub: Sub<V>, key: string): Promise<V | undefined> {
    const k = sub.prefix + key
    if (this.own.has(k)) { const v = this.own.get(k); return v === DELETED ? undefined : v as V }
    return await this.gc.read(sub, key)
  }

  async has<V> (sub: Sub<V>, key: string): Promise<boolean> {
    return await this.get(sub, key) !== undefined
  }

  put<V> (sub: Sub<V>, key: string, value: V): void {
    this.ops.push({ type: 'put', sublevel: sub as unknown as Sub<unknown>, key, value })
    this.own.set(sub.prefix + key, value)
  }

  del<V> (sub: Sub<V>, key: string): void {
    this.ops.push({ type: 'del', sublevel: sub as unknown as Sub<unknown>, key })
    this.own.set(sub.prefix + key, DELETED)
  }
}

export class GroupCommit {
  private readonly prepare = new SerialQueue()
  private readonly overlay = new Map<string, { value: unknown, group: Group }>()
  private current = new Group()
  private flushing = false
  /** sublevel prefix → its durable values kept in memory (see cache) */
  private readonly caches = new Map<string, Map<string, unknown>>()
  /** batches written (and caches forgotten): a read that spans one does not fill the cache */
  private commits = 0
  /** Counts failed groups: a transaction prepared across a failure may have read the failed values. */
  private failures = 0

  /** @param latch refuses writes after a failed one until the store is reopened (see write-latch.ts) */
  constructor (private readonly db: Db, private readonly latch?: WriteLatch) {}

  async read<V> (sub: Sub<V>, key: string): Promise<V | undefined> {
    const staged = this.overlay.get(sub.prefix + key)
    if (staged !== undefined) return staged.value === DELETED ? undefined : staged.value as V
    const cache = this.caches.get(sub.prefix)
    if (cache === undefined) return await sub.get(key)
    const hit = cache.get(key)
    if (hit !== undefined) return hit === DELETED ? undefined : hit as V
    // a batch written while this read ran may hold a newer value than the one read: not cached then
    const commits = this.commits
    const value = await sub.get(key)
    if (commits === this.commits) {
      if (cache.size >= MAX_CACHED_PER_SUBLEVEL) cache.clear()
      cache.set(key, value === undefined ? DELETED : value)
    }
    return value
  }

  /**
   * Keeps what is read from `sub` (and written to it) in memory: later reads
   * of a key come from memory. Only durable values are cached (write-through
   * once a batch is on disk; a failed batch or a reopen forgets everything).
   * For small, hot sublevels (sequence state, conversation summaries).
   */
  cache<V> (sub: Sub<V>): void { this.caches.set(sub.prefix, new Map()) }

  /** Forgets every cached value (the database was written or reopened behind the group commit's back). */
  forgetCache (): void {
    this.commits++
    for (const c of this.caches.values()) c.clear()
  }

  /** The write of the group that staged `key`, while it is not on disk yet (rejects if it fails); undefined once durable. */
  pending<V> (sub: Sub<V>, key: string): Promise<void> | undefined {
    return this.overlay.get(sub.prefix + key)?.group.done
  }

  /** Runs `fn` alone, stages its writes, resolves with its result once they are durable. */
  async write<T> (fn: (tx: Tx) => Promise<T>): Promise<T> {
    const { result, done } = await this.prepare.run(async () => {
      await this.latch?.ensureWritable()
      const tx = new Tx(this)
      const failuresBefore = this.failures
      const result = await fn(tx)
      if (this.failures !== failuresBefore) {
        throw this.latch?.latched ?? new ParleyError('ERR_STORE', 'a write failed while this one was prepared; it was not staged')
      }
      return { result, done: this.stage(tx.ops) }
    })
    await done
    return result
  }

  /** Resolves when everything staged so far is on disk. */
  async drain (): Promise<void> {
    await this.prepare.run(async () => {})
    while (this.flushing || this.current.ops.length > 0) await this.stage([])
  }

  /** Resolves once no batch is being written (for a reopen, from inside a transaction's turn). */
  async idle (): Promise<void> {
    while (this.flushing) await this.stage([]).catch(() => {})
  }

  private writeThrough (ops: Op[]): void {
    this.commits++
    if (this.caches.size === 0) return
    for (const op of ops) {
      const cache = this.caches.get(op.sublevel.prefix)
      if (cache === undefined) continue
      if (cache.size >= MAX_CACHED_PER_SUBLEVEL) cache.clear()
      cache.set(op.key, op.type === 'del' ? DELETED : op.value)
    }
  }

  private stage (ops: Op[]): Promise<void> {
    const g = this.current
    for (const op of ops) {
      const k = op.sublevel.prefix + op.key
      g.ops.push(op)
      g.keys.push(k)
      this.overlay.set(k, { value: op.type === 'del' ? DELETED : op.value, group: g })
    }
    if (!this.flushing) void this.flush()
    return g.done
  }

  private async flush (): Promise<void> {
    this.flushing = true
    try {
      while (this.current.ops.length > 0) {
        const g = this.current
        this.current = new Group()
        try {
          await this.db.batch(g.ops as never, SYNC)
          this.writeThrough(g.ops)
          g.resolve()
        } catch (err) {
          const e = storeWriteError(err)
          this.failures++
          this.forgetCache()
          this.latch?.trip(e)
          g.reject(e)
          // writes prepared meanwhile may build on the failed ones (a sequence number, a dedupe
          // entry): fail them too and forget every staged value, so the next write starts from disk
          this.current.reject(e)
          this.current = new Group()
          this.overlay.clear()
        } finally {
          for (const k of g.keys) if (this.overlay.get(k)?.group === g) this.overlay.delete(k)
        }
      }
      // resolve empty groups handed out by drain()
      this.current.resolve()
      this.current = new Group()
    } finally {
      this.flushing = false
    }
  }
}

/** Sublevels made by jsonSublevel, per database: a reopened database reopens them (they close with it). */
const sublevels = new WeakMap<Db, Array<Sub<unknown>>>()

/** A JSON sublevel of `db`. */
export function jsonSublevel<V> (db: Db, name: string): Sub<V> {
  const sub = db.sublevel<string, V>(name, { valueEncoding: 'json' }) as unknown as Sub<V>
  sublevels.set(db, [...(sublevels.get(db) ?? []), sub as unknown as Sub<unknown>])
  return sub
}

/**
 * A LevelDB-backed store: one GroupCommit for all writes, a `meta` sublevel,
 * and an idempotent start/stop (stop waits until every staged write is on
 * disk). Subclasses add their sublevels and, in `opened()`, load state.
 */
export abstract class LevelBackedStore {
  protected readonly gc: GroupCommit
  protected readonly meta: Sub<unknown>
  /** latched after a failed write; the next write after a backoff reopens and checks the database */
  protected readonly latch: WriteLatch
  private started = false

  constructor (protected readonly db: Db, private readonly what: string, latchInit?: WriteLatchInit) {
    this.latch = new WriteLatch(async () => { await this.reopen() }, (db as { location?: string }).location, latchInit)
    this.gc = new GroupCommit(db, this.latch)
    this.meta = jsonSublevel(db, 'meta')
  }

  /** Closes and reopens the database (a fresh write-ahead log), then reloads and checks what opened() reads. */
  private async reopen (): Promise<void> {
    await this.gc.idle()
    if (this.db.status === 'open') await this.db.close()
    await this.openAgain()
    await this.opened()
    await this.reopened()
  }

  private reopening?: Promise<void>

  private async openAgain (): Promise<void> {
    await openDb(this.db, this.what)
    for (const sub of sublevels.get(this.db) ?? []) await sub.open()
    // the log replay may have dropped what failed or brought back a batch that
    // failed after its append: nothing kept in memory may stand for the disk
    // (a reader reopening too: values it cached after the failure are forgotten)
    this.gc.forgetCache()
  }

  /**
   * Before a read: a reopen after a failed write that could not open the
   * database again (the disk filled up meanwhile) left it closed; readers
   * open it again rather than fail (the latch still reopens and checks it
   * before the next write).
   */
  protected async readable (): Promise<void> {
    if (!this.started || this.db.status !== 'closed') return
    this.reopening ??= this.openAgain().finally(() => { this.reopening = undefined })
    await this.reopening
  }

  /** Runs after a latched store was reopened (before writes are accepted again): subclasses check it. */
  protected async reopened (): Promise<void> {}

  async start (): Promise<void> {
    if (this.started) return
    // the database may have been changed while it was closed (a restore, a test damaging it)
    this.gc.forgetCache()
    await openDb(this.db, this.what)
    await this.opened()
    this.started = true
  }

  /** Runs once the database is open, before start() resolves. */
  protected async opened (): Promise<void> {}

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.gc.drain()
    await this.db.close()
  }

  async getMeta (key: string): Promise<unknown> { await this.readable(); return await this.gc.read(this.meta, key) }
  async putMeta (key: string, value: unknown): Promise<void> { await this.gc.write(async (tx) => { tx.put(this.meta, key, value) }) }
  async deleteMeta (key: string): Promise<void> { await this.gc.write(async (tx) => { tx.del(this.meta, key) }) }
  async updateMeta (key: string, fn: (value: unknown) => unknown): Promise<void> {
    await this.gc.write(async (tx) => {
      const value = fn(await tx.get(this.meta, key))
      if (value === undefined) tx.del(this.meta, key)
      else tx.put(this.meta, key, value)
    })
  }
}

/** Opens `db`, turning LevelDB's errors into ERR_DATA_DIR_LOCKED (another process has it) or ERR_STORE. */
export async function openDb (db: Db, what: string): Promise<void> {
  try {
    await db.open()
  } catch (err) {
    const code = (err as { code?: string, cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code
    if (code === 'LEVEL_LOCKED' || code === 'LEVEL_STATUS_LOCKED' || /lock/i.test(String((err as Error).cause ?? err))) {
      throw new ParleyError('ERR_DATA_DIR_LOCKED', `the ${what} data directory is in use by another process`, { cause: err })
    }
    if (isDiskFull(err)) throw storeWriteError(err)
    throw new ParleyError('ERR_STORE', `cannot open the ${what} store: ${(err as Error).message}`, { cause: err })
  }
}
