/**
 * Opening a node's message store without ever replacing it silently: a data
 * dir that was initialised (it has a device key file or LevelDB files) is
 * opened with createIfMissing false, damaged tables refuse the start with
 * ERR_STORE_CORRUPT, and loss LevelDB noticed (or could not notice: a log cut
 * short since the last clean stop) is reported with a count, the indexes are
 * rebuilt, and the store is marked for reconciliation with peers
 * (messaging/reconcile.ts).
 *
 * The evidence of damage is written first (the mark, synced), before the
 * check or anything else that can fail, and the files it was read from are
 * forgotten only after that; the mark keeps the report until a start has
 * finished and shown it (markReported).
 */
import { Level } from 'level'
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { isDiskFull, storeWriteError, type WriteLatchInit } from '../../../core/store/write-latch.js'
import { LevelStore } from './level-store.js'
import { badTablesReason, openFailureReason } from '../../../core/store/level-files.js'
import { RECONCILE_META, forgetStopRecord, levelFiles, readLevelLog, readStopRecord, type ReconcileMark } from './health.js'
import type { StoreCheck } from './check.js'

export interface StoreOpenReport {
  /** damage was found at this start, or at one that did not finish (see `reasons`); lost messages are fetched back from peers */
  damaged: boolean
  /** what was found, in words */
  reasons: string[]
  /** messages known to be lost (see `uncounted`: then at least this many) */
  lost: number
  /** why `lost` is only a lower bound, in words (empty: it is the count) */
  uncounted: string[]
  /** the index check run because of the damage */
  check?: StoreCheck
}

/** The error for a store that cannot be used, with what to do. */
export function storeCorrupt (dataDir: string, reason: string, cause?: unknown): ParleyError {
  return new ParleyError('ERR_STORE_CORRUPT', `the message store in ${dataDir}/db is damaged (${reason}). Nothing was changed. ` +
    `Run \`parley doctor --data ${dataDir} --repair\` while Parley is stopped: it recovers what can be recovered and ` +
    'says what was lost; lost messages come back from your colleagues when they next connect. ' +
    `Your device key is kept apart in ${dataDir}/device-key`, { cause })
}

/** How many messages were lost, in words: never "0" where data was dropped without a count. */
export function lossWords (lost: number, uncounted: string[]): string {
  if (uncounted.length === 0) return lost === 0 ? 'no messages lost' : `${lost} message${lost === 1 ? '' : 's'} lost`
  const why = uncounted.join('; ')
  return lost === 0 ? `an unknown number of messages lost (${why})` : `at least ${lost} message${lost === 1 ? '' : 's'} lost (${why})`
}

/**
 * Opens (or, in a data dir never initialised, creates) the store at `dbDir`.
 * `initialised`: the data dir has a device key file.
 */
export async function openNodeStore (
  dataDir: string, dbDir: string, initialised: boolean, latch?: WriteLatchInit
): Promise<{ store: LevelStore, report: StoreOpenReport }> {
  const existing = (await levelFiles(dbDir)).length > 0
  const bad = await badTablesReason(dbDir)
  if (bad !== undefined) throw storeCorrupt(dataDir, bad)
  const stop = await readStopRecord(dbDir)
  const store = new LevelStore(new Level(dbDir, { createIfMissing: !(initialised || existing) }), latch)
  try {
    await store.start()
  } catch (err) {
    throw storeCorrupt(dataDir, openFailureReason(err, existing), err)
  }
  try {
    return { store, report: await checkOpened(dbDir, store, existing, stop) }
  } catch (err) {
    await store.stop().catch(() => {})
    if (isDiskFull(err)) throw storeWriteError(err)
    const e = toParleyError(err)
    if (e.code === 'ERR_DISK_FULL') throw e
    throw storeCorrupt(dataDir, e.message, err)
  }
}

async function checkOpened (dbDir: string, store: LevelStore, existing: boolean, stop: Awaited<ReturnType<typeof readStopRecord>>): Promise<StoreOpenReport> {
  const reasons: string[] = []
  const uncounted: string[] = []
  // without the counts of a clean stop just before, loss is counted from the indexes only
  const counted = stop.counts !== undefined
  if (existing) {
    const log = await readLevelLog(dbDir)
    if (log.droppedBytes > 0) {
      reasons.push(`LevelDB dropped ${log.droppedBytes} damaged bytes of recent writes while opening it`)
      if (!counted) uncounted.push(`LevelDB dropped ${log.droppedBytes} bytes`)
    }
  }
  if (stop.shrunk.length > 0) {
    reasons.push(`its write-ahead log ${stop.shrunk.join(', ')} is shorter than at the last clean stop`)
    if (!counted) uncounted.push('a write-ahead log was cut short')
  }
  const marked = await store.getMeta(RECONCILE_META) as ReconcileMark | undefined
  // damage found by a start that did not finish, by a reopen after a failed write, or by `parley doctor`
  const earlier = marked?.reasons ?? (marked?.damaged !== undefined ? [`it was damaged (${marked.damaged})`] : [])
  if (reasons.length === 0 && earlier.length === 0) {
    await forgetStopRecord(dbDir)
    return { damaged: false, reasons, lost: 0, uncounted }
  }
  // the evidence first, synced, before anything that can fail (a full disk, a port in use)
  const mark: ReconcileMark = {
    ...marked,
    since: marked?.since ?? Date.now(),
    reasons: [...earlier, ...reasons],
    lost: marked?.lost ?? 0,
    uncounted: [...(marked?.uncounted ?? []), ...uncounted]
  }
  delete mark.damaged
  await store.putMeta(RECONCILE_META, mark)
  await forgetStopRecord(dbDir)
  const check = await store.check(true, stop.counts)
  mark.lost = (mark.lost ?? 0) + check.lost
  await store.putMeta(RECONCILE_META, mark)
  return { damaged: true, reasons: mark.reasons ?? [], lost: mark.lost, uncounted: mark.uncounted ?? [], check }
}

/**
 * A start finished and showed the damage report: the mark keeps only what
 * reconciliation needs (the report is not shown again).
 */
export async function markReported (store: LevelStore): Promise<void> {
  await store.updateMeta(RECONCILE_META, (m) => {
    if (m === undefined) return undefined
    const { reasons: _r, lost: _l, uncounted: _u, damaged: _d, ...rest } = m as ReconcileMark
    return rest
  })
}
