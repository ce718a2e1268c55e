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
import { mergeOps, parseAccountRecord, type AccountOp, type AccountRecord, type AccountState, type HomeRelay } from '../../../core/protocol/account.js'
import type { Logger } from '../../../core/util/log.js'
import type { MessageStore } from '../store/types.js'

/** meta key of our own account: { v, account, ops, since, migrated? } */
export const ACCOUNT_META = 'account'
/** meta key of the records of other accounts: { [account]: ops } */
export const ACCOUNTS_META = 'accounts'

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
  store: Pick<MessageStore, 'getMeta' | 'putMeta' | 'updateMeta'>
  identity: SigningKeys
  log: Logger
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
    const others = (await this.c.store.getMeta(ACCOUNTS_META) ?? {}) as Record<string, AccountOp[]>
    for (const [account, ops] of Object.entries(others)) {
      try { this.index_(parseAccountRecord({ v: 1, account, ops })) } catch (err) {
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
    verifyAccountRecord(record)
    const before = this.ops.get(record.account) ?? []
    const merged = mergeOps(before, record.ops)
    if (merged.length === before.length) return false
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
    const op = signAccountOp(this.c.identity, s.version + 1, input)
    const ops = mergeOps(this.ops.get(this.own.account) ?? [], [op])
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
    await this.c.store.updateMeta(ACCOUNTS_META, (v) => ({ ...(v as Record<string, AccountOp[]> | undefined), [account]: ops }))
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
