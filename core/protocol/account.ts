/**
 * Accounts (issue 11): a person is an account, an Ed25519 account key that
 * certifies device keys (libp2p peer IDs) by signed, numbered ops. The
 * account record is the set of those ops; every peer folds it the same way
 * (core/crypto/account.ts: `foldAccount`), whatever order the ops arrived in.
 *
 * An account ID is written like a peer ID: the identity multihash of the
 * account's Ed25519 public key in base58btc (`12D3KooW…`). The account key is
 * the key of the account's first device (a v0.1 device becomes a one-device
 * account with its own peer ID as account ID), so that device needs no
 * certificate and every conversation id made before accounts stays valid.
 * See docs/PROTOCOL.md, "Accounts and devices".
 */
import { Checker, B64URL, PEER_ID } from './validate.js'

export type AccountId = string

/** One home relay: where mail for the account's devices waits (federation routes by it). */
export interface HomeRelay {
  /** the relay's peer ID */
  relay: string
  /** its multiaddrs (each ending in /p2p/<relay>) */
  addrs: string[]
}

/**
 * One signed change of an account: `add` certifies a device, `revoke` ends a
 * device for good, `home` replaces the home relay list. `n` is the op's
 * number (the record's version is the highest); `at` the account device's
 * wall clock, shown only.
 */
export interface AccountOp {
  v: 1
  account: AccountId
  n: number
  type: 'add' | 'revoke' | 'home'
  /** add / revoke: the device's peer ID */
  device?: string
  /** add: the device's name as the user gave it ("laptop"), shown in the device list */
  label?: string
  /**
   * add: the device's consent, Ed25519 by the device key over `deviceConsentBytes(account, device)`: no
   * account can claim another person's device
   */
  dsig?: string
  /** home: the home relays, empty = LAN only */
  home?: HomeRelay[]
  at: number
  /** Ed25519 by the account key over `accountOpBytes` (core/crypto/account.ts) */
  sig: string
}

/** The account record as it travels: every op of the account this peer holds. */
export interface AccountRecord {
  v: 1
  account: AccountId
  ops: AccountOp[]
}

/** What an account's ops say, folded. */
export interface AccountState {
  account: AccountId
  /** highest op number folded in (0: no op, a one-device account) */
  version: number
  /** current devices, the account key's own device first, then in certificate order */
  devices: string[]
  /** device → its label (add op) */
  labels: Record<string, string>
  /** devices revoked, for good */
  revoked: string[]
  home: HomeRelay[]
}

export const MAX_ACCOUNT_OPS = 256
export const MAX_DEVICES = 32
export const MAX_HOME_RELAYS = 8
export const MAX_LABEL_CHARS = 64

const check = new Checker('ERR_INVALID_ENVELOPE', 'account record')

function parseHome (value: unknown): HomeRelay[] {
  const home = check.arr({ home: value }, 'home', { max: MAX_HOME_RELAYS })
  return home.map((h) => {
    const o = check.obj(h, 'home[]')
    const addrs = check.arr(o, 'addrs', { max: 8 }).map(a => check.str({ a }, 'a', { max: 300 }))
    return { relay: check.str(o, 'relay', { max: 60, pattern: PEER_ID }), addrs }
  })
}

export function parseAccountOp (value: unknown): AccountOp {
  const o = check.obj(value, 'op')
  check.literal(o, 'v', [1])
  const type = check.literal(o, 'type', ['add', 'revoke', 'home'])
  const op: AccountOp = {
    v: 1,
    account: check.str(o, 'account', { max: 60, pattern: PEER_ID }),
    n: check.int(o, 'n', { min: 1, max: 2 ** 31 }),
    type,
    at: check.int(o, 'at', { min: 0, max: 2 ** 50 }),
    sig: check.str(o, 'sig', { min: 86, max: 86, pattern: B64URL })
  }
  if (type === 'home') op.home = parseHome(o.home)
  else op.device = check.str(o, 'device', { max: 60, pattern: PEER_ID })
  if (type === 'add' && o.label !== undefined) op.label = check.str(o, 'label', { min: 0, max: MAX_LABEL_CHARS })
  if (type === 'add') op.dsig = check.str(o, 'dsig', { min: 86, max: 86, pattern: B64URL })
  return op
}

/** An account record; ops of another account are refused. */
export function parseAccountRecord (value: unknown): AccountRecord {
  const o = check.obj(value)
  check.literal(o, 'v', [1])
  const account = check.str(o, 'account', { max: 60, pattern: PEER_ID })
  const ops = check.arr(o, 'ops', { max: MAX_ACCOUNT_OPS }).map(parseAccountOp)
  if (ops.some(op => op.account !== account)) check.fail('an op of another account')
  return { v: 1, account, ops }
}

/**
 * Ops of both, each once (an op is identified by its signature), in (n, sig) order. A `home` op that a
 * later one replaces is dropped: the fold's result is the same (the last home op wins, and the highest
 * op number is never a replaced home op), and a record whose relay addresses change often stays far
 * below MAX_ACCOUNT_OPS.
 */
export function mergeOps (a: readonly AccountOp[], b: readonly AccountOp[]): AccountOp[] {
  const bySig = new Map<string, AccountOp>()
  for (const op of [...a, ...b]) if (!bySig.has(op.sig)) bySig.set(op.sig, op)
  const sorted = [...bySig.values()].sort(compareOps)
  const lastHome = sorted.findLast(op => op.type === 'home')
  return sorted.filter(op => op.type !== 'home' || op === lastHome)
}

/** Does `record` speak of `device` (its account key's device, or a device one of its ops names)? Records are taken only from the devices they are about. */
export const recordNames = (record: AccountRecord, device: string): boolean =>
  record.account === device || record.ops.some(op => op.device === device)

export const compareOps = (x: AccountOp, y: AccountOp): number => x.n - y.n || (x.sig < y.sig ? -1 : x.sig > y.sig ? 1 : 0)

/** The link code's parts (see docs/PROTOCOL.md, "Linking a device"): the account device to dial and a one-time secret. */
export interface LinkCode { device: string, secret: string }
export const LINK_SECRET = /^[a-z2-7]{26}$/

export function formatLinkCode (c: LinkCode): string { return `${c.device}-${c.secret}` }

export function parseLinkCode (value: string): LinkCode | null {
  const v = value.trim()
  const cut = v.lastIndexOf('-')
  if (cut < 0) return null
  const device = v.slice(0, cut)
  const secret = v.slice(cut + 1).toLowerCase()
  return PEER_ID.test(device) && LINK_SECRET.test(secret) ? { device, secret } : null
}
