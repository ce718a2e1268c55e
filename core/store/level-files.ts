/**
 * What a LevelDB directory's files say without opening it: which LevelDB
 * files are there (none: never initialised, or gone, so a missing CURRENT
 * beside other files is damage, not a new database), and tables whose footer
 * is not a table's (zeroed, overwritten, cut short). Used by the node
 * (node/src/store) and the relay before they open their stores.
 */
import { open, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { toParleyError } from '../errors.js'

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

/** Table files found unreadable, in words (the reason of an ERR_STORE_CORRUPT); undefined when there are none. */
export async function badTablesReason (dbDir: string): Promise<string | undefined> {
  const bad = await badTables(dbDir)
  return bad.length === 0 ? undefined : `table file${bad.length > 1 ? 's' : ''} ${bad.join(', ')} unreadable`
}

/**
 * Why a store's open failed, in words, for an ERR_STORE_CORRUPT; rethrows
 * what is no damage (ERR_DATA_DIR_LOCKED, ERR_DISK_FULL). `existing`: the
 * directory held LevelDB files (then a database that "does not exist" lost
 * its CURRENT file).
 */
export function openFailureReason (err: unknown, existing: boolean): string {
  const e = toParleyError(err)
  if (e.code === 'ERR_DATA_DIR_LOCKED' || e.code === 'ERR_DISK_FULL') throw e
  const why = String((e.cause as { cause?: Error } | undefined)?.cause?.message ?? (e.cause as Error | undefined)?.message ?? e.message)
  return /does not exist/.test(why) ? (existing ? 'its CURRENT file is missing' : 'it is missing') : why
}
