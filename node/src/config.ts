/**
 * Node settings and their defaults, resolved in one place.
 */
import { homedir } from 'node:os'
import { join } from 'node:path'
import { ParleyError } from '../../core/errors.js'
import type { HostInit } from './host/libp2p-host.js'
import type { MessengerInit } from './messaging/messenger.js'
import type { RelayClientInit } from './messaging/relay-client.js'
import type { ChangeWindows } from './api/changes.js'
import type { FileServiceInit } from './files/service.js'

export interface NodeInit {
  /** @default $PARLEY_DATA, else $XDG_DATA_HOME/parley, else ~/.local/share/parley */
  dataDir?: string
  /** display name; keeps the stored one when absent */
  name?: string
  host?: HostInit
  messenger?: Omit<MessengerInit, 'name'>
  /** TCP port of the local API and UI on 127.0.0.1; 0 picks a free one. @default 7717 */
  apiPort?: number
  /** serve the local API at all (in-process tests may not need it). @default true */
  api?: boolean
  /** relay multiaddr (with /p2p/); stored, so later starts keep it. @default the stored one, else none */
  relay?: string
  /** invite token to redeem at the relay (once). */
  invite?: string
  relayClient?: RelayClientInit
  /** how long after writing a message its author may edit or recall it (a rule of this sender); stored, so later starts keep it
   * (`parley start --edit-minutes N --recall-minutes N`). @default the stored one, else 24 h each */
  changeWindows?: Partial<ChangeWindows>
  /** file transfer: downloads folder, size limit, window (files, issue 13) */
  files?: FileServiceInit
}

/** @default 7717 */
export const DEFAULT_API_PORT = 7717

export function defaultDataDir (env: NodeJS.ProcessEnv = process.env): string {
  if (env.PARLEY_DATA !== undefined && env.PARLEY_DATA !== '') return env.PARLEY_DATA
  const base = env.XDG_DATA_HOME !== undefined && env.XDG_DATA_HOME !== '' ? env.XDG_DATA_HOME : join(homedir(), '.local', 'share')
  return join(base, 'parley')
}

export function resolveApiPort (port: number | undefined): number {
  const p = port ?? DEFAULT_API_PORT
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new ParleyError('ERR_INVALID_ARGUMENT', `API port must be 0..65535, got ${String(port)}`)
  return p
}

/** Files inside the data dir. */
export const dataFiles = (dataDir: string): { db: string, keyFile: string, token: string, socket: string, apiInfo: string, pid: string, files: string } => ({
  db: join(dataDir, 'db'),
  keyFile: join(dataDir, 'device-key'),
  token: join(dataDir, 'api-token'),
  socket: join(dataDir, 'api.sock'),
  apiInfo: join(dataDir, 'api.json'),
  /** the running node's process id, while it holds the store (parley doctor refuses then) */
  pid: join(dataDir, 'parley.pid'),
  files: join(dataDir, 'files')
})
