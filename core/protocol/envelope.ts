/**
 * The envelope contract: the one sealed format for every path (direct, relay,
 * mailbox, sync), the group ops and the signed profile inside it, and the
 * conversation ids. Every inbound value passes a `parseXxx` function here
 * before anything uses it. The RPCs that carry envelopes: peer-rpc.ts and relay-rpc.ts.
 */
import { ParleyError, type ErrorCode } from '../errors.js'
import { B64URL, CONTROL_CHARS, Checker, MSG_ID, PEER_ID } from './validate.js'
import { displayName, displayNameProblem } from './names.js'
import { MAX_NAME_CHARS, MAX_QUOTE_CHARS, MAX_TEXT_CHARS } from './limits.js'
import { parseAccountRecord, type AccountRecord } from './account.js'
import { parseFileManifest, type FileManifest } from './file-manifest.js'
import { parseSlotTaken, type SlotTaken } from './slot-notice.js'

export { MAX_NAME_CHARS, MAX_QUOTE_CHARS, MAX_TEXT_CHARS }

export const PROTOCOL_VERSION = 1

/**
 * Recipients of one envelope, and so members of a group. Bounded by the
 * frame: each key wrap is ~160 bytes of JSON, so 1000 of them (~160 KB) plus
 * the largest ciphertext (MAX_CT_CHARS, ~128 KB) stay well inside a 1 MiB
 * frame and a relay fetch page (512 KiB); sealing costs one X25519 per member.
 * @default 1000
 */
export const MAX_RECIPIENTS = 1000
/** base64url of the sealed body: JSON may escape each character to 6 bytes (\u0001), plus a reply's quote, the JSON frame and the 16-byte tag */
export const MAX_CT_CHARS = Math.ceil((6 * (MAX_TEXT_CHARS + 2 * MAX_QUOTE_CHARS) + 256) * 4 / 3)
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
  /**
   * the author's account record, beside the envelope and outside its signature (its ops are signed by the
   * account key): the certificate chain that says which account the author device belongs to. Absent for
   * a one-device account (author = account) and for envelopes from before accounts.
   */
  acct?: AccountRecord
  /**
   * a "slot taken" notice (slot-notice.ts), beside the envelope and outside its signature: a recipient gives the
   * author's own envelope back through the relay. Only the relay RPC and federation carry it (parseEnvelope's
   * `taken` option); a direct delivery drops it.
   */
  taken?: SlotTaken
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
/** A reply carries the start of the message it answers, so it reads right even where that message is not loaded. */
export interface Quote { id: string, author: PeerIdString, text: string }
/** An edit (the body's text replaces the message's) or a recall of the author's own message `id`. */
export interface MessageChange { type: 'edit' | 'recall', id: string }

/** `file`: a file message's manifest (file-manifest.ts); its text is the file's name */
export interface Body { text: string, op?: GroupOp, reply?: Quote, change?: MessageChange, file?: FileManifest }

/** A display name, signed by the device key so it cannot be forged by the network. */
export interface Profile {
  v: 1
  peerId: PeerIdString
  name: string
  /** author's wall clock when the profile was made, ms; newer wins */
  updatedAt: number
  sig: string
}

/** Refusals of an envelope that no retry can change: the sender marks it failed, a mailbox drops it. */
export const PERMANENT_REFUSAL_CODES = [
  'ERR_INVALID_ENVELOPE', 'ERR_BAD_SIGNATURE', 'ERR_NOT_A_RECIPIENT', 'ERR_DECRYPT_FAILED',
  'ERR_NOT_A_MEMBER', 'ERR_SEQ_CONFLICT', 'ERR_ID_CONFLICT'
] as const satisfies readonly ErrorCode[]
/** the codes, as a type: the UI's catalogs are keyed by it (a new refusal without words is a type error) */
export type PermanentRefusal = typeof PERMANENT_REFUSAL_CODES[number]
export const PERMANENT_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(PERMANENT_REFUSAL_CODES)

/** Is `code` (a remote end's answer, so any string) one of PERMANENT_REFUSALS? */
export const isPermanentRefusal = (code: string | undefined): code is ErrorCode =>
  code !== undefined && (PERMANENT_REFUSALS as ReadonlySet<string>).has(code)

const envCheck = new Checker('ERR_INVALID_ENVELOPE', 'envelope')
const profileCheck = new Checker('ERR_INVALID_ENVELOPE', 'profile')

export const DM_CONV_ID = /^dm:12D3KooW[1-9A-HJ-NP-Za-km-z]{44,46}:12D3KooW[1-9A-HJ-NP-Za-km-z]{44,46}$/
/** group conversations: `g:` and 16 random bytes, base64url */
export const GROUP_CONV_ID = /^g:[A-Za-z0-9_-]{22}$/
export const CONV_ID = new RegExp(`(${DM_CONV_ID.source})|(${GROUP_CONV_ID.source})`)
export const isGroupConv = (conv: string): boolean => GROUP_CONV_ID.test(conv)
export { MSG_ID }

export function dmConversationId (a: PeerIdString, b: PeerIdString): string {
  return a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`
}

/** Members of a conversation, derived from its id. */
/** Members of a direct conversation (groups: see GroupState). */
export function conversationMembers (conv: string): PeerIdString[] {
  if (!DM_CONV_ID.test(conv)) throw new ParleyError('ERR_INVALID_ARGUMENT', `not a conversation id: ${conv.slice(0, 80)}`)
  return conv.split(':').slice(1)
}

/** `taken`: keep a "slot taken" notice beside it (the relay RPC and federation); dropped otherwise. */
export function parseEnvelope (value: unknown, options: { taken?: boolean } = {}): Envelope {
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
    sig: envCheck.str(o, 'sig', { min: 86, max: 86, pattern: B64URL }),
    ...(o.acct !== undefined ? { acct: parseAccountRecord(o.acct) } : {}),
    ...(options.taken === true && o.taken !== undefined ? { taken: parseSlotTaken(o.taken) } : {})
  }
}

export function parseBody (value: unknown, kind: EnvelopeKind = 'text'): Body {
  const c = new Checker('ERR_INVALID_ENVELOPE', 'body')
  const o = c.obj(value)
  if (kind !== 'text') return { text: c.str(o, 'text', { min: 0, max: 500 }), op: parseGroupOp(o.op) }
  const reply = o.reply === undefined ? undefined : parseQuote(o.reply, c)
  const change = o.change === undefined ? undefined : parseChange(o.change, c)
  if (reply !== undefined && change !== undefined) c.fail('a message is a reply or a change, not both')
  const file = o.file === undefined ? undefined : parseFileManifest(o.file)
  if (file !== undefined && change !== undefined) c.fail('a file message cannot be a change')
  // a recall carries no text; everything else some
  // c.str measures UTF-16 units, as textLength (limits.ts) does for the messenger and the composer
  const text = c.str(o, 'text', { min: change?.type === 'recall' ? 0 : 1, max: change?.type === 'recall' ? 0 : MAX_TEXT_CHARS })
  return { text, ...(reply !== undefined ? { reply } : {}), ...(change !== undefined ? { change } : {}), ...(file !== undefined ? { file } : {}) }
}

function parseQuote (value: unknown, c: Checker): Quote {
  const o = c.obj(value, 'reply')
  return {
    id: c.str(o, 'id', { max: 22, pattern: MSG_ID }),
    author: c.str(o, 'author', { max: 60, pattern: PEER_ID }),
    text: c.str(o, 'text', { min: 0, max: MAX_QUOTE_CHARS * 2 })
  }
}

function parseChange (value: unknown, c: Checker): MessageChange {
  const o = c.obj(value, 'change')
  return { type: c.literal(o, 'type', ['edit', 'recall']), id: c.str(o, 'id', { max: 22, pattern: MSG_ID }) }
}

/** The fields of a body that a stored message keeps besides its text. */
export const bodyFields = (b: Body): Pick<Body, 'op' | 'reply' | 'change' | 'file'> => ({
  ...(b.op !== undefined ? { op: b.op } : {}),
  ...(b.reply !== undefined ? { reply: b.reply } : {}),
  ...(b.change !== undefined ? { change: b.change } : {}),
  ...(b.file !== undefined ? { file: b.file } : {})
})

/** A group op; its name is returned as NFKC (an op from before the NFKC rule may carry another form). */
export function parseGroupOp (value: unknown): GroupOp {
  const c = new Checker('ERR_INVALID_ENVELOPE', 'group op')
  const o = c.obj(value, 'op')
  const type = c.literal(o, 'type', ['create', 'add', 'remove', 'rename', 'leave'])
  switch (type) {
    case 'create': {
      const members = c.arr(o, 'members', { min: 1, max: MAX_GROUP_MEMBERS }).map(m => c.str({ m }, 'm', { max: 60, pattern: PEER_ID }))
      return { type, name: displayName(parseDisplayName(o.name, c)), members: [...new Set(members)] }
    }
    case 'add': {
      const member = c.str(o, 'member', { max: 60, pattern: PEER_ID })
      if (o.snapshot === undefined) return { type, member }
      const s = c.obj(o.snapshot, 'snapshot')
      const members = c.arr(s, 'members', { min: 1, max: MAX_GROUP_MEMBERS }).map(m => c.str({ m }, 'm', { max: 60, pattern: PEER_ID }))
      const admin = c.str(s, 'admin', { max: 60, pattern: PEER_ID })
      return { type, member, snapshot: { name: displayName(parseDisplayName(s.name, c)), admin, members: [...new Set(members)] } }
    }
    case 'remove': return { type, member: c.str(o, 'member', { max: 60, pattern: PEER_ID }) }
    case 'rename': return { type, name: displayName(parseDisplayName(o.name, c)) }
    case 'leave': return { type }
  }
}

/** what a person shows besides online: away (idle) or do not disturb */
export type PresenceStatus = 'active' | 'away' | 'dnd'
export const PRESENCE_STATUSES: readonly PresenceStatus[] = ['active', 'away', 'dnd']

/** The `status` sent beside a profile; a peer that sends none (or one we do not know) is active. */
export function parsePresenceStatus (value: unknown): PresenceStatus {
  const status = typeof value === 'object' && value !== null ? (value as { status?: unknown }).status : undefined
  return PRESENCE_STATUSES.find(s => s === status) ?? 'active'
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
  // invisible characters, lone surrogates (see names.ts); the name is returned as given, so a signature
  // over it still verifies: callers show displayName(name)
  const problem = displayNameProblem(name)
  if (problem !== null) checker.fail(problem)
  return name
}
