/**
 * `parley doctor [--repair]`: checks a stopped node's data dir (device key
 * file, LevelDB files, a full read of the store, its indexes) and, with
 * --repair, runs LevelDB's repair, rebuilds the indexes and says what was
 * recovered and what was lost. Whatever it finds damaged marks the store so
 * that the next start reconciles with peers, who send the lost messages back.
 */
import { Level } from 'level'
import { dataFiles } from '../config.js'
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { readKeyFile } from '../host/key-file.js'
import { badTables, levelFiles, readLevelLog, shrunkLogs } from '../store/health.js'
import { checkStore } from '../store/check.js'
import { RECONCILE_META } from '../store/health.js'
import type { Db } from '../../../core/store/group-commit.js'

export interface DoctorReport {
  dataDir: string
  keyFile: 'ok' | 'missing' | 'damaged'
  store: 'ok' | 'damaged' | 'missing' | 'repaired'
  /** what is wrong (or was, before a repair), in words */
  problems: string[]
  /** messages the store holds (after a repair: what was recovered) */
  messages?: number
  /** messages the store's indexes name that are gone (peers send them back) */
  lost?: number
  /** repair only: LevelDB entries saved, and files it could not read (moved to db/lost/) */
  repair?: { entriesRecovered: number, filesLost: number }
}

const repairDb = async (location: string): Promise<void> => { await (Level as unknown as { repair: (l: string) => Promise<void> }).repair(location) }

/** Opens without creating; throws ERR_DATA_DIR_LOCKED when a node runs on this data dir. */
async function openExisting (location: string): Promise<Db> {
  const db = new Level(location, { createIfMissing: false }) as unknown as Db
  try {
    await db.open()
  } catch (err) {
    const why = String((err as { cause?: Error }).cause?.message ?? err)
    if (/lock/i.test(why)) throw new ParleyError('ERR_DATA_DIR_LOCKED', 'Parley is running on this data dir: stop it first, then run doctor again', { cause: err })
    throw err
  }
  return db
}

/** Reads every entry once: a damaged block anywhere fails here rather than later, mid-conversation. */
async function readAll (db: Db): Promise<number> {
  let n = 0
  for await (const _ of db.keys()) n++
  return n
}

async function markForReconcile (db: Db, damaged: string): Promise<void> {
  const meta = db.sublevel<string, unknown>('meta', { valueEncoding: 'json' })
  await meta.put(RECONCILE_META, { since: Date.now(), damaged }, { sync: true } as never)
}

export async function doctor (dataDir: string, repair: boolean): Promise<DoctorReport> {
  const files = dataFiles(dataDir)
  const report: DoctorReport = { dataDir, keyFile: 'ok', store: 'ok', problems: [] }
  const key = await readKeyFile(files.keyFile).catch((err: unknown) => {
    report.keyFile = 'damaged'
    report.problems.push(toParleyError(err).message)
    return undefined
  })
  if (key === undefined && report.keyFile === 'ok') {
    report.keyFile = 'missing'
    report.problems.push('there is no device key file (Parley writes it from the store at its next start)')
  }
  const existing = (await levelFiles(files.db)).length > 0
  if (!existing) {
    if (report.keyFile === 'missing') throw new ParleyError('ERR_NOT_FOUND', `there is no Parley data in ${dataDir}`)
    report.store = 'missing'
    report.problems.push('the message store (db/) is missing')
  } else {
    const bad = await badTables(files.db)
    if (bad.length > 0) report.problems.push(`unreadable table file(s): ${bad.join(', ')}`)
    const shrunk = await shrunkLogs(files.db)
    if (shrunk.length > 0) report.problems.push(`write-ahead log ${shrunk.join(', ')} is shorter than at the last clean stop (its last writes are lost)`)
    if (bad.length === 0) await checkOpen(files.db, report, shrunk.length > 0)
    else report.store = 'damaged'
  }
  if (!repair || report.store === 'ok') return report
  await runRepair(files.db, existing, report)
  return report
}

/** Opens the store and reads all of it (the open itself replays the log, and LevelDB may drop damaged records). */
async function checkOpen (location: string, report: DoctorReport, shrunk: boolean): Promise<void> {
  let db: Db
  try {
    db = await openExisting(location)
  } catch (err) {
    if (err instanceof ParleyError) throw err
    report.store = 'damaged'
    report.problems.push(`LevelDB cannot open it: ${String((err as { cause?: Error }).cause?.message ?? (err as Error).message)}`)
    return
  }
  try {
    const log = await readLevelLog(location)
    if (log.droppedBytes > 0) report.problems.push(`LevelDB dropped ${log.droppedBytes} damaged bytes of recent writes while opening it`)
    await readAll(db)
    const check = await checkStore(db, false)
    report.messages = check.messages
    report.lost = check.lost
    if (check.lost > 0) report.problems.push(`${check.lost} message(s) named by its indexes are gone`)
    if (report.problems.length > 0) report.store = 'damaged'
    // the damage was seen now, not at the node's next start: leave the store marked for it
    if (log.droppedBytes > 0 || shrunk) await markForReconcile(db, 'found by parley doctor')
  } catch (err) {
    report.store = 'damaged'
    report.problems.push(`reading it fails: ${String((err as { cause?: Error }).cause?.message ?? (err as Error).message)}`)
  } finally {
    await db.close()
  }
}

async function runRepair (location: string, existing: boolean, report: DoctorReport): Promise<void> {
  if (existing) {
    await repairDb(location)
    const log = await readLevelLog(location)
    report.repair = { entriesRecovered: log.entriesRecovered, filesLost: log.filesLost }
  }
  // a missing store is made anew (empty): the device key is kept, and peers send the history back
  const db = new Level(location, { createIfMissing: !existing }) as unknown as Db
  await db.open()
  try {
    const check = await checkStore(db, true)
    report.messages = check.messages
    report.lost = check.lost
    await markForReconcile(db, existing ? 'repaired by parley doctor' : 'made anew by parley doctor')
    report.store = 'repaired'
  } finally {
    await db.close()
  }
}

/** The report in words, as `parley doctor` prints it. */
export function describeReport (r: DoctorReport, repair: boolean): string {
  const lines = [`data dir: ${r.dataDir}`, `device key file: ${r.keyFile}`, `message store: ${r.store}`]
  for (const p of r.problems) lines.push(`  - ${p}`)
  if (r.repair !== undefined) {
    lines.push(`LevelDB repair: ${r.repair.entriesRecovered} entries recovered, ${r.repair.filesLost} unreadable file(s) set aside in db/lost/`)
  }
  if (r.messages !== undefined) lines.push(`messages ${r.store === 'repaired' ? 'recovered' : 'held'}: ${r.messages}`)
  if (r.lost !== undefined && r.lost > 0) lines.push(`messages lost here: ${r.lost} (they come back from your colleagues when they next connect)`)
  if (r.store === 'repaired') lines.push('repaired: start Parley again; it checks with your colleagues before it sends new messages')
  else if (r.store !== 'ok' && !repair) lines.push(`run \`parley doctor --data ${r.dataDir} --repair\` to repair it`)
  else if (r.store === 'ok' && r.problems.length === 0) lines.push('no problems found')
  return lines.join('\n')
}
