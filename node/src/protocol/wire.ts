/**
 * The one typed contract for everything Parley peers say to each other:
 * protocol IDs, the envelope, the signed profile and the RPC frames. Every
 * inbound value passes a `parseXxx` function here before anything uses it.
 */
import { ParleyError } from '../errors.js'
import { B64URL, CONTROL_CHARS, Checker, PEER_ID, parseJson, type Obj } from './validate.js'

export const PROTOCOL_VERSION = 1
/** One bidirectional RPC protocol: deliver envelopes, exchange have-vectors, fetch profiles. */
export const MSG_PROTOCOL = '/parley/msg/1.0.0'
/** Peer <-> relay: admission and the mailbox. */
export const RELAY_PROTOCOL = '/parley/relay/1.0.0'

/** @default 16000 characters */
export const MAX_TEXT_CHARS = 16_000
/** @default 64 characters */
export const MAX_NAME_CHARS = 64
export const MAX_RECIPIENTS = 256
/** base64url of the sealed body: JSON may escape each character to 6 bytes (\u0001), plus the JSON frame and the 16-byte tag */
export const MAX_CT_CHARS = Math.ceil((6 * MAX_TEXT_CHARS + 64) * 4 / 3)
export const MAX_SEQ = Number.MAX_SAFE_INTEGER

export type PeerIdString = string

/** Hybrid logical clock timestamp: wall milliseconds plus a logical counter. */
export interface Hlc { w: number, c: number }

export interface KeyWrap {
  /** recipient peer ID */
  to: PeerIdString
  /** content key wrapped for this recipient (ciphertext + tag, base64url) */
  wk: string
}

/**
 * The single envelope format for every path (direct, relay, mailbox, sync).
 * Signed by `author`; `ct` is readable only by the peers in `keys`.
 */
export interface Envelope {
  v: 1
  /** author-chosen random id, 16 bytes base64url */
  id: string
  /** conversation id: `dm:<peerA>:<peerB>` (sorted) */
  conv: string
  author: PeerIdString
  /** per-author, per-conversation sequence number, starting at 1 */
  seq: number
  hlc: Hlc
  /** text: a chat message; groupOp: a signed membership change of a group conversation */
  kind: EnvelopeKind
  /** ephemeral X25519 public key (base64url) */
  epk: string
  keys: KeyWrap[]
  /** ChaCha20-Poly1305 nonce for the body (base64url, 12 bytes) */
  nonce: string
  /** encrypted body (base64url) */
  ct: string
  /** Ed25519 signature by the author over all other fields (base64url) */
  sig: string
}

export type EnvelopeKind = 'text' | 'groupOp'

/**
 * Group membership operations. The group's state is the fold of all its ops
 * in display order (HLC, then id), so every member that holds the same ops
 * computes the same members. create/add/remove/rename are valid from the
 * group's admin (the creator); leave from any member, about itself.
 */
export type GroupOp =
  | { type: 'create', name: string, members: PeerIdString[] }
  /** `snapshot`: the group as it stands, so a new member (who cannot read the older ops) knows it */
  | { type: 'add', member: PeerIdString, snapshot?: { name: string, admin: PeerIdString, members: PeerIdString[] } }
  | { type: 'remove', member: PeerIdString }
  | { type: 'rename', name: string }
  | { type: 'leave' }

export const MAX_GROUP_MEMBERS = MAX_RECIPIENTS

/** The plaintext inside an envelope: text for kind text, op for kind groupOp. */
export interface Body { text: string, op?: GroupOp }

/** A display name, signed by the device key so it cannot be forged by the network. */
export interface Profile {
  v: 1
  peerId: PeerIdString
  name: string
  /** author's wall clock when the profile was made, ms; newer wins */
  updatedAt: number
  sig: string
}

/**
 * deliver: store this envelope (answer after a durable write);
 * getHave: your have-vector for a conversation (to push what you lack);
 * getProfile: your signed profile; receipt: these messages of mine were shown to you.
 */
export type PeerRpcMethod = 'deliver' | 'getHave' | 'getProfile' | 'announceProfile' | 'receipt' | 'typing'
/**
 * Relay methods (on RELAY_PROTOCOL): redeem an invite, deposit an envelope
 * for an offline recipient, fetch own mail after a cursor, ack up to a cursor, status.
 */
export type RelayRpcMethod = 'redeem' | 'deposit' | 'fetch' | 'ackMail' | 'relayStatus'
export type RpcMethod = PeerRpcMethod | RelayRpcMethod
export const RPC_METHODS: readonly RpcMethod[] = ['deliver', 'getHave', 'getProfile', 'announceProfile', 'receipt', 'typing', 'redeem', 'deposit', 'fetch', 'ackMail', 'relayStatus']
export const MAX_RECEIPT_IDS = 1000
/** Refusals of an envelope that no retry can change: the sender marks it failed, a mailbox drops it. */
export const PERMANENT_REFUSALS: ReadonlySet<string> = new Set(['ERR_INVALID_ENVELOPE', 'ERR_BAD_SIGNATURE', 'ERR_NOT_A_RECIPIENT', 'ERR_DECRYPT_FAILED', 'ERR_NOT_A_MEMBER', 'ERR_SEQ_CONFLICT', 'ERR_ID_CONFLICT'])

/** Highest contiguous sequence number stored, per author, for one conversation. */
export type HaveVector = Record<PeerIdString, number>

export interface RpcRequest { v: 1, t: 'req', rid: number, m: RpcMethod, body: unknown }
export interface RpcOk { v: 1, t: 'res', rid: number, ok: true, body: unknown }
export interface RpcErr { v: 1, t: 'res', rid: number, ok: false, code: string, message: string }
export type RpcFrame = RpcRequest | RpcOk | RpcErr

export interface DeliverResult { status: 'stored' | 'duplicate' }

const frameCheck = new Checker('ERR_MALFORMED_FRAME', 'frame')
const envCheck = new Checker('ERR_INVALID_ENVELOPE', 'envelope')
const profileCheck = new Checker('ERR_INVALID_ENVELOPE', 'profile')

export const DM_CONV_ID = /^dm:12D3KooW[1-9A-HJ-NP-Za-km-z]{44,46}:12D3KooW[1-9A-HJ-NP-Za-km-z]{44,46}$/
/** group conversations: `g:` and 16 random bytes, base64url */
export const GROUP_CONV_ID = /^g:[A-Za-z0-9_-]{22}$/
export const CONV_ID = new RegExp(`(${DM_CONV_ID.source})|(${GROUP_CONV_ID.source})`)
export const isGroupConv = (conv: string): boolean => GROUP_CONV_ID.test(conv)
const MSG_ID = /^[A-Za-z0-9_-]{22}$/

export function dmConversationId (a: PeerIdString, b: PeerIdString): string {
  return a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`
}

/** Members of a conversation, derived from its id. */
/** Members of a direct conversation (groups: see GroupState). */
export function conversationMembers (conv: string): PeerIdString[] {
  if (!DM_CONV_ID.test(conv)) throw new ParleyError('ERR_INVALID_ARGUMENT', `not a conversation id: ${conv.slice(0, 80)}`)
  return conv.split(':').slice(1)
}

export function parseRpcFrame (bytes: Uint8Array): RpcFrame {
  const o = frameCheck.obj(parseJson(bytes, 'ERR_MALFORMED_FRAME', 'frame'))
  frameCheck.literal(o, 'v', [1])
  const t = frameCheck.literal(o, 't', ['req', 'res'])
  const rid = frameCheck.int(o, 'rid', { min: 0, max: 2 ** 32 })
  if (t === 'req') {
    const m = frameCheck.literal(o, 'm', RPC_METHODS)
    return { v: 1, t, rid, m, body: o.body }
  }
  if (o.ok === true) return { v: 1, t, rid, ok: true, body: o.body }
  if (o.ok === false) {
    return { v: 1, t, rid, ok: false, code: frameCheck.str(o, 'code', { max: 64 }), message: frameCheck.str(o, 'message', { min: 0, max: 1000 }) }
  }
  return frameCheck.fail('ok must be a boolean')
}

export function parseEnvelope (value: unknown): Envelope {
  const o = envCheck.obj(value)
  envCheck.literal(o, 'v', [1])
  const hlc = envCheck.obj(o.hlc, 'hlc')
  const keys = envCheck.arr(o, 'keys', { min: 1, max: MAX_RECIPIENTS }).map((k): KeyWrap => {
    const ko = envCheck.obj(k, 'keys[]')
    return { to: envCheck.str(ko, 'to', { max: 60, pattern: PEER_ID }), wk: envCheck.str(ko, 'wk', { max: 100, pattern: B64URL }) }
  })
  return {
    v: 1,
    id: envCheck.str(o, 'id', { max: 22, pattern: MSG_ID }),
    conv: envCheck.str(o, 'conv', { max: 200, pattern: CONV_ID }),
    author: envCheck.str(o, 'author', { max: 60, pattern: PEER_ID }),
    seq: envCheck.int(o, 'seq', { min: 1, max: MAX_SEQ }),
    hlc: { w: envCheck.int(hlc, 'w', { min: 0, max: 2 ** 50 }), c: envCheck.int(hlc, 'c', { min: 0, max: 2 ** 31 }) },
    kind: envCheck.literal(o, 'kind', ['text', 'groupOp']),
    epk: envCheck.str(o, 'epk', { max: 43, min: 43, pattern: B64URL }),
    keys,
    nonce: envCheck.str(o, 'nonce', { min: 16, max: 16, pattern: B64URL }),
    ct: envCheck.str(o, 'ct', { max: MAX_CT_CHARS, pattern: B64URL }),
    sig: envCheck.str(o, 'sig', { min: 86, max: 86, pattern: B64URL })
  }
}

export function parseBody (value: unknown, kind: EnvelopeKind = 'text'): Body {
  const c = new Checker('ERR_INVALID_ENVELOPE', 'body')
  const o = c.obj(value)
  if (kind === 'text') return { text: c.str(o, 'text', { max: MAX_TEXT_CHARS }) }
  return { text: c.str(o, 'text', { min: 0, max: 500 }), op: parseGroupOp(o.op) }
}

export function parseGroupOp (value: unknown): GroupOp {
  const c = new Checker('ERR_INVALID_ENVELOPE', 'group op')
  const o = c.obj(value, 'op')
  const type = c.literal(o, 'type', ['create', 'add', 'remove', 'rename', 'leave'])
  switch (type) {
    case 'create': {
      const members = c.arr(o, 'members', { min: 1, max: MAX_GROUP_MEMBERS }).map(m => c.str({ m }, 'm', { max: 60, pattern: PEER_ID }))
      return { type, name: parseDisplayName(o.name, c), members: [...new Set(members)] }
    }
    case 'add': {
      const member = c.str(o, 'member', { max: 60, pattern: PEER_ID })
      if (o.snapshot === undefined) return { type, member }
      const s = c.obj(o.snapshot, 'snapshot')
      const members = c.arr(s, 'members', { min: 1, max: MAX_GROUP_MEMBERS }).map(m => c.str({ m }, 'm', { max: 60, pattern: PEER_ID }))
      return { type, member, snapshot: { name: parseDisplayName(s.name, c), admin: c.str(s, 'admin', { max: 60, pattern: PEER_ID }), members: [...new Set(members)] } }
    }
    case 'remove': return { type, member: c.str(o, 'member', { max: 60, pattern: PEER_ID }) }
    case 'rename': return { type, name: parseDisplayName(o.name, c) }
    case 'leave': return { type }
  }
}

export function parseProfile (value: unknown): Profile {
  const o = profileCheck.obj(value)
  profileCheck.literal(o, 'v', [1])
  return {
    v: 1,
    peerId: profileCheck.str(o, 'peerId', { max: 60, pattern: PEER_ID }),
    name: parseDisplayName(o.name, profileCheck),
    updatedAt: profileCheck.int(o, 'updatedAt', { min: 0, max: 2 ** 50 }),
    sig: profileCheck.str(o, 'sig', { min: 86, max: 86, pattern: B64URL })
  }
}

export function parseDisplayName (value: unknown, checker = new Checker('ERR_INVALID_ARGUMENT', 'name')): string {
  const name = checker.str({ name: value }, 'name', { max: MAX_NAME_CHARS })
  if (CONTROL_CHARS.test(name) || /[\n\t]/.test(name) || name.trim() !== name) checker.fail('name must not contain control characters or surrounding spaces')
  return name
}

export function parseHaveRequest (value: unknown): { conv: string } {
  const o = frameCheck.obj(value, 'body')
  return { conv: frameCheck.str(o, 'conv', { max: 200, pattern: CONV_ID }) }
}

export function parseHaveVector (value: unknown): HaveVector {
  const o: Obj = frameCheck.obj(value, 'have')
  const out: HaveVector = {}
  const entries = Object.entries(o)
  if (entries.length > MAX_RECIPIENTS) frameCheck.fail('have vector too long')
  for (const [k, v] of entries) {
    if (!PEER_ID.test(k)) frameCheck.fail('have vector key is not a peer id')
    out[k] = frameCheck.int({ v }, 'v', { min: 0, max: MAX_SEQ })
  }
  return out
}

export function parseDeliverResult (value: unknown): DeliverResult {
  const o = frameCheck.obj(value, 'body')
  return { status: frameCheck.literal(o, 'status', ['stored', 'duplicate']) }
}

export function parseReceipt (value: unknown): { conv: string, ids: string[] } {
  const o = frameCheck.obj(value, 'body')
  const ids = frameCheck.arr(o, 'ids', { min: 1, max: MAX_RECEIPT_IDS }).map(id => frameCheck.str({ id }, 'id', { max: 22, pattern: MSG_ID }))
  return { conv: frameCheck.str(o, 'conv', { max: 200, pattern: CONV_ID }), ids }
}

/** Relay mailbox contract. Cursors are the relay's, increasing, per recipient in deposit order. */
export const MAX_FETCH_ITEMS = 500
export const INVITE_TOKEN = /^[A-Za-z0-9_-]{16,128}$/

export interface MailItem { cursor: number, from: PeerIdString, envelope: Envelope }
export interface FetchResult { items: MailItem[], more: boolean }
export interface DepositResult { status: 'stored' | 'duplicate' }
export interface RelayStatus { admitted: boolean, queued: number }

const relayCheck = new Checker('ERR_MALFORMED_FRAME', 'relay body')

export function parseRedeem (value: unknown): { token: string } {
  const o = relayCheck.obj(value, 'body')
  return { token: relayCheck.str(o, 'token', { max: 128, pattern: INVITE_TOKEN }) }
}

/** `to`: the recipients the relay should keep it for (one deposit fans out to all of them). */
export function parseDeposit (value: unknown): { to: PeerIdString[], envelope: Envelope } {
  const o = relayCheck.obj(value, 'body')
  const to = relayCheck.arr(o, 'to', { min: 1, max: MAX_RECIPIENTS }).map(t => relayCheck.str({ t }, 't', { max: 60, pattern: PEER_ID }))
  return { to: [...new Set(to)], envelope: parseEnvelope(o.envelope) }
}

/** `full`: recipients whose mailbox was full (no copy kept for them); absent from older relays. */
export interface DepositAnswer { status: 'stored' | 'duplicate', stored: number, unknown: PeerIdString[], full: PeerIdString[] }
export function parseDepositAnswer (value: unknown): DepositAnswer {
  const o = relayCheck.obj(value, 'body')
  return {
    status: relayCheck.literal(o, 'status', ['stored', 'duplicate']),
    stored: relayCheck.int(o, 'stored', { min: 0, max: MAX_RECIPIENTS }),
    unknown: relayCheck.arr(o, 'unknown', { max: MAX_RECIPIENTS }).map(t => relayCheck.str({ t }, 't', { max: 60, pattern: PEER_ID })),
    full: o.full === undefined ? [] : relayCheck.arr(o, 'full', { max: MAX_RECIPIENTS }).map(t => relayCheck.str({ t }, 't', { max: 60, pattern: PEER_ID }))
  }
}

export function parseFetch (value: unknown): { after: number, limit: number } {
  const o = relayCheck.obj(value, 'body')
  return { after: relayCheck.int(o, 'after', { min: 0, max: MAX_SEQ }), limit: relayCheck.int(o, 'limit', { min: 1, max: MAX_FETCH_ITEMS }) }
}

/**
 * `{ upTo }` deletes every item up to and including that cursor; `{ cursors }`
 * deletes exactly those (used when an earlier item is kept for a later retry).
 */
export type AckMail = { upTo: number } | { cursors: number[] }

export function parseAckMail (value: unknown): AckMail {
  const o = relayCheck.obj(value, 'body')
  if (o.cursors !== undefined) {
    if (o.upTo !== undefined) throw new ParleyError('ERR_MALFORMED_FRAME', 'relay body: give upTo or cursors, not both')
    return { cursors: relayCheck.arr(o, 'cursors', { min: 1, max: MAX_FETCH_ITEMS }).map(c => relayCheck.int({ c }, 'c', { min: 1, max: MAX_SEQ })) }
  }
  return { upTo: relayCheck.int(o, 'upTo', { min: 0, max: MAX_SEQ }) }
}

export function parseFetchResult (value: unknown): FetchResult {
  const o = relayCheck.obj(value, 'body')
  const items = relayCheck.arr(o, 'items', { max: MAX_FETCH_ITEMS }).map((v): MailItem => {
    const i = relayCheck.obj(v, 'item')
    return { cursor: relayCheck.int(i, 'cursor', { min: 1, max: MAX_SEQ }), from: relayCheck.str(i, 'from', { max: 60, pattern: PEER_ID }), envelope: parseEnvelope(i.envelope) }
  })
  return { items, more: relayCheck.bool(o, 'more') }
}

export function parseRelayStatus (value: unknown): RelayStatus {
  const o = relayCheck.obj(value, 'body')
  return { admitted: relayCheck.bool(o, 'admitted'), queued: relayCheck.int(o, 'queued', { min: 0, max: MAX_SEQ }) }
}

export function parseTyping (value: unknown): { conv: string } {
  const o = frameCheck.obj(value, 'body')
  return { conv: frameCheck.str(o, 'conv', { max: 200, pattern: CONV_ID }) }
}
