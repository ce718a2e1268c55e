/**
 * The relay RPC (RELAY_PROTOCOL): admission and the mailbox, peer <-> relay,
 * and the parsers of those bodies. A relay channel accepts only
 * RELAY_RPC_METHODS. Cursors are the relay's, increasing, per recipient in
 * deposit order.
 */
import { ParleyError } from '../errors.js'
import { Checker, PEER_ID } from './validate.js'
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
export type RelayRpcMethod = 'redeem' | 'deposit' | 'fetch' | 'ackMail' | 'relayStatus' | 'directory' | 'mailWaiting'
export const RELAY_RPC_METHODS: readonly RelayRpcMethod[] = ['redeem', 'deposit', 'fetch', 'ackMail', 'relayStatus', 'directory', 'mailWaiting']

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

/**
 * `full`: recipients refused for lack of room (no copy kept for them); `shareFull`: those of them
 * refused because the sender's share of their mailbox is used up. Both absent from older relays.
 */
export interface DepositAnswer { status: 'stored' | 'duplicate', stored: number, unknown: PeerIdString[], full: PeerIdString[], shareFull?: PeerIdString[] }
export function parseDepositAnswer (value: unknown): DepositAnswer {
  const o = relayCheck.obj(value, 'body')
  return {
    status: relayCheck.literal(o, 'status', ['stored', 'duplicate']),
    stored: relayCheck.int(o, 'stored', { min: 0, max: MAX_RECIPIENTS }),
    unknown: relayCheck.arr(o, 'unknown', { max: MAX_RECIPIENTS }).map(t => relayCheck.str({ t }, 't', { max: 60, pattern: PEER_ID })),
    full: o.full === undefined ? [] : relayCheck.arr(o, 'full', { max: MAX_RECIPIENTS }).map(t => relayCheck.str({ t }, 't', { max: 60, pattern: PEER_ID })),
    shareFull: o.shareFull === undefined
      ? []
      : relayCheck.arr(o, 'shareFull', { max: MAX_RECIPIENTS }).map(t => relayCheck.str({ t }, 't', { max: 60, pattern: PEER_ID }))
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
    return {
      cursor: relayCheck.int(i, 'cursor', { min: 1, max: MAX_SEQ }),
      from: relayCheck.str(i, 'from', { max: 60, pattern: PEER_ID }),
      envelope: parseEnvelope(i.envelope)
    }
  })
  return { items, more: relayCheck.bool(o, 'more') }
}

export function parseRelayStatus (value: unknown): RelayStatus {
  const o = relayCheck.obj(value, 'body')
  return { admitted: relayCheck.bool(o, 'admitted'), queued: relayCheck.int(o, 'queued', { min: 0, max: MAX_SEQ }) }
}
