/**
 * What can be learnt about a LevelDB directory from its files, without
 * trusting LevelDB to say it: whether it was ever initialised (so a missing
 * CURRENT is damage, not a new database), tables whose footer is not a
 * table's (a zeroed or overwritten file), write-ahead logs shorter than at the
 * last clean stop (LevelDB takes a cut-off tail for a crash and says nothing),
 * and the records LevelDB itself dropped while opening or repairing (its LOG).
 */
import { open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** meta key: set while our own sequence numbers must be reconciled with peers before new messages go out */
export const RECONCILE_META = 'reconcile'

/** Last 8 bytes of every LevelDB table file (table/format.h kTableMagicNumber, little endian). */
const TABLE_MAGIC = Buffer.from([0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb])
const LEVELDB_FILE = /^(CURRENT|MANIFEST-\d+|\d+\.(log|ldb|sst))$/

/** Names of the LevelDB files in `dbDir` (none: never initialised, or gone). */
export async function levelFiles (dbDir: string): Promise<string[]> {
  try {
    return (await readdir(dbDir)).filter(f => LEVELDB_FILE.test(f)).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

/** Table files whose footer lacks the table magic number (zeroed, overwritten, cut short). */
export async function badTables (dbDir: string): Promise<string[]> {
  const bad: string[] = []
  for (const f of await levelFiles(dbDir)) {
    if (!/\.(ldb|sst)$/.test(f)) continue
    const fh = await open(join(dbDir, f), 'r')
    try {
      const { size } = await fh.stat()
      const tail = Buffer.alloc(8)
      if (size < 48) { bad.push(f); continue }
      await fh.read(tail, 0, 8, size - 8)
      if (!tail.equals(TABLE_MAGIC)) bad.push(f)
    } finally {
      await fh.close()
    }
  }
  return bad
}

/** Where the sizes of the write-ahead logs at the last clean stop are kept (beside, not inside, the database). */
const logSizesFile = (dbDir: string): string => `${dbDir}.logs.json`

/** After a clean close: remembers each log's size, so a log cut short before the next open is noticed. */
export async function recordLogSizes (dbDir: string): Promise<void> {
  const sizes: Record<string, number> = {}
  for (const f of await levelFiles(dbDir)) if (f.endsWith('.log')) sizes[f] = (await stat(join(dbDir, f))).size
  const tmp = logSizesFile(dbDir) + '.tmp'
  await writeFile(tmp, JSON.stringify({ v: 1, sizes }), { mode: 0o600 })
  await rename(tmp, logSizesFile(dbDir))
}

/**
 * Before an open: the logs that are shorter than (or gone since) the last
 * clean stop. Forgets the record, so it is compared once (an open replays and
 * replaces the logs).
 */
export async function shrunkLogs (dbDir: string): Promise<string[]> {
  let recorded: Record<string, number>
  try {
    recorded = (JSON.parse(await readFile(logSizesFile(dbDir), 'utf8')) as { sizes: Record<string, number> }).sizes
  } catch {
    return []
  }
  const shrunk: string[] = []
  for (const [f, size] of Object.entries(recorded)) {
    const now = await stat(join(dbDir, f)).then(s => s.size, () => -1)
    if (now < size) shrunk.push(f)
  }
  await rm(logSizesFile(dbDir), { force: true })
  return shrunk
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
