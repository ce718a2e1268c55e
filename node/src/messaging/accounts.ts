/**
 * Accounts (issue 11): which account this device belongs to, the account
 * records of everyone this device knows, and the device → account map every
 * other part asks (conversation ids, membership, sealing, safety numbers).
 *
 * A device whose account record we do not know is taken as a one-device
 * account of its own (its peer ID is the account ID): that is exactly what a
 * v0.1 peer and an account's first device are. A device the record revoked
 * belongs to no account: its envelopes are refused and nobody seals to it.
 */
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { deviceStatus, foldAccount, signAccountOp, verifyAccountRecord, type AccountOpInput } from '../../../core/crypto/account.js'
import { sealEnvelope, type SealInput, type SigningKeys } from '../../../core/crypto/envelope.js'
import type { Envelope } from '../../../core/protocol/envelope.js'
import {
  MAX_ACCOUNT_OPS, MAX_DEVICES, mergeOps, parseAccountOp, parseAccountRecord, type AccountOp, type AccountRecord, type AccountState, type HomeRelay
} from '../../../core/protocol/account.js'
import type { Logger } from '../../../core/util/log.js'
import type { MessageStore } from '../store/types.js'

/** meta key of our own account: { v, account, ops, since, migrated? } */
export const ACCOUNT_META = 'account'
/** meta key of the records of other accounts as Parley kept them before review s4 (one map): read once, then moved */
export const ACCOUNTS_META = 'accounts'
/** meta key of the other accounts kept, least recently seen first; each one's ops under ACCOUNT_OPS_META + its ID */
export const ACCOUNTS_INDEX_META = 'accounts.index'
export const ACCOUNT_OPS_META = 'account:'
/** other accounts kept at most (a flood of throw-away accounts evicts the least recently seen). @default 5000 */
export const MAX_FOREIGN_ACCOUNTS = 5000

export interface OwnAccountMeta {
  v: 1
  account: string
  ops: AccountOp[]
  /** when this device became part of the account (ms); messages before it were not sealed to it */
  since: number
  /** set when a v0.1 data dir became a one-device account at this start */
  migrated?: boolean
}

export interface AccountsComponents {
  store: Pick<MessageStore, 'getMeta' | 'putMeta' | 'updateMeta' | 'deleteMeta'>
  identity: SigningKeys
  log: Logger
  /** @default MAX_FOREIGN_ACCOUNTS */
  maxAccounts?: number
}

export class Accounts {
  private own!: OwnAccountMeta
  private readonly ops = new Map<string, AccountOp[]>()
  private readonly states = new Map<string, AccountState>()
  /** device → account, from the records (only devices of accounts other than themselves) */
  private readonly index = new Map<string, string>()
  private readonly revoked = new Set<string>()
  /** a revoked device → the account that revoked it (what it wrote while current stays that account's) */
  private readonly revokedBy = new Map<string, string>()
  private readonly listeners = new Set<(s: AccountState) => void>()

  constructor (private readonly c: AccountsComponents) {}

  get self (): string { return this.c.identity.peerId }
  get account (): string { return this.own.account }
  /** this device holds the account key (it is the account's first device) */
  get holdsAccountKey (): boolean { return this.own.account === this.self }
  get since (): number { return this.own.since }
  get migrated (): boolean { return this.own.migrated === true }
  /** a one-device account of its own that never linked or revoked a device (its home relay aside): it may still join another */
  get alone (): boolean { const s = this.ownState(); return this.holdsAccountKey && s.devices.length === 1 && s.revoked.length === 0 }

  /** Loads our account, or makes this device a one-device account (a v0.1 data dir or a new one) on first start. */
  async load (): Promise<void> {
    const stored = await this.c.store.getMeta(ACCOUNT_META) as OwnAccountMeta | undefined
    if (stored === undefined || typeof stored.account !== 'string') {
      // everything this device stored before (conversations, groups, contacts) is keyed by its peer ID, which
      // is now its account ID: nothing needs rewriting
      const hadData = await this.c.store.getMeta('profile') !== undefined
      this.own = { v: 1, account: this.self, ops: [], since: 0, ...(hadData ? { migrated: true } : {}) }
      await this.c.store.putMeta(ACCOUNT_META, this.own)
      if (hadData) this.c.log.info('v0.1 data dir: this device is now a one-device account', { account: this.self })
    } else {
      this.own = stored
    }
    const older = await this.c.store.getMeta(ACCOUNTS_META) as Record<string, AccountOp[]> | undefined
    if (older !== undefined) {
      // the one map of before: each account under its own key, once
      for (const [account, ops] of Object.entries(older)) await this.c.store.putMeta(ACCOUNT_OPS_META + account, ops)
      const index = (await this.c.store.getMeta(ACCOUNTS_INDEX_META) ?? []) as string[]
      await this.c.store.putMeta(ACCOUNTS_INDEX_META, [...new Set([...index, ...Object.keys(older)])])
      await this.c.store.deleteMeta(ACCOUNTS_META)
    }
    for (const account of (await this.c.store.getMeta(ACCOUNTS_INDEX_META) ?? []) as string[]) {
      const ops = await this.c.store.getMeta(ACCOUNT_OPS_META + account)
      if (!Array.isArray(ops) || account === this.own.account) continue
      try { this.index_(parseAccountRecord({ v: 1, account, ops })); this.kept.add(account) } catch (err) {
        this.c.log.warn('stored account record skipped', { account, err: toParleyError(err).message })
      }
    }
    this.index_({ v: 1, account: this.own.account, ops: this.own.ops })
  }

  onChange (fn: (s: AccountState) => void): void { this.listeners.add(fn) }

  /** The account `device` belongs to; null when its account revoked it. */
  accountOf (device: string): string | null {
    if (this.revoked.has(device) && !this.index.has(device)) return null
    return this.index.get(device) ?? device
  }

  /**
   * The account of a device for what it wrote and we already accepted (stored group ops, edits): a revoked
   * device's writes stay its former account's, so a revocation never rewrites history on replay.
   */
  accountOfAccepted (device: string): string | null { return this.accountOf(device) ?? this.revokedBy.get(device) ?? null }

  /** `device`'s account, or throws ERR_NOT_A_MEMBER for a revoked device. */
  requireAccountOf (device: string): string {
    const a = this.accountOf(device)
    if (a === null) throw new ParleyError('ERR_NOT_A_MEMBER', 'this device was removed from its account')
    return a
  }

  state (account: string): AccountState { return this.states.get(account) ?? foldAccount(account, []) }
  ownState (): AccountState { return this.state(this.own.account) }

  /** The current devices of `account` (just the account's own device while we know no record). */
  devicesOf (account: string): string[] { return this.state(account).devices }

  /** The record to send beside our envelopes and profile; undefined for a one-device account without ops. */
  ownRecord (): AccountRecord | undefined {
    const ops = this.ops.get(this.own.account) ?? []
    return ops.length === 0 ? undefined : { v: 1, account: this.own.account, ops }
  }

  /**
   * Seals an envelope of ours; our account's certificate chain rides beside it (outside the signature,
   * signed by the account key), so a receiver that does not know our account yet can check it.
   */
  seal (input: SealInput): Envelope {
    const sealed = sealEnvelope(this.c.identity, input)
    const acct = this.ownRecord()
    return acct === undefined ? sealed : { ...sealed, acct }
  }

  recordOf (account: string): AccountRecord | undefined {
    const ops = this.ops.get(account) ?? []
    return ops.length === 0 ? undefined : { v: 1, account, ops }
  }

  /**
   * A record from the network (beside an envelope or a profile): its ops are
   * merged into what we hold when every one verifies. Returns true when the
   * account's state changed.
   */
  async accept (record: AccountRecord): Promise<boolean> {
    const before = this.ops.get(record.account) ?? []
    this.touch(record.account)
    // the ops we hold were verified when they came: only the new ones are checked (a record rides every envelope)
    const known = new Set(before.map(op => op.sig))
    const fresh = record.ops.filter(op => !known.has(op.sig))
    if (fresh.length === 0) return false
    verifyAccountRecord({ ...record, ops: fresh })
    const merged = mergeOps(before, fresh)
    // nothing new (an op we had, or a home op a later one replaces)
    if (!merged.some(op => fresh.includes(op))) return false
    const state = this.index_({ v: 1, account: record.account, ops: merged })
    await this.persist(record.account, merged)
    for (const fn of this.listeners) fn(state)
    return true
  }

  /** Adds (or revokes, or sets the home of) our account: only on the device that holds the account key. */
  async change (input: AccountOpInput): Promise<AccountState> {
    if (!this.holdsAccountKey) {
      throw new ParleyError('ERR_NOT_A_MEMBER', 'only the account\'s first device can add or revoke devices; run this there')
    }
    const s = this.ownState()
    if (input.type === 'add' && deviceStatus(s, input.device) === 'revoked') {
      throw new ParleyError('ERR_INVALID_ARGUMENT', 'a revoked device cannot come back; link it anew with a new data dir')
    }
    if (input.type === 'revoke' && input.device === this.self) {
      throw new ParleyError('ERR_INVALID_ARGUMENT', 'this device holds the account key and cannot be revoked')
    }
    if (input.type === 'revoke' && deviceStatus(s, input.device) !== 'current') throw new ParleyError('ERR_NOT_FOUND', 'not a device of this account')
    if (input.type === 'add' && s.devices.length >= MAX_DEVICES) {
      throw new ParleyError('ERR_INVALID_ARGUMENT', `an account has at most ${MAX_DEVICES} devices: revoke one first`)
    }
    // checked as every peer will parse it: an op they would refuse would make the whole record unreadable
    const op = parseAccountOp(signAccountOp(this.c.identity, s.version + 1, input))
    const ops = mergeOps(this.ops.get(this.own.account) ?? [], [op])
    if (ops.length > MAX_ACCOUNT_OPS) {
      throw new ParleyError('ERR_INVALID_ARGUMENT', `an account record holds at most ${MAX_ACCOUNT_OPS} changes: this account has no room for more`)
    }
    const state = this.index_({ v: 1, account: this.own.account, ops })
    await this.persist(this.own.account, ops)
    for (const fn of this.listeners) fn(state)
    return state
  }

  async setHome (home: HomeRelay[]): Promise<AccountState> { return await this.change({ type: 'home', home }) }

  /**
   * This device joins `record`'s account (linking): allowed only while it is
   * still a one-device account of its own, and only when the record lists it.
   */
  async join (record: AccountRecord): Promise<AccountState> {
    verifyAccountRecord(record)
    const state = foldAccount(record.account, record.ops)
    if (deviceStatus(state, this.self) !== 'current') throw new ParleyError('ERR_NOT_A_MEMBER', 'the account does not list this device')
    if (this.own.account === record.account) { await this.accept(record); return this.ownState() }
    if (!this.alone) {
      throw new ParleyError('ERR_INVALID_ARGUMENT', 'this device already belongs to an account')
    }
    this.own = { v: 1, account: record.account, ops: record.ops, since: Date.now() }
    await this.c.store.putMeta(ACCOUNT_META, this.own)
    const s = this.index_({ v: 1, account: record.account, ops: record.ops })
    for (const fn of this.listeners) fn(s)
    return s
  }

  private async persist (account: string, ops: AccountOp[]): Promise<void> {
    if (account === this.own.account) {
      this.own = { ...this.own, ops }
      await this.c.store.putMeta(ACCOUNT_META, this.own)
      return
    }
    // each account under its own key: a change rewrites that account only; the index only when one comes or goes
    await this.c.store.putMeta(ACCOUNT_OPS_META + account, ops)
    if (this.kept.has(account)) return
    this.kept.add(account)
    const max = this.c.maxAccounts ?? MAX_FOREIGN_ACCOUNTS
    const evicted: string[] = []
    for (const a of this.kept) {
      if (this.kept.size <= max) break
      if (a === account) continue
      this.kept.delete(a)
      evicted.push(a)
    }
    for (const a of evicted) { this.forget(a); await this.c.store.deleteMeta(ACCOUNT_OPS_META + a) }
    await this.c.store.putMeta(ACCOUNTS_INDEX_META, [...this.kept])
    if (evicted.length > 0) this.c.log.info('account records evicted (least recently seen)', { count: evicted.length })
  }

  /** other accounts whose records we keep, least recently seen first */
  private readonly kept = new Set<string>()

  private touch (account: string): void {
    if (!this.kept.delete(account)) return
    this.kept.add(account)
  }

  /** An evicted account: its devices are taken as accounts of their own until its record comes again. */
  private forget (account: string): void {
    const s = this.states.get(account)
    this.ops.delete(account)
    this.states.delete(account)
    for (const d of s?.devices ?? []) if (this.index.get(d) === account) this.index.delete(d)
  }

  private index_ (r: AccountRecord): AccountState {
    this.ops.set(r.account, r.ops)
    const s = foldAccount(r.account, r.ops)
    this.states.set(r.account, s)
    for (const d of s.devices) if (d !== r.account) this.index.set(d, r.account)
    for (const d of s.revoked) { this.index.delete(d); this.revoked.add(d); this.revokedBy.set(d, r.account) }
    return s
  }
}
