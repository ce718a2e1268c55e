/**
 * The relay-to-relay protocol (FED_PROTOCOL): pairing, forwarded batches and
 * the directory, between the relays of two offices, and the pairing token.
 * Only relays speak it; every body is checked here before use.
 *
 * - `pair { secret, name, addrs }` -> `{ name, addrs }`: the only method an
 *   unpaired relay may call; it uses a one-time invite of the answering relay.
 * - `forward { batch, items: [{ seq, to, envelope }], accounts? }` -> FedReceipt:
 *   items of the caller's queue to us, in seq order. Stored (after fsync) for
 *   our own recipients only, and only for an author whose signed account
 *   record (`accounts`, or the envelope's `acct`) names the caller as home: an
 *   item of anybody else is refused whole (`refused: [[seq, ERR_FED_NOT_HOME]]`),
 *   as is one that does not verify (ERR_INVALID_ENVELOPE); a seq at or below our
 *   high-water mark for the caller is a replay and stores nothing.
 * - `directory {}` -> `{ name, people: [{ peerId, name, department?, acct? }], instances? }`:
 *   our users who chose to be listed, as our policy for the caller allows,
 *   each with its signed account record (`acct`): the asker lists (and routes
 *   to) only a person whose record names the answering relay as home.
 * - `instances` (in the token, `pair`, its answer and `directory`): a relay
 *   of several instances on one store names them all `[{ peerId, addrs }]`;
 *   the other side takes any of them as this relay (issue 14).
 * - `notices { receipts: SignedReceipt[] }` -> `{ taken }`: delivery and read
 *   receipts, each signed by the recipient device, for authors who are our
 *   users (core/protocol/fed-notice.ts); kept for their devices' `notices`.
 */
import { randomBytes, createHash } from 'node:crypto'
import { ParleyError } from '../../../core/errors.js'
import { MAX_RECIPIENTS, MAX_SEQ, parseEnvelope } from '../../../core/protocol/envelope.js'
import { Checker, PEER_ID, b64, CONTROL_CHARS } from '../../../core/protocol/validate.js'
import { parseAccountRecord, type AccountRecord } from '../../../core/protocol/account.js'
import type { FedInboundItem, FedInstance, FedReceipt } from './types.js'

export const FED_PROTOCOL = '/parley/fed/1.0.0'
export type FedMethod = 'pair' | 'forward' | 'directory' | 'notices'
export const FED_METHODS: readonly FedMethod[] = ['pair', 'forward', 'directory', 'notices']

/** items per forwarded batch, at most */
export const MAX_FED_BATCH = 200
/** a batch's envelopes stay below this many bytes (frames are limited to 1 MiB) */
export const FED_BATCH_BYTES = 512 * 1024
export const MAX_FED_ADDRS = 16
export const MAX_LISTED = 20_000

const fedCheck = new Checker('ERR_MALFORMED_FRAME', 'federation body')
const MULTIADDR = /^\/[\x21-\x7e]{1,255}$/
const SECRET = /^[A-Za-z0-9_-]{43}$/

const text = (o: Record<string, unknown>, field: string, max: number): string => {
  const v = fedCheck.str(o, field, { min: 0, max })
  if (CONTROL_CHARS.test(v)) fedCheck.fail(`${field} has control characters`)
  return v
}
const addrs = (o: Record<string, unknown>): string[] =>
  fedCheck.arr(o, 'addrs', { max: MAX_FED_ADDRS }).map(a => fedCheck.str({ a }, 'a', { max: 256, pattern: MULTIADDR }))

/** instances of one relay told at once, at most (its other processes on one shared store) */
export const MAX_FED_INSTANCES = 16

/**
 * `instances` (optional: absent from a relay of one instance, and from older
 * relays): the relay's instances on its shared store, each `{ peerId, addrs }`.
 */
function instances (o: Record<string, unknown>, check: Checker = fedCheck): FedInstance[] | undefined {
  if (o.instances === undefined) return undefined
  return check.arr(o, 'instances', { max: MAX_FED_INSTANCES }).map((v): FedInstance => {
    const i = check.obj(v, 'instance')
    return {
      peerId: check.str(i, 'peerId', { max: 60, pattern: PEER_ID }),
      addrs: check.arr(i, 'addrs', { max: MAX_FED_ADDRS }).map(a => check.str({ a }, 'a', { max: 256, pattern: MULTIADDR }))
    }
  })
}

export function parsePair (value: unknown): { secret: string, name: string, addrs: string[], instances?: FedInstance[] } {
  const o = fedCheck.obj(value, 'body')
  const more = instances(o)
  return {
    secret: fedCheck.str(o, 'secret', { max: 43, pattern: SECRET }), name: text(o, 'name', 100), addrs: addrs(o),
    ...(more !== undefined ? { instances: more } : {})
  }
}

export function parsePairAnswer (value: unknown): { name: string, addrs: string[], instances?: FedInstance[] } {
  const o = fedCheck.obj(value, 'body')
  const more = instances(o)
  return { name: text(o, 'name', 100), addrs: addrs(o), ...(more !== undefined ? { instances: more } : {}) }
}

/** account records per forwarded batch, at most (one per author: their signed homes) */
export const MAX_FED_ACCOUNTS = MAX_FED_BATCH
/**
 * bytes of one forward's account records, envelopes and `to` lists together, at most (frames are limited to
 * 1 MiB; the rest is room for the JSON around them): the batch is cut before the item that would pass it
 */
export const FED_FORWARD_BYTES = 768 * 1024

export function parseForward (value: unknown): { batch: string, items: FedInboundItem[], accounts: AccountRecord[] } {
  const o = fedCheck.obj(value, 'body')
  // the authors' signed account records (their `home` op names the relay that may forward their mail)
  const accounts = o.accounts === undefined ? [] : fedCheck.arr(o, 'accounts', { max: MAX_FED_ACCOUNTS }).map(a => parseAccountRecord(a))
  const batch = fedCheck.str(o, 'batch', { max: 64, pattern: /^[0-9-]+$/ })
  const items = fedCheck.arr(o, 'items', { min: 1, max: MAX_FED_BATCH }).map((v): FedInboundItem => {
    const i = fedCheck.obj(v, 'item')
    const envelope = parseEnvelope(i.envelope, { taken: true })
    const to = fedCheck.arr(i, 'to', { min: 1, max: MAX_RECIPIENTS }).map(t => fedCheck.str({ t }, 't', { max: 60, pattern: PEER_ID }))
    return { seq: fedCheck.int(i, 'seq', { min: 1, max: MAX_SEQ }), to: [...new Set(to)], envelope, bytes: JSON.stringify(envelope).length }
  })
  return { batch, items, accounts }
}

export function parseFedReceipt (value: unknown): FedReceipt {
  const o = fedCheck.obj(value, 'body')
  const unknown = fedCheck.arr(o, 'unknown', { max: MAX_FED_BATCH * MAX_RECIPIENTS }).map((u): [number, string] => {
    const pair = u as unknown[]
    if (!Array.isArray(pair) || pair.length !== 2) fedCheck.fail('unknown must hold [seq, peer ID] pairs')
    return [fedCheck.int({ s: pair[0] }, 's', { min: 1, max: MAX_SEQ }), fedCheck.str({ p: pair[1] }, 'p', { max: 60, pattern: PEER_ID })]
  })
  // items refused whole, each with its typed reason ([seq, code]); absent from older relays
  const refused = o.refused === undefined ? undefined : fedCheck.arr(o, 'refused', { max: MAX_FED_BATCH }).map((u): [number, string] => {
    const pair = u as unknown[]
    if (!Array.isArray(pair) || pair.length !== 2) fedCheck.fail('refused must hold [seq, code] pairs')
    return [fedCheck.int({ s: pair[0] }, 's', { min: 1, max: MAX_SEQ }), fedCheck.str({ c: pair[1] }, 'c', { max: 40, pattern: /^ERR_[A-Z_]+$/ })]
  })
  return { lastSeq: fedCheck.int(o, 'lastSeq', { min: 0, max: MAX_SEQ }), stored: fedCheck.int(o, 'stored', { min: 0,
    max: MAX_FED_BATCH * MAX_RECIPIENTS }), unknown, full: fedCheck.bool(o, 'full'), ...(refused !== undefined ? { refused } : {}) }
}

export interface FedPerson { peerId: string, name: string, department?: string }
/** A listed person as a relay tells it: with the signed account record that names that relay as home (checked by the asker). */
export interface FedListed extends FedPerson { acct?: AccountRecord }
export function parseFedDirectory (value: unknown): { name: string, people: FedListed[], instances?: FedInstance[] } {
  const o = fedCheck.obj(value, 'body')
  const people = fedCheck.arr(o, 'people', { max: MAX_LISTED }).map((v): FedListed => {
    const p = fedCheck.obj(v, 'person')
    const department = p.department === undefined ? undefined : text(p, 'department', 200)
    return { peerId: fedCheck.str(p, 'peerId', { max: 60, pattern: PEER_ID }), name: text(p, 'name', 100),
      ...(department !== undefined && department !== '' ? { department } : {}), ...(p.acct !== undefined ? { acct: parseAccountRecord(p.acct) } : {}) }
  })
  const more = instances(o)
  return { name: text(o, 'name', 100), people, ...(more !== undefined ? { instances: more } : {}) }
}

// ---- the pairing token ---------------------------------------------------------

/** What `federation invite` prints: the inviting relay, how to reach it, a one-time secret, until when. */
export interface PairingToken { v: 1, peerId: string, addrs: string[], secret: string, exp: number, instances?: FedInstance[] }
const TOKEN_PREFIX = 'parley-fed:'

/** a new 256-bit secret (base64url): high-entropy, so it needs no PAKE (docs/SECURITY.md) */
export const newPairingSecret = (): string => b64(randomBytes(32))
export const secretHash = (secret: string): string => createHash('sha256').update(secret).digest('base64url')

export function encodePairingToken (t: PairingToken): string {
  return TOKEN_PREFIX + Buffer.from(JSON.stringify(t)).toString('base64url')
}

export function parsePairingToken (token: string): PairingToken {
  const bad = (why: string): never => { throw new ParleyError('ERR_FED_PAIRING',
    `this is not a pairing token from \`parley-relay federation invite\` (${why})`) }
  const s = token.trim()
  if (!s.startsWith(TOKEN_PREFIX)) bad('it should start with parley-fed:')
  let v: unknown
  try { v = JSON.parse(Buffer.from(s.slice(TOKEN_PREFIX.length), 'base64url').toString('utf8')) } catch { return bad('it is damaged: copy it whole') }
  const check = new Checker('ERR_FED_PAIRING', 'pairing token')
  const o = check.obj(v, 'token')
  check.literal(o, 'v', [1])
  const t: PairingToken = {
    v: 1,
    peerId: check.str(o, 'peerId', { max: 60, pattern: PEER_ID }),
    addrs: check.arr(o, 'addrs', { min: 1, max: MAX_FED_ADDRS }).map(a => check.str({ a }, 'a', { max: 256, pattern: MULTIADDR })),
    secret: check.str(o, 'secret', { max: 43, pattern: SECRET }),
    exp: check.int(o, 'exp', { min: 0, max: Number.MAX_SAFE_INTEGER })
  }
  const more = instances(o, check)
  return more !== undefined ? { ...t, instances: more } : t
}
