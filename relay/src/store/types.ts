/**
 * The relay's store as an interface: admitted users, invites, and the mailbox
 * of sealed envelopes per recipient. LevelMailboxStore (LevelDB, embedded, one
 * relay) and PgMailboxStore (PostgreSQL, shared by several relay instances)
 * implement it and run the same compliance suite
 * (test/compliance/mailbox-store.ts).
 *
 * Contract, for every implementation:
 * - writes (admit, redeem, deposit, ack, sweep) resolve only once durable;
 * - cursors increase per recipient in deposit order and are never reused;
 * - a copy is deduped per (recipient, author, envelope id);
 * - quotas count per recipient; a full mailbox refuses only its own copy;
 * - fetch skips expired rows and stays below FETCH_MAX_BYTES (at least one item).
 */
import type { SenderUse } from './sender-shares.js'
import type { Envelope } from '../../../core/protocol/envelope.js'
import type { FetchResult } from '../../../core/protocol/relay-rpc.js'
import type { Invite, Person, PolicyOverrides } from '../../../core/protocol/admin-api.js'

export type { Invite } from '../../../core/protocol/admin-api.js'
/** via `account`: a device of an account one of whose devices was admitted (issue 11); `invite` then names the account */
export interface RelayUser { peerId: string, admittedAt: number, via: 'invite' | 'allow-list' | 'account', invite?: string }

export interface MailboxLimits {
  /** how long undelivered mail is kept. @default 30 days */
  ttlMs: number
  /** per recipient. @default 50000 */
  quotaMessages: number
  /** per recipient. @default 256 MiB */
  quotaBytes: number
  /**
   * The part of each recipient's quota (messages and bytes) that one sender
   * may fill, 0 < share <= 1: a flood from one sender leaves room for the
   * others' mail. @default 0.25
   */
  senderShare?: number
}

export const DEFAULT_MAILBOX_TTL_MS = 30 * 24 * 3600 * 1000
export const DEFAULT_QUOTA_MESSAGES = 50_000
export const DEFAULT_QUOTA_BYTES = 256 * 1024 * 1024
export { DEFAULT_SENDER_SHARE } from './sender-shares.js'

/** one fetch answer stays below this many envelope bytes (frames are limited to 1 MiB) */
export const FETCH_MAX_BYTES = 512 * 1024

/** @default 7 days */
export const DEFAULT_INVITE_TTL_MS = 7 * 24 * 3600 * 1000

export interface InviteOptions {
  /** @default 1 */
  maxUses?: number
  /** @default 7 days */
  ttlMs?: number
  note?: string
}

/** A fetch as the store answers it: the wire's items plus each one's deposit time (ms), which the relay keeps to itself. */
export interface StoredFetchResult extends FetchResult { items: Array<FetchResult['items'][number] & { depositedAt?: number }> }

export interface MailboxTotals { messages: number, bytes: number, recipients: number }

/**
 * What a store tells the relay as it happens. With a shared store
 * (PostgreSQL), changes made by other instances are told too: that is how
 * the instance holding a recipient's connection learns of mail deposited on
 * another one.
 */
export interface MailboxWatcher {
  /** new mail was kept for `recipient` */
  mail?: (recipient: string) => void
  /** `peerId`'s admission was withdrawn */
  removed?: (peerId: string) => void
  /** changes may have been missed (the store's notification link was down): anything may have changed */
  resync?: () => void
}

export interface MailboxStore {
  /** Opens the store; idempotent. */
  start(): Promise<void>
  /** Waits for staged writes, then closes; idempotent. */
  stop(): Promise<void>
  getMeta(key: string): Promise<unknown>
  putMeta(key: string, value: unknown): Promise<void>

  /** Synchronous: asked on every reservation and circuit (kept in memory, loaded at start). */
  isAdmitted(peerId: string): boolean
  /** How many peers are admitted (synchronous, like isAdmitted). */
  admittedCount(): number
  /** New retention and quotas apply to the next deposit, fetch and sweep (no restart). */
  setLimits(limits: MailboxLimits): void
  /** Admits without an invite; admitting again keeps the first record. */
  admit(peerId: string, via: RelayUser['via'], invite?: string): Promise<RelayUser>
  /** True when the peer was admitted. */
  removeUser(peerId: string): Promise<boolean>
  listUsers(): Promise<RelayUser[]>
  createInvite(opts?: InviteOptions): Promise<Invite>
  /** Several invites in one durable write (directory import: one per person). */
  createInvites(list: InviteOptions[]): Promise<Invite[]>
  listInvites(): Promise<Invite[]>
  /** Revokes an invite (kept, with who redeemed it); undefined when unknown. */
  revokeInvite(token: string): Promise<Invite | undefined>
  /** Admits `peerId` with an invite (ERR_INVITE_INVALID: unknown, revoked, expired, used up), recording it in the
   * invite's `redeemedBy` in the same write; again by an admitted peer: a no-op. */
  redeem(token: string, peerId: string): Promise<RelayUser>

  /**
   * Keeps `envelope` for each recipient in one durable write; returns how many copies were new. A copy of
   * the same author and id already waiting for a recipient dedupes it, unless `envelope` is at a higher seq
   * (its author moved it, PROTOCOL.md "Sequence reconciliation"; the caller verified the signature): then it
   * replaces the waiting copy (at a new cursor) and counts as new.
   */
  deposit(to: string | string[], from: string, envelope: Envelope, bytes: number): Promise<number>
  /**
   * Like deposit; also names the recipients that got no copy for lack of
   * room: `full` (the mailbox is full, or this sender's share of it) and,
   * among them, `shareFull` (this sender's share is used up). The others got
   * theirs. When no new copy was kept at all it throws ERR_SENDER_SHARE_FULL
   * (only shares were full) or ERR_QUOTA_EXCEEDED.
   */
  depositAll(to: string | string[], from: string, envelope: Envelope, bytes: number): Promise<{ stored: number, full: string[], shareFull: string[] }>
  /** The senders holding the most of a recipient's mailbox relative to their share, floods first (for `stats`). */
  topSenders(limit?: number): Promise<SenderUse[]>
  /** The recipient's mail after cursor `after`, at most `limit` items, each with when it was deposited (for the wait histogram). */
  fetch(recipient: string, after: number, limit: number): Promise<StoredFetchResult>
  /** Deletes the recipient's mail up to and including `upTo`; returns how many. */
  ack(recipient: string, upTo: number): Promise<number>
  /** Deletes exactly the recipient's items at `cursors` (those already gone are ignored); returns how many. */
  ackCursors(recipient: string, cursors: number[]): Promise<number>
  /** How many items wait for the recipient. */
  queued(recipient: string): Promise<number>
  /** Deletes mail older than the TTL; returns how many. */
  sweep(now?: number): Promise<number>
  totals(): Promise<MailboxTotals>
  /** Mail waiting per recipient. */
  usageByRecipient(): Promise<Map<string, { count: number, bytes: number }>>
  // admission per account (issue 11): relay/src/store/account-admission.ts, on getMeta/putMeta above (alike in every store)
  /** Tells `watcher` of changes until the returned function is called. */
  watch(watcher: MailboxWatcher): () => void
}

/**
 * The admin side's state when the store is shared by several instances
 * (PostgreSQL, issue 14): the company directory, last-seen times and the
 * console's policy live in the shared store, so every instance answers the
 * same directory and applies the same TTL, quotas and federation switch. A
 * policy change notifies every instance (`onPolicyChanged`), which re-reads it.
 * A single box on LevelDB keeps these in its own admin-db (admin/admin-store.ts).
 */
export interface SharedAdminStore {
  listPeople(): Promise<Person[]>
  getPerson(id: string): Promise<Person | undefined>
  /** Adds people in one transaction; ids already present are left as they are and returned in `existing`. */
  addPeople(people: Person[]): Promise<{ added: Person[], existing: string[] }>
  removePerson(id: string): Promise<Person | undefined>
  /** Last-seen times: each kept at the latest written. */
  putSeen(entries: Array<[string, number]>): Promise<void>
  listSeen(): Promise<Array<[string, number]>>
  deleteSeen(peerId: string): Promise<void>
  getPolicy(): Promise<PolicyOverrides>
  /** Stores the console's policy overrides and tells every instance (on commit). */
  putPolicy(p: PolicyOverrides): Promise<void>
  /** `fn` runs when some instance changed the policy (and after lost notifications came back); returns the unsubscribe. */
  onPolicyChanged(fn: () => void): () => void
}
