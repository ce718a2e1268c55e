/**
 * Opening a node's message store without ever replacing it silently: a data
 * dir that was initialised (it has a device key file or LevelDB files) is
 * opened with createIfMissing false, damaged tables refuse the start with
 * ERR_STORE_CORRUPT, and loss LevelDB noticed (or could not notice: a log cut
 * short since the last clean stop) is reported, the indexes are rebuilt, and
 * the store is marked for reconciliation with peers (messaging/reconcile.ts).
 */
import { Level } from 'level'
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { LevelStore } from './level-store.js'
import { RECONCILE_META, badTables, levelFiles, readLevelLog, shrunkLogs } from './health.js'
import type { StoreCheck } from './check.js'
import type { WriteLatchInit } from '../../../core/store/write-latch.js'

export interface StoreOpenReport {
  /** damage was found at this start (see `reasons`); lost messages are fetched back from peers */
  damaged: boolean
  /** what was found, in words */
  reasons: string[]
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

/**
 * Opens (or, in a data dir never initialised, creates) the store at `dbDir`.
 * `initialised`: the data dir has a device key file.
 */
export async function openNodeStore (
  dataDir: string, dbDir: string, initialised: boolean, latch?: WriteLatchInit
): Promise<{ store: LevelStore, report: StoreOpenReport }> {
  const existing = (await levelFiles(dbDir)).length > 0
  const bad = await badTables(dbDir)
  if (bad.length > 0) throw storeCorrupt(dataDir, `table file${bad.length > 1 ? 's' : ''} ${bad.join(', ')} unreadable`)
  const shrunk = await shrunkLogs(dbDir)
  const store = new LevelStore(new Level(dbDir, { createIfMissing: !(initialised || existing) }), latch)
  try {
    await store.start()
  } catch (err) {
    const e = toParleyError(err)
    if (e.code === 'ERR_DATA_DIR_LOCKED' || e.code === 'ERR_DISK_FULL') throw e
    const why = String((e.cause as { cause?: Error } | undefined)?.cause?.message ?? (e.cause as Error | undefined)?.message ?? e.message)
    throw storeCorrupt(dataDir, /does not exist/.test(why) ? (existing ? 'its CURRENT file is missing' : 'it is missing') : why, err)
  }
  const reasons: string[] = []
  if (existing) {
    const log = await readLevelLog(dbDir)
    if (log.droppedBytes > 0) reasons.push(`LevelDB dropped ${log.droppedBytes} damaged bytes of recent writes while opening it`)
  }
  if (shrunk.length > 0) reasons.push(`its write-ahead log ${shrunk.join(', ')} is shorter than at the last clean stop`)
  const marked = await store.getMeta(RECONCILE_META) as { damaged?: string } | undefined
  if (marked?.damaged !== undefined) reasons.push(`it was damaged (${marked.damaged})`)
  if (reasons.length === 0) return { store, report: { damaged: false, reasons } }
  try {
    const check = await store.check(true)
    // the damage is reported once; the reconciliation it calls for stays marked until done
    await store.putMeta(RECONCILE_META, { since: Date.now() })
    return { store, report: { damaged: true, reasons, check } }
  } catch (err) {
    await store.stop().catch(() => {})
    throw storeCorrupt(dataDir, toParleyError(err).message, err)
  }
}
