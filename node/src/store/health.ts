/**
 * What can be learnt about a LevelDB directory from its files, without
 * trusting LevelDB to say it: whether it was ever initialised (so a missing
 * CURRENT is damage, not a new database), tables whose footer is not a
 * table's (a zeroed or overwritten file), write-ahead logs shorter than at the
 * last clean stop (LevelDB takes a cut-off tail for a crash and says nothing),
 * and the records LevelDB itself dropped while opening or repairing (its LOG).
 */
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { levelFiles } from '../../../core/store/level-files.js'
import { join } from 'node:path'

/** meta key: set while our own sequence numbers must be reconciled with peers before new messages go out */
export const RECONCILE_META = 'reconcile'

/** The value at RECONCILE_META. */
export interface ReconcileMark {
  /** when the damage was found */
  since: number
  /** conversations reconciled since (messaging/reconcile.ts) */
  done?: string[]
  /** damage found and not yet shown by a start that finished (store/open-node-store.ts), in words */
  reasons?: string[]
  /** messages known to be lost, and why that count is only a lower bound (words) */
  lost?: number
  uncounted?: string[]
  /** older marks: the damage in one phrase */
  damaged?: string
}

export { badTables, levelFiles } from '../../../core/store/level-files.js'

/** Where the sizes of the write-ahead logs (and the store's counts) at the last clean stop are kept (beside, not inside, the database). */
const logSizesFile = (dbDir: string): string => `${dbDir}.logs.json`

/**
 * After a clean close: remembers each log's size, so a log cut short before
 * the next open is noticed, and `counts` (sequence numbers held per
 * conv!author, LevelStore.seqCounts), so messages lost with their indexes
 * can be counted after damage.
 */
export async function recordLogSizes (dbDir: string, counts?: Record<string, number>): Promise<void> {
  const sizes: Record<string, number> = {}
  for (const f of await levelFiles(dbDir)) if (f.endsWith('.log')) sizes[f] = (await stat(join(dbDir, f))).size
  const tmp = logSizesFile(dbDir) + '.tmp'
  await writeFile(tmp, JSON.stringify({ v: 1, sizes, ...(counts !== undefined ? { counts } : {}) }), { mode: 0o600 })
  await rename(tmp, logSizesFile(dbDir))
}

export interface StopRecord {
  /** logs that are shorter than (or gone since) the last clean stop */
  shrunk: string[]
  /** sequence numbers held per conv!author at that stop */
  counts?: Record<string, number>
}

/**
 * Before an open: what the last clean stop recorded, against the files now.
 * The record stays until forgetStopRecord (an open replays and replaces the
 * logs, so it is to be forgotten once what it says was acted on).
 */
export async function readStopRecord (dbDir: string): Promise<StopRecord> {
  let recorded: { sizes: Record<string, number>, counts?: Record<string, number> }
  try {
    recorded = JSON.parse(await readFile(logSizesFile(dbDir), 'utf8')) as typeof recorded
  } catch {
    return { shrunk: [] }
  }
  const shrunk: string[] = []
  for (const [f, size] of Object.entries(recorded.sizes ?? {})) {
    const now = await stat(join(dbDir, f)).then(s => s.size, () => -1)
    if (now < size) shrunk.push(f)
  }
  const counts = recorded.counts !== null && typeof recorded.counts === 'object' ? recorded.counts : undefined
  return { shrunk, ...(counts !== undefined ? { counts } : {}) }
}

/** Forgets the record of the last clean stop (the next open replaces the logs it measured). */
export async function forgetStopRecord (dbDir: string): Promise<void> {
  await rm(logSizesFile(dbDir), { force: true })
}

export interface LevelLogReport {
  /** bytes of log records LevelDB dropped as corrupt while replaying a log */
  droppedBytes: number
  /** LOG lines that report corruption or loss, as written */
  lines: string[]
  /** repair only: entries saved from logs and tables */
  entriesRecovered: number
  /** repair only: files LevelDB could not read and moved to lost/ */
  filesLost: number
}

/** What LevelDB wrote to db/LOG during the last open or repair about data it dropped. */
export async function readLevelLog (dbDir: string): Promise<LevelLogReport> {
  const report: LevelLogReport = { droppedBytes: 0, lines: [], entriesRecovered: 0, filesLost: 0 }
  let text: string
  try { text = await readFile(join(dbDir, 'LOG'), 'utf8') } catch { return report }
  for (const line of text.split('\n')) {
    const dropped = /dropping (\d+) bytes/.exec(line)
    if (dropped !== null) report.droppedBytes += Number(dropped[1])
    // repair: "Log #6: 50 ops saved to Table #7 OK", "Table #5: 50 entries OK" / "... Corruption: ..."
    const table = /Table #\d+: (\d+) entries (.*)$/.exec(line)
    if (table !== null) {
      if (table[2] === 'OK') report.entriesRecovered += Number(table[1])
      else report.filesLost++
    }
    if (/dropping|corrupt|lost|bad magic|checksum/i.test(line) && !/Some data may have been lost/.test(line)) report.lines.push(line.replace(/^\S+ \S+ /, ''))
  }
  return report
}
