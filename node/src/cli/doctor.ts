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
import { readFile, rename, stat as fsStat } from 'node:fs/promises'
import { readKeyFile, writeKeyFile } from '../host/key-file.js'
import { loadIdentity } from '../../../core/keys.js'
import { unb64 } from '../../../core/protocol/validate.js'
import {
  RECONCILE_META, badTables, forgetStopRecord, levelFiles, readLevelLog, readStopRecord, recordLogSizes, type ReconcileMark, type StopRecord
} from '../store/health.js'
import { checkStore } from '../store/check.js'
import { lossWords } from '../store/open-node-store.js'
import type { Db } from '../../../core/store/group-commit.js'

export interface DoctorReport {
  dataDir: string
  keyFile: 'ok' | 'missing' | 'damaged' | 'repaired'
  store: 'ok' | 'damaged' | 'missing' | 'repaired'
  /** what is wrong (or was, before a repair), in words */
  problems: string[]
  /** messages the store holds (after a repair: what was recovered) */
  messages?: number
  /**
   * messages known to be lost: named by the indexes but gone, or missing
   * against the counts of the last clean stop (peers send them back)
   */
  lost?: number
  /** why `lost` is only a lower bound, in words (empty: it is the count) */
  uncounted?: string[]
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

/** Marks the store for reconciliation at the next start, with the report that start shows. */
async function markForReconcile (db: Db, reason: string, report: DoctorReport): Promise<void> {
  const meta = db.sublevel<string, unknown>('meta', { valueEncoding: 'json' })
  const old = await meta.get(RECONCILE_META) as ReconcileMark | undefined
  const mark: ReconcileMark = {
    ...old,
    since: old?.since ?? Date.now(),
    reasons: [...(old?.reasons ?? []), `${reason}: ${report.problems.join('; ')}`],
    lost: (old?.lost ?? 0) + (report.lost ?? 0),
    uncounted: [...(old?.uncounted ?? []), ...(report.uncounted ?? [])]
  }
  delete mark.damaged
  await meta.put(RECONCILE_META, mark, { sync: true } as never)
}

/**
 * Refuses while a node runs on this data dir: its pid file names a live
 * process (LevelDB's own lock is met only when the store is opened, and a
 * repair or a store with unreadable tables is never opened first).
 */
async function refuseIfRunning (dataDir: string): Promise<void> {
  const files = dataFiles(dataDir)
  const pids: Array<{ pid: number, file: string }> = []
  const pidText = await readFile(files.pid, 'utf8').catch(() => '')
  if (/^\d+\s*$/.test(pidText)) pids.push({ pid: Number(pidText), file: files.pid })
  // a node that wrote no pid file (older versions): its api.json
  const info = await readFile(files.apiInfo, 'utf8').then(t => JSON.parse(t) as { pid?: unknown }, () => undefined)
  if (typeof info?.pid === 'number' && Number.isInteger(info.pid)) pids.push({ pid: info.pid, file: files.apiInfo })
  for (const { pid, file } of pids) {
    if (pid <= 0 || !alive(pid) || !await looksLikeParley(pid) || await startedAfter(pid, file)) continue
    throw new ParleyError('ERR_DATA_DIR_LOCKED',
      `Parley is running on this data dir (process ${pid}): stop it first, then run doctor again. If no Parley is running, delete ${file}`)
  }
}

/**
 * Did process `pid` start after `file` was written (so it is not the process that wrote it: a pid reused
 * after a kill -9)? Read from /proc (Linux); elsewhere, or when unreadable, false.
 */
async function startedAfter (pid: number, file: string): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    // field 22, counted after the command name in parentheses (which may hold spaces)
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
    const btime = Number(/^btime (\d+)$/m.exec(await readFile('/proc/stat', 'utf8'))?.[1])
    const written = (await fsStat(file)).mtimeMs / 1000
    // clock ticks are 100 per second on Linux (USER_HZ); a few seconds of slack either way
    return Number.isFinite(ticks) && Number.isFinite(btime) && btime + ticks / 100 > written + 5
  } catch {
    return false
  }
}

/** A pid file left by a kill -9 may name a process that reused the number: Parley runs in node or electron. */
async function looksLikeParley (pid: number): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined)
  return cmdline === undefined || /node|parley|electron/i.test(cmdline)
}

/** Does process `pid` exist (a pid file left by a kill -9 names none, or one of another user's)? */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export async function doctor (dataDir: string, repair: boolean): Promise<DoctorReport> {
  const files = dataFiles(dataDir)
  await refuseIfRunning(dataDir)
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
  const keyProblems = report.problems.length
  const existing = (await levelFiles(files.db)).length > 0
  // what the last clean stop recorded (log sizes, counts): survives damage to db/
  const stop = await readStopRecord(files.db)
  if (!existing) {
    if (report.keyFile === 'missing') throw new ParleyError('ERR_NOT_FOUND', `there is no Parley data in ${dataDir}`)
    report.store = 'missing'
    report.problems.push('the message store (db/) is missing')
  } else {
    const bad = await badTables(files.db)
    if (bad.length > 0) report.problems.push(`unreadable table file(s): ${bad.join(', ')}`)
    if (stop.shrunk.length > 0) {
      report.problems.push(`write-ahead log ${stop.shrunk.join(', ')} is shorter than at the last clean stop (its last writes are lost)`)
    }
    if (bad.length === 0) await checkOpen(files.db, report, stop, keyProblems)
    else report.store = 'damaged'
  }
  if (repair && report.store !== 'ok') await runRepair(files.db, existing, report, stop)
  if (repair && report.keyFile === 'damaged' && existing) await repairKeyFile(files.db, files.keyFile, report)
  // a store found sound was opened (its logs replayed and replaced): measured again, with the counts of
  // the last clean stop, so a log cut short before the next start is still noticed
  if (report.store === 'ok' && existing) await recordLogSizes(files.db, stop.counts)
  return report
}

/** 0 when Parley can start on this data dir as it is now; 1 when something found is still to be repaired. */
export function doctorExitCode (r: DoctorReport): number {
  return (r.store === 'ok' || r.store === 'repaired') && r.keyFile !== 'damaged' ? 0 : 1
}

/**
 * A damaged key file is rewritten from the store's copy of the key (meta
 * `identity`), once that copy is checked against the store itself: every
 * direct conversation it holds names this device. The damaged file is kept
 * beside it (device-key.damaged).
 */
async function repairKeyFile (location: string, keyFile: string, report: DoctorReport): Promise<void> {
  const db = await openExisting(location)
  let bytes: Uint8Array
  try {
    const stored = await db.sublevel<string, unknown>('meta', { valueEncoding: 'json' }).get('identity')
    if (typeof stored !== 'string') {
      report.problems.push('the message store holds no copy of the device key: restore the key file from a backup')
      return
    }
    let peerId: string
    try {
      bytes = unb64(stored)
      peerId = loadIdentity(bytes).peerId
    } catch {
      report.problems.push('the message store\'s copy of the device key is damaged too: restore the key file from a backup')
      return
    }
    for await (const conv of db.sublevel<string, unknown>('conv', { valueEncoding: 'json' }).keys()) {
      if (conv.startsWith('dm:') && !conv.split(':').includes(peerId)) {
        report.problems.push('the message store\'s copy of the device key does not match its conversations: restore the key file from a backup')
        return
      }
    }
  } finally {
    await db.close()
  }
  await rename(keyFile, `${keyFile}.damaged`).catch(() => {})
  await writeKeyFile(keyFile, bytes)
  report.keyFile = 'repaired'
}

/** Opens the store and reads all of it (the open itself replays the log, and LevelDB may drop damaged records). */
async function checkOpen (location: string, report: DoctorReport, stop: StopRecord, keyProblems: number): Promise<void> {
  let db: Db
  try {
    db = await openExisting(location)
  } catch (err) {
    if (err instanceof ParleyError) throw err
    report.store = 'damaged'
    report.problems.push(`LevelDB cannot open it: ${String((err as { cause?: Error }).cause?.message ?? (err as Error).message)}`)
    return
  }
  let marked = false
  try {
    const log = await readLevelLog(location)
    if (log.droppedBytes > 0) report.problems.push(`LevelDB dropped ${log.droppedBytes} damaged bytes of recent writes while opening it`)
    report.uncounted = stop.counts !== undefined ? [] : uncountedLoss(log.droppedBytes, 0, stop.shrunk.length > 0)
    await readAll(db)
    const check = await checkStore(db, false, stop.counts)
    report.messages = check.messages
    report.lost = check.lost
    if (check.lost > 0) report.problems.push(`${lossWords(check.lost, report.uncounted)} (named by its indexes, or held at the last clean stop)`)
    // (problems of the key file, listed before, are not the store's)
    if (report.problems.length > keyProblems) report.store = 'damaged'
    // the damage was seen now, not at the node's next start: leave the store marked for it, with the count
    if (log.droppedBytes > 0 || stop.shrunk.length > 0 || check.lost > 0) {
      await markForReconcile(db, 'found by parley doctor', report)
      marked = true
    }
  } catch (err) {
    report.store = 'damaged'
    report.problems.push(`reading it fails: ${String((err as { cause?: Error }).cause?.message ?? (err as Error).message)}`)
  } finally {
    await db.close()
  }
  // the open replayed the logs: the record of the last clean stop now measures other files. Counted and
  // marked: forgotten (else it is measured again once doctor is done, see doctor())
  if (marked) await forgetStopRecord(location)
}

/** Why a loss count is only a lower bound (no counts from a clean stop just before), in words. */
function uncountedLoss (droppedBytes: number, filesLost: number, shrunk: boolean): string[] {
  const why: string[] = []
  if (droppedBytes > 0) why.push(`LevelDB dropped ${droppedBytes} bytes`)
  if (filesLost > 0) why.push(`${filesLost} unreadable file${filesLost === 1 ? '' : 's'} set aside`)
  if (shrunk) why.push('a write-ahead log was cut short')
  return why
}

async function runRepair (location: string, existing: boolean, report: DoctorReport, stop: StopRecord): Promise<void> {
  let dropped = 0
  if (existing) {
    await repairDb(location)
    const log = await readLevelLog(location)
    dropped = log.droppedBytes
    report.repair = { entriesRecovered: log.entriesRecovered, filesLost: log.filesLost }
  }
  // a missing store is made anew (empty): the device key is kept, and peers send the history back
  const db = new Level(location, { createIfMissing: !existing }) as unknown as Db
  await db.open()
  try {
    const check = await checkStore(db, true, stop.counts)
    report.messages = check.messages
    report.lost = check.lost
    report.uncounted = stop.counts !== undefined
      ? []
      : [...uncountedLoss(dropped, report.repair?.filesLost ?? 0, stop.shrunk.length > 0), ...(existing ? [] : ['the whole store was gone'])]
    await markForReconcile(db, existing ? 'repaired by parley doctor' : 'made anew by parley doctor', report)
    report.store = 'repaired'
  } finally {
    await db.close()
  }
  // counted against it and marked: the next start reports the count from the mark
  await forgetStopRecord(location)
}

/** The report in words, as `parley doctor` prints it. */
export function describeReport (r: DoctorReport, repair: boolean): string {
  const lines = [`data dir: ${r.dataDir}`, `device key file: ${r.keyFile}`, `message store: ${r.store}`]
  for (const p of r.problems) lines.push(`  - ${p}`)
  if (r.repair !== undefined) {
    lines.push(`LevelDB repair: ${r.repair.entriesRecovered} entries recovered, ${r.repair.filesLost} unreadable file(s) set aside in db/lost/`)
  }
  if (r.messages !== undefined) lines.push(`messages ${r.store === 'repaired' ? 'recovered' : 'held'}: ${r.messages}`)
  if (r.lost !== undefined && (r.lost > 0 || (r.uncounted ?? []).length > 0 || r.store !== 'ok')) {
    const some = r.lost > 0 || (r.uncounted ?? []).length > 0
    lines.push(lossWords(r.lost, r.uncounted ?? []) + (some ? ' (they come back from your colleagues when they next connect)' : ''))
  }
  if (r.keyFile === 'repaired') lines.push('device key file rewritten from the copy in the message store (the damaged one is kept as device-key.damaged)')
  const left = doctorExitCode(r) !== 0
  if (left && !repair) lines.push(`run \`parley doctor --data ${r.dataDir} --repair\` to repair it`)
  else if (left) lines.push('not everything could be repaired: see above; Parley cannot start on this data dir yet')
  else if (r.store === 'repaired') lines.push('repaired: start Parley again; it checks with your colleagues before it sends new messages')
  else if (r.keyFile === 'repaired') lines.push('repaired: start Parley again')
  else if (r.problems.length === 0) lines.push('no problems found')
  return lines.join('\n')
}
