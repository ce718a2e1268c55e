/**
 * Opening the relay's LevelDB store without ever replacing it silently: a
 * db/ that holds LevelDB files is opened with createIfMissing false (with
 * the default, a missing CURRENT makes a new empty database and LevelDB
 * deletes the old tables: every admitted user and all acknowledged offline
 * mail gone, nothing said), and a store that cannot be opened, or has a
 * damaged table, refuses the start with ERR_STORE_CORRUPT and what to do.
 */
import { dirname } from 'node:path'
import { Level } from 'level'
import { ParleyError } from '../../../core/errors.js'
import { badTablesReason, levelFiles, openFailureReason } from '../../../core/store/level-files.js'
import { LevelMailboxStore } from './level-mailbox-store.js'
import type { MailboxLimits } from './types.js'

/** The error for a relay store that cannot be used, with what to do. */
export function relayStoreCorrupt (dbDir: string, reason: string, cause?: unknown): ParleyError {
  return new ParleyError('ERR_STORE_CORRUPT', `the relay's store in ${dbDir} is damaged (${reason}). Nothing was changed. ` +
    `Stop the relay, copy ${dbDir} aside as a backup, then run \`parley-relay repair --data ${dirname(dbDir)}\`: ` +
    'it runs LevelDB\'s repair and keeps what can be read; senders still hold every message not yet delivered', { cause })
}

/** LevelDB's repair of the relay's store (the relay stopped): keeps what can be read, sets aside what cannot (db/lost/). */
export async function repairRelayStore (dbDir: string): Promise<void> {
  if ((await levelFiles(dbDir)).length === 0) throw new ParleyError('ERR_NOT_FOUND', `there is no relay store in ${dbDir}`)
  await (Level as unknown as { repair: (l: string) => Promise<void> }).repair(dbDir)
}

/** Opens the relay's store at `dbDir`, creating it only where there is no LevelDB data at all. */
export async function openRelayLevelStore (dbDir: string, limits: MailboxLimits): Promise<LevelMailboxStore> {
  const existing = (await levelFiles(dbDir)).length > 0
  const bad = await badTablesReason(dbDir)
  if (bad !== undefined) throw relayStoreCorrupt(dbDir, bad)
  const store = new LevelMailboxStore(new Level(dbDir, { createIfMissing: !existing }), limits)
  try {
    await store.start()
  } catch (err) {
    throw relayStoreCorrupt(dbDir, openFailureReason(err, existing), err)
  }
  return store
}
