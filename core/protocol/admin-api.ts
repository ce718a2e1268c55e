/**
 * The relay admin API's contract (`/api/v1` on the admin listener and the
 * admin socket): the views the relay answers with, shared by the relay, its
 * CLI and the console page (which may import core/, never relay/).
 */

/** the relay's counters, as `stats`, the metrics snapshot and the traffic samples name them */
export type RelayCounters = Record<'deposited' | 'duplicates' | 'fetched' | 'acked' | 'refused' | 'redeemed' | 'expired', number>

export interface RelayStats {
  peerId: string
  addresses: string[]
  uptimeMs: number
  connections: number
  reservations: number
  users: number
  mailbox: { messages: number, bytes: number, recipients: number }
  /** issue 13: the file store (encrypted chunks of files kept for offline recipients) */
  files?: { files: number, bytes: number }
  counters: RelayCounters
}

/** One traffic sample of the console's ring (counter totals; the console draws rates from the differences). */
export interface TrafficSample extends RelayCounters { t: number, connections: number, reservations: number }

/** An invite as the relay keeps it. */
export interface Invite {
  token: string
  createdAt: number
  expiresAt: number
  maxUses: number
  uses: number
  note: string
  /** the peers admitted with it, written with the use it took */
  redeemedBy?: Array<{ peerId: string, at: number }>
  /** set when the admin revoked it: no further redemption */
  revokedAt?: number
}

export type InviteState = 'active' | 'used' | 'expired' | 'revoked'
/** `id`: the token's first 8 characters (what lists show and `revoke` takes); `person`: the directory entry it was made for */
export interface InviteView extends Invite { id: string, state: InviteState, link: string, person?: string }

/** An admitted device (one peer ID; accounts with several devices come later). */
export interface UserView {
  peerId: string
  admittedAt: number
  via: 'invite' | 'allow-list' | 'account'
  invite?: string
  person?: { id: string, name: string }
  lastSeen: number | null
  online: boolean
  mailbox: { messages: number, bytes: number }
  /** issue 17: what this device has in the relay's file store, against the per-user file quota in force */
  files: { files: number, bytes: number, quotaBytes: number }
}

/** One person of the company directory. */
export interface Person {
  /** `staff:<number>`, else `email:<address>` */
  id: string
  name: string
  /** department path, outermost first: ['Sales', 'East'] */
  department: string[]
  email: string
  staffNo: string
  /** the invite made for this person; its redeemers are this person's devices */
  invite: string
  addedAt: number
}
export interface PersonView extends Person { devices: string[], inviteState: InviteState | 'missing' }

/** A line of the links CSV and a card of the printable sheet. */
export interface InviteSheetRow {
  id: string
  name: string
  department: string[]
  email: string
  staffNo: string
  token: string
  link: string
  expiresAt: number
}

export interface Policy {
  /** how long undelivered mail is kept */
  mailboxTtlMs: number
  /** mail per recipient */
  quotaMessages: number
  /** bytes per recipient */
  quotaBytes: number
  /** whether this relay may pair with other offices' relays (stored now; enforced once federation exists) */
  federationAllowed: boolean
  /** issue 13: how long the relay keeps a file for offline recipients */
  fileTtlMs: number
  /** issue 13: bytes of files one user may have at the relay (0: no copies for offline colleagues) */
  fileQuotaBytes: number
  /** issue 13: the largest file the relay keeps */
  maxFileBytes: number
}
export type PolicyOverrides = Partial<Policy>
export type PolicyKey = keyof Policy
export const POLICY_KEYS: readonly PolicyKey[] = [
  'mailboxTtlMs', 'quotaMessages', 'quotaBytes', 'federationAllowed', 'fileTtlMs', 'fileQuotaBytes', 'maxFileBytes'
]
export interface PolicyView {
  effective: Policy
  /** where each value comes from */
  source: Record<PolicyKey, 'config' | 'console'>
}

export interface AuditEntry {
  /** ISO time */
  t: string
  /** who: `console:<name>`, `console:token` or `cli:<os user>` */
  who: string
  /** what: one of AUDIT_ACTIONS (`invite.create`, `user.remove`, `policy.set`, ...); the console words it from its catalogs */
  action: string
  /** what it was done to (an invite's short id, a peer ID, a person id), when there is one */
  target?: string
  /** anything else worth keeping (never a full invite token or a password) */
  details?: Record<string, unknown>
  /** false when the action failed (the error code is in details.code) */
  ok: boolean
}

/** Every action the audit log records, as the relay writes it (the console shows each in words, with the id as its title). */
export const AUDIT_ACTIONS = [
  'login', 'invite.create', 'invite.revoke', 'user.allow', 'user.remove', 'policy.set', 'directory.import', 'person.remove',
  'password.set', 'password.remove', 'federation.invite', 'federation.add', 'federation.remove', 'federation.policy'
] as const
export type AuditAction = typeof AUDIT_ACTIONS[number]

/** The policy's limits, in the units the relay keeps (ms, bytes); the console checks its form (days, MiB) against them too. */
export const POLICY_RANGES: Readonly<Record<Exclude<PolicyKey, 'federationAllowed'>, { min: number, max: number }>> = Object.freeze({
  mailboxTtlMs: { min: 60_000, max: 3650 * 24 * 3600_000 },
  quotaMessages: { min: 1, max: 10_000_000 },
  quotaBytes: { min: 1024 * 1024, max: 2 ** 40 },
  fileTtlMs: { min: 60_000, max: 3650 * 24 * 3600_000 },
  fileQuotaBytes: { min: 0, max: 2 ** 44 },
  maxFileBytes: { min: 1024 * 1024, max: 2 ** 34 }
})
export type PolicyRangeKey = keyof typeof POLICY_RANGES

/** One bad line of a directory CSV (`line` counts the header as 1). */
export type CsvProblem =
  | { line: number, problem: 'nameEmpty' | 'needsId' }
  | { line: number, problem: 'tooLong', field: 'name' | 'email' | 'staffNo' | 'department', max: number }
  | { line: number, problem: 'unsafe', field: 'name' | 'email' | 'staffNo' | 'department' }
  | { line: number, problem: 'badEmail', value: string }
  | { line: number, problem: 'duplicate', sameAs: number }

/**
 * `detail` of an admin API error (`{ code, message, detail }`): the rule that refused, with its values, so the
 * console says it in the admin's language (`message` is the English for the CLI and the logs).
 */
export type AdminErrorDetail =
  | { reason: 'policyRange', key: PolicyRangeKey, min: number, max: number }
  | { reason: 'policyUnknownKey', key: string }
  | { reason: 'policyNotBoolean', key: string }
  | { reason: 'policyNotObject' }
  | { reason: 'policyReset' }
  | { reason: 'inviteUses', min: number, max: number }
  | { reason: 'inviteHours', maxHours: number }
  | { reason: 'inviteNote', max: number }
  | { reason: 'inviteRef', min: number }
  | { reason: 'inviteAmbiguous', count: number }
  | { reason: 'inviteUnknown' }
  | { reason: 'personUnknown' }
  | { reason: 'peerId' }
  | { reason: 'csvText' }
  | { reason: 'csvTooLarge', maxMiB: number }
  | { reason: 'csvUnreadable' }
  | { reason: 'csvEmpty' }
  | { reason: 'csvNoName' }
  | { reason: 'csvNoId' }
  | { reason: 'csvTooMany', max: number, got: number }
  | { reason: 'csvLines', count: number, problems: CsvProblem[] }
  | { reason: 'loginWrong' }
  | { reason: 'loginLocked', seconds: number }
  | { reason: 'passwordShort', min: number }
  | { reason: 'passwordType' }
  /** a change sent by another web page (its Origin is not the console's own) */
  | { reason: 'foreignOrigin' }
export type AdminErrorReason = AdminErrorDetail['reason']
// federation (issue 12)

/** What `federation list` shows of one paired relay. */
export interface FedPeerView {
  peerId: string
  name: string
  addrs: string[]
  pairedAt: number
  policy: { directory: 'none' | 'listed', quotaMessages: number, quotaBytes: number, ttlMs: number }
  /** up: the last forward or directory fetch worked; down: it failed (lastError); idle: nothing tried since start */
  state: 'up' | 'down' | 'idle'
  queue: { depth: number, bytes: number, oldestAgeMs: number }
  lastContact: number | null
  lastError: string | null
  nextRetryMs: number
  /** since the relay started */
  counts: { forwarded: number, received: number, refused: number, expired: number, listed: number }
  /** its other instances on its shared store (issue 14), by peer ID: any of them speaks for it */
  instances?: string[]
}
