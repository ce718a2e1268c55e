/**
 * The peer RPC (MSG_PROTOCOL): what peers ask each other over their one
 * bidirectional channel, and the parsers of those bodies. A peer channel
 * accepts only PEER_RPC_METHODS.
 */
import { Checker, PEER_ID, type Obj } from './validate.js'
import { CONV_ID, MAX_RECIPIENTS, MAX_SEQ, MSG_ID, parseEnvelope, type Envelope, type PeerIdString } from './envelope.js'

/** One bidirectional RPC protocol: deliver envelopes, exchange have-vectors, fetch profiles. */
export const MSG_PROTOCOL = '/parley/msg/1.0.0'

/**
 * deliver: store this envelope (answer after a durable write);
 * getHave: your have-vector for a conversation (to push what you lack);
 * getProfile: your signed profile; receipt: these messages of mine were shown to you.
 */
export type PeerRpcMethod = 'deliver' | 'getHave' | 'getProfile' | 'announceProfile' | 'receipt' | 'typing' | 'link'
/** link: a new device presents a link code's secret to the account's first device (node/src/messaging/linking.ts) */
export const PEER_RPC_METHODS: readonly PeerRpcMethod[] = ['deliver', 'getHave', 'getProfile', 'announceProfile', 'receipt', 'typing', 'link']
export const MAX_RECEIPT_IDS = 1000

/** Highest contiguous sequence number stored, per author, for one conversation. */
export type HaveVector = Record<PeerIdString, number>

export interface DeliverResult { status: 'stored' | 'duplicate' }

const frameCheck = new Checker('ERR_MALFORMED_FRAME', 'frame')

/** A slot asked about by getHave (the move of a message, PROTOCOL.md "Sequence reconciliation"): an author's number in the conversation. */
export interface SlotRef { author: PeerIdString, seq: number }

export function parseHaveRequest (value: unknown): { conv: string, tops: boolean, slot?: SlotRef } {
  const o = frameCheck.obj(value, 'body')
  const tops = o.tops === undefined ? false : frameCheck.bool(o, 'tops')
  const conv = frameCheck.str(o, 'conv', { max: 200, pattern: CONV_ID })
  if (o.slot === undefined) return { conv, tops }
  const s = frameCheck.obj(o.slot, 'slot')
  return { conv, tops, slot: { author: frameCheck.str(s, 'author', { max: 64, pattern: PEER_ID }), seq: frameCheck.int(s, 'seq', { min: 1, max: MAX_SEQ }) } }
}

/**
 * Answer to getHave `{ conv, tops: true }`: the have-vector and, per author,
 * the highest sequence number held (gaps included), and the epoch of the
 * answering store (a new one after damage was found in it: what it held
 * before is not to be assumed). An author reconciles its own counter with
 * `tops` (node/src/messaging/reconcile.ts), but only as far as `proof`
 * goes: the caller's own signed envelope at the highest number of the
 * caller's that the peer holds (a peer cannot make up a higher one). Peers
 * that do not know `tops` answer a bare have-vector: then `tops` is the
 * have-vector. A proof that is no envelope is left out (not an error: the
 * rest of the answer still serves the sync).
 * Asked about a `slot` (`{ author, seq }`), the answer also carries `slot`:
 * the envelope the peer holds there, or null when it holds none (a peer that
 * does not know the question leaves it out: undefined).
 */
export function parseHaveWithTops (value: unknown): { have: HaveVector, tops: HaveVector, epoch?: string, proof?: Envelope, slot?: Envelope | null } {
  const o = frameCheck.obj(value, 'have')
  if (typeof o.have !== 'object' || o.have === null) { const have = parseHaveVector(value); return { have, tops: have } }
  const epoch = o.epoch === undefined ? undefined : frameCheck.str(o, 'epoch', { max: 64 })
  let proof: Envelope | undefined
  try { proof = o.proof === undefined ? undefined : parseEnvelope(o.proof) } catch { proof = undefined }
  let slot: Envelope | null | undefined
  try { slot = o.slot === undefined || o.slot === null ? o.slot : parseEnvelope(o.slot) } catch { slot = undefined }
  return {
    have: parseHaveVector(o.have),
    tops: parseHaveVector(o.tops),
    ...(epoch !== undefined ? { epoch } : {}),
    ...(proof !== undefined ? { proof } : {}),
    ...(slot !== undefined ? { slot } : {})
  }
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

export function parseTyping (value: unknown): { conv: string } {
  const o = frameCheck.obj(value, 'body')
  return { conv: frameCheck.str(o, 'conv', { max: 200, pattern: CONV_ID }) }
}
