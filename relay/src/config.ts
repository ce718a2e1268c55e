/**
 * Relay settings: defaults, the optional JSON config file, validation.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ParleyError } from '../../core/errors.js'
import { PEER_ID } from '../../core/protocol/validate.js'
import { DEFAULT_MAILBOX_TTL_MS, DEFAULT_QUOTA_BYTES, DEFAULT_QUOTA_MESSAGES, DEFAULT_SENDER_SHARE, type MailboxLimits } from './store/types.js'
import type { CircuitLimits } from './relay-host.js'
import type { AdminInit } from './admin/admin-room.js'
import { DEFAULT_FEDERATION_ALLOWED, parsePolicyOverrides, type Policy } from './admin/policy.js'
import { DEFAULT_SAMPLE_INTERVAL_MS } from './admin/traffic.js'
import type { LogLevel } from '../../core/util/log.js'
import { DEFAULT_FEDERATION_INIT, type FederationInit } from './federation/federation.js'
import { DEFAULT_FILE_LIMITS, type FileLimits } from './files/file-store.js'

export interface RelayInit {
  dataDir: string
  /** @default ['/ip4/0.0.0.0/tcp/4100', '/ip4/0.0.0.0/tcp/4101/ws'] */
  listen?: string[]
  /** public addresses to announce instead (e.g. '/dns4/relay.example.com/tcp/443/wss'). @default [] */
  announce?: string[]
  /** peer IDs admitted without an invite. @default [] */
  allow?: string[]
  mailbox?: Partial<MailboxLimits>
  circuit?: Partial<CircuitLimits>
  /** how often expired mail is deleted. @default 60000 */
  sweepIntervalMs?: number
  /** the admin HTTP listener (console, /metrics, /healthz, /readyz). @default { host: '127.0.0.1', port: 0 }; the CLI's default port is 4102 */
  admin?: Partial<AdminInit>
  /**
   * Federation with other offices' relays (docs/RELAY.md): `allowed` is the policy's federationAllowed
   * (off: no pairing, no forwarding, other relays refused); `name` is what the other offices see this relay
   * called; the timings are for tests. @default { allowed: false, name: 'Parley relay' }
   */
  federation?: { allowed?: boolean } & Partial<FederationInit>
  /** minimum log level (JSON lines on stderr); the CLI reads it, PARLEY_LOG overrides. @default 'info' */
  logLevel?: LogLevel
  /**
   * Where the relay keeps users, invites and mail: 'level' (LevelDB in the
   * data dir, one relay) or a PostgreSQL URL, postgres://… (shared by several
   * relay instances). @default 'level'
   */
  store?: string
  /** files kept for offline recipients: per-user quota, largest file, time to live (files, issue 13) */
  files?: Partial<FileLimits>
}

/** the admin listener's port when `parley-relay start` is given none */
export const DEFAULT_ADMIN_PORT = 4102
export const DEFAULT_ADMIN: AdminInit = { host: '127.0.0.1', port: 0, allowedHosts: [], sampleIntervalMs: DEFAULT_SAMPLE_INTERVAL_MS }
const LOG_LEVELS: readonly string[] = ['debug', 'info', 'warn', 'error', 'silent']

export const DEFAULT_RELAY_LISTEN = ['/ip4/0.0.0.0/tcp/4100', '/ip4/0.0.0.0/tcp/4101/ws']
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000
export const DEFAULT_CIRCUIT_LIMITS: CircuitLimits = { maxReservations: 1024, durationLimitMs: 0, dataLimitBytes: 0, reservationTtlMs: 2 * 3600 * 1000 }

export interface ResolvedRelayConfig {
  dataDir: string
  listen: string[]
  announce: string[]
  allow: string[]
  mailbox: MailboxLimits
  circuit: CircuitLimits
  sweepIntervalMs: number
  admin: AdminInit
  /** the policy the config gives (console changes are layered on top) */
  policy: Policy
  /** 'level', or a postgres:// URL */
  store: string
  federation: FederationInit
  files: FileLimits
}

const PG_URL = /^postgres(ql)?:\/\//

/** The store setting checked: 'level' or a PostgreSQL URL. */
export function checkStore (store: string): string {
  if (store === 'level' || PG_URL.test(store)) return store
  throw new ParleyError('ERR_INVALID_ARGUMENT', `store must be "level" or a PostgreSQL URL (postgres://user@host/db), got "${store.replace(/:[^@/]*@/, ':***@')}"`)
}

export const isPostgresStore = (store: string): boolean => PG_URL.test(store)

export function resolveRelayConfig (init: RelayInit): ResolvedRelayConfig {
  const mailbox = {
    ttlMs: DEFAULT_MAILBOX_TTL_MS, quotaMessages: DEFAULT_QUOTA_MESSAGES, quotaBytes: DEFAULT_QUOTA_BYTES, senderShare: DEFAULT_SENDER_SHARE, ...init.mailbox
  }
  const circuit = { ...DEFAULT_CIRCUIT_LIMITS, ...init.circuit }
  const positive = (v: number, name: string, allowZero = false): void => {
    if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
      throw new ParleyError('ERR_INVALID_ARGUMENT', `${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${String(v)}`)
    }
  }
  positive(mailbox.ttlMs, 'mailbox.ttlMs'); positive(mailbox.quotaMessages, 'mailbox.quotaMessages'); positive(mailbox.quotaBytes, 'mailbox.quotaBytes')
  if (!(mailbox.senderShare > 0 && mailbox.senderShare <= 1)) {
    const got = String(mailbox.senderShare)
    throw new ParleyError('ERR_INVALID_ARGUMENT', `mailbox.senderShare must be a fraction of the quota above 0 and at most 1, got ${got}`)
  }
  positive(circuit.maxReservations, 'circuit.maxReservations'); positive(circuit.reservationTtlMs, 'circuit.reservationTtlMs')
  positive(circuit.durationLimitMs, 'circuit.durationLimitMs', true); positive(circuit.dataLimitBytes, 'circuit.dataLimitBytes', true)
  const allow = init.allow ?? []
  for (const p of allow) if (!PEER_ID.test(p)) throw new ParleyError('ERR_INVALID_ARGUMENT', `allow-list entry is not a peer ID: ${p}`)
  const sweepIntervalMs = init.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS
  positive(sweepIntervalMs, 'sweepIntervalMs')
  const admin = resolveAdmin(init.admin)
  const federationAllowed = init.federation?.allowed ?? DEFAULT_FEDERATION_ALLOWED
  const files = { ...DEFAULT_FILE_LIMITS, ...init.files }
  positive(files.quotaBytes, 'files.quotaBytes', true); positive(files.ttlMs, 'files.ttlMs'); positive(files.maxFileBytes, 'files.maxFileBytes')
  const policy: Policy = {
    mailboxTtlMs: mailbox.ttlMs, quotaMessages: mailbox.quotaMessages, quotaBytes: mailbox.quotaBytes, federationAllowed,
    fileTtlMs: files.ttlMs, fileQuotaBytes: files.quotaBytes, maxFileBytes: files.maxFileBytes
  }
  // the config file's policy obeys the same rules as the console's
  parsePolicyOverrides(policy, 'config')
  if (init.logLevel !== undefined && !LOG_LEVELS.includes(init.logLevel)) {
    throw new ParleyError('ERR_INVALID_ARGUMENT', `logLevel must be one of ${LOG_LEVELS.join(', ')}, got ${String(init.logLevel)}`)
  }
  const listen = init.listen ?? DEFAULT_RELAY_LISTEN
  const store = checkStore(init.store ?? 'level')
  const { allowed: _allowed, ...fedInit } = init.federation ?? {}
  const federation = { ...DEFAULT_FEDERATION_INIT, ...fedInit }
  if (typeof federation.name !== 'string' || federation.name.trim() === '' || federation.name.length > 100) {
    throw new ParleyError('ERR_INVALID_ARGUMENT', 'federation.name must be the office\'s name, 1 to 100 characters')
  }
  for (const k of ['tickMs', 'retryMinMs', 'retryMaxMs', 'directoryRefreshMs'] as const) positive(federation[k], `federation.${k}`)
  return { dataDir: init.dataDir, listen, announce: init.announce ?? [], allow, mailbox, circuit, sweepIntervalMs, admin, policy, store, federation, files }
}

function resolveAdmin (init: Partial<AdminInit> = {}): AdminInit {
  const a = { ...DEFAULT_ADMIN, ...init }
  if (a.port !== null && (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535)) {
    throw new ParleyError('ERR_INVALID_ARGUMENT', `admin.port must be a port number (0 picks one) or null (no admin listener), got ${String(a.port)}`)
  }
  if (typeof a.host !== 'string' || a.host === '') throw new ParleyError('ERR_INVALID_ARGUMENT', 'admin.host must be an address to listen on, e.g. 127.0.0.1')
  if (!Array.isArray(a.allowedHosts) || a.allowedHosts.some(h => typeof h !== 'string' || h === '')) {
    throw new ParleyError('ERR_INVALID_ARGUMENT', 'admin.allowedHosts must be a list of host names')
  }
  if (!Number.isInteger(a.sampleIntervalMs) || a.sampleIntervalMs < 100) {
    throw new ParleyError('ERR_INVALID_ARGUMENT', 'admin.sampleIntervalMs must be at least 100')
  }
  return a
}

/** Reads a JSON config file whose keys are RelayInit's (dataDir excepted). */
export async function readRelayConfigFile (path: string): Promise<Omit<RelayInit, 'dataDir'>> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ParleyError('ERR_INVALID_ARGUMENT', `cannot read config file ${path}: ${(err as Error).message}`, { cause: err })
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new ParleyError('ERR_INVALID_ARGUMENT', `config file ${path} is not valid JSON: ${(err as Error).message}`, { cause: err })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ParleyError('ERR_INVALID_ARGUMENT', `config file ${path} must hold a JSON object`)
  }
  const known = new Set(['listen', 'announce', 'allow', 'mailbox', 'circuit', 'sweepIntervalMs', 'admin', 'federation', 'logLevel', 'store', 'files'])
  for (const k of Object.keys(value)) if (!known.has(k)) throw new ParleyError('ERR_INVALID_ARGUMENT', `config file ${path}: unknown setting "${k}"`)
  return value as Omit<RelayInit, 'dataDir'>
}

export const relayFiles = (dataDir: string): { db: string, adminSocket: string, info: string, key: string, files: string } => ({
  db: join(dataDir, 'db'),
  /** encrypted file chunks for offline recipients (files/file-store.ts) */
  files: join(dataDir, 'files'),
  /** the relay's private key when its store is shared (each instance has its own peer ID) */
  key: join(dataDir, 'relay-key'),
  adminSocket: join(dataDir, 'admin.sock'),
  info: join(dataDir, 'relay.json')
})
