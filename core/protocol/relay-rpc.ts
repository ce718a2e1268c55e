/**
 * The relay RPC (RELAY_PROTOCOL): admission and the mailbox, peer <-> relay,
 * and the parsers of those bodies. A relay channel accepts only
 * RELAY_RPC_METHODS. Cursors are the relay's, increasing, per recipient in
 * deposit order.
 */
import { ParleyError } from '../errors.js'
import { Checker, CONTROL_CHARS, PEER_ID } from './validate.js'
import { MAX_RECIPIENTS, MAX_SEQ, parseEnvelope, type Envelope, type PeerIdString } from './envelope.js'

/** Peer <-> relay: admission and the mailbox. */
export const RELAY_PROTOCOL = '/parley/relay/1.0.0'

/**
 * Relay methods (on RELAY_PROTOCOL): redeem an invite, deposit an envelope
 * for an offline recipient, fetch own mail after a cursor, ack up to a cursor, status.
 * One the relay calls on the node's open channel: `mailWaiting` (body {}):
 * mail was just kept for you (on this relay instance or another sharing its
 * store), fetch now instead of at the next poll. Only to nodes that asked
 * with `relayStatus { wake: true }` (older nodes know no such method).
 */
export type RelayRpcMethod = 'redeem' | 'deposit' | 'fetch' | 'ackMail' | 'relayStatus' | 'directory' | 'mailWaiting' | 'publish' | 'offices'
  | 'receipt' | 'notices'
/**
 * Federation receipts and bounces (core/protocol/fed-notice.ts): `receipt` (SignedReceipt) -> {}: the node's
 * receipt for an author of another office, forwarded there; `notices { ack? }` -> { items: Notice[] }: what the
 * relay keeps for this device. Called only on a relay whose relayStatus said `notices: true`.
 */
export const RELAY_RPC_METHODS: readonly RelayRpcMethod[] = ['redeem', 'deposit', 'fetch', 'ackMail', 'relayStatus', 'directory', 'mailWaiting', 'publish',
  'offices', 'receipt', 'notices']

export const MAX_FETCH_ITEMS = 500
export const INVITE_TOKEN = /^[A-Za-z0-9_-]{16,128}$/

/** `office` (federation): the name of the other office whose relay forwarded it here */
export interface MailItem { cursor: number, from: PeerIdString, envelope: Envelope, office?: string }
/** `notices` (federation): as in RelayStatus, said again on every fetch (pairing or the policy may change while connected) */
/**
 * `down` (federation, issue 12): the paired relays of other offices this relay cannot reach now, since when
 * and why; mail for their users waits in its queue (the "queued: office B unreachable" mark).
 */
export interface OfficeDown { office: string, relay: PeerIdString, since: number, error?: string }
export interface FetchResult { items: MailItem[], more: boolean, notices?: boolean, down?: OfficeDown[] }
/** paired relays named in `down`, at most */
export const MAX_OFFICES_DOWN = 64
export interface DepositResult { status: 'stored' | 'duplicate' }
/** `notices`: the relay keeps federation receipts and bounces (`receipt`, `notices`) */
/** `refused`: why the relay did not admit the caller by its account (in words), when it judged the record */
export interface RelayStatus { admitted: boolean, queued: number, notices?: boolean, refused?: string }

const relayCheck = new Checker('ERR_MALFORMED_FRAME', 'relay body')

export function parseRedeem (value: unknown): { token: string } {
  const o = relayCheck.obj(value, 'body')
  return { token: relayCheck.str(o, 'token', { max: 128, pattern: INVITE_TOKEN }) }
}

/**
 * `to`: the recipients the relay should keep it for (one deposit fans out to all of them).
 * `home` (federation, optional): recipient -> the peer ID of that recipient's home relay,
 * for recipients of another office: the relay forwards their copies to that relay when it is paired.
 */
export function parseDeposit (value: unknown): { to: PeerIdString[], envelope: Envelope, home: Record<PeerIdString, PeerIdString> } {
  const o = relayCheck.obj(value, 'body')
  const to = relayCheck.arr(o, 'to', { min: 1, max: MAX_RECIPIENTS }).map(t => relayCheck.str({ t }, 't', { max: 60, pattern: PEER_ID }))
  const home: Record<PeerIdString, PeerIdString> = {}
  if (o.home !== undefined) {
    const h = relayCheck.obj(o.home, 'home')
    for (const [k, v] of Object.entries(h)) {
      if (!PEER_ID.test(k) || !to.includes(k)) relayCheck.fail('home names a recipient that is not in to')
      home[k] = relayCheck.str({ v }, 'v', { max: 60, pattern: PEER_ID })
    }
  }
  return { to: [...new Set(to)], envelope: parseEnvelope(o.envelope, { taken: true }), home }
}

/** `publish` (federation directory): list me in the paired relays' directories (`listed: false` withdraws). */
export interface PublishRequest { listed: boolean, name: string, department?: string }
export function parsePublish (value: unknown): PublishRequest {
  const o = relayCheck.obj(value, 'body')
  const listed = relayCheck.bool(o, 'listed')
  if (!listed) return { listed, name: '' }
  const name = relayCheck.str(o, 'name', { max: 100 })
  const department = o.department === undefined || o.department === '' ? undefined : relayCheck.str(o, 'department', { max: 200 })
  if (CONTROL_CHARS.test(name) || (department !== undefined && CONTROL_CHARS.test(department))) {
    relayCheck.fail('name and department must not hold control characters')
  }
  return { listed, name, ...(department !== undefined ? { department } : {}) }
}

/** `offices { q }`: people of the other offices (paired relays) who chose to be listed. */
export interface OfficePerson { peerId: PeerIdString, name: string, department?: string, office: string, relay: PeerIdString }
export function parseOffices (value: unknown): { people: OfficePerson[] } {
  const o = relayCheck.obj(value, 'body')
  const people = relayCheck.arr(o, 'people', { max: 500 }).map((v): OfficePerson => {
    const p = relayCheck.obj(v, 'person')
    const department = p.department === undefined ? undefined : relayCheck.str(p, 'department', { min: 0, max: 200 })
    return {
      peerId: relayCheck.str(p, 'peerId', { max: 60, pattern: PEER_ID }),
      name: relayCheck.str(p, 'name', { max: 100 }),
      ...(department !== undefined ? { department } : {}),
      office: relayCheck.str(p, 'office', { min: 0, max: 100 }),
      relay: relayCheck.str(p, 'relay', { max: 60, pattern: PEER_ID })
    }
  })
  return { people }
}

/**
 * `full`: recipients refused for lack of room (no copy kept for them); `shareFull`: those of them
 * refused because the sender's share of their mailbox is used up. Both absent from older relays.
 */
export interface DepositAnswer {
  status: 'stored' | 'duplicate', stored: number, unknown: PeerIdString[], full: PeerIdString[], shareFull?: PeerIdString[]
  /** federation: recipients whose copies were queued (durably) for their home relay in another office */
  forwarded?: PeerIdString[]
  /** federation: recipient -> the name of the other office its copy was queued for */
  offices?: Record<PeerIdString, string>
}
export function parseDepositAnswer (value: unknown): DepositAnswer {
  const o = relayCheck.obj(value, 'body')
  return {
    status: relayCheck.literal(o, 'status', ['stored', 'duplicate']),
    stored: relayCheck.int(o, 'stored', { min: 0, max: MAX_RECIPIENTS }),
    unknown: relayCheck.arr(o, 'unknown', { max: MAX_RECIPIENTS }).map(t => relayCheck.str({ t }, 't', { max: 60, pattern: PEER_ID })),
    full: o.full === undefined ? [] : relayCheck.arr(o, 'full', { max: MAX_RECIPIENTS }).map(t => relayCheck.str({ t }, 't', { max: 60, pattern: PEER_ID })),
    shareFull: o.shareFull === undefined
      ? []
      : relayCheck.arr(o, 'shareFull', { max: MAX_RECIPIENTS }).map(t => relayCheck.str({ t }, 't', { max: 60, pattern: PEER_ID })),
    ...(o.forwarded === undefined
      ? {}
      : { forwarded: relayCheck.arr(o, 'forwarded', { max: MAX_RECIPIENTS }).map(t => relayCheck.str({ t }, 't', { max: 60, pattern: PEER_ID })) }),
    ...(o.offices === undefined ? {} : { offices: officeNames(o.offices) })
  }
}

/** recipient -> office name, as a relay names them (federation) */
function officeNames (value: unknown): Record<PeerIdString, string> {
  const h = relayCheck.obj(value, 'offices')
  const out: Record<PeerIdString, string> = {}
  for (const [k, v] of Object.entries(h).slice(0, MAX_RECIPIENTS)) {
    if (!PEER_ID.test(k)) relayCheck.fail('offices names something that is not a peer ID')
    out[k] = relayCheck.str({ v }, 'v', { min: 0, max: 100 })
  }
  return out
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
    return {
      cursor: relayCheck.int(i, 'cursor', { min: 1, max: MAX_SEQ }),
      from: relayCheck.str(i, 'from', { max: 60, pattern: PEER_ID }),
      envelope: parseEnvelope(i.envelope, { taken: true }),
      ...(i.office === undefined ? {} : { office: relayCheck.str(i, 'office', { min: 0, max: 100 }) })
    }
  })
  const down = o.down === undefined ? undefined : relayCheck.arr(o, 'down', { max: MAX_OFFICES_DOWN }).map((v): OfficeDown => {
    const d = relayCheck.obj(v, 'down')
    const error = d.error === undefined ? undefined : relayCheck.str(d, 'error', { min: 0, max: 300 })
    return { office: relayCheck.str(d, 'office', { min: 0, max: 100 }), relay: relayCheck.str(d, 'relay', { max: 60, pattern: PEER_ID }),
      since: relayCheck.int(d, 'since', { min: 0, max: 2 ** 50 }), ...(error !== undefined ? { error } : {}) }
  })
  return { items, more: relayCheck.bool(o, 'more'), ...(o.notices === true ? { notices: true } : {}), ...(down !== undefined ? { down } : {}) }
}

export function parseRelayStatus (value: unknown): RelayStatus {
  const o = relayCheck.obj(value, 'body')
  return {
    admitted: relayCheck.bool(o, 'admitted'),
    queued: relayCheck.int(o, 'queued', { min: 0, max: MAX_SEQ }),
    ...(o.notices === true ? { notices: true } : {}),
    ...(typeof o.refused === 'string' ? { refused: o.refused.slice(0, 300) } : {})
  }
}
