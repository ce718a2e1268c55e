/**
 * The peer RPC (MSG_PROTOCOL): what peers ask each other over their one
 * bidirectional channel, and the parsers of those bodies. A peer channel
 * accepts only PEER_RPC_METHODS.
 */
import { Checker, PEER_ID, type Obj } from './validate.js'
import { CONV_ID, MAX_RECIPIENTS, MAX_SEQ, MSG_ID, type PeerIdString } from './envelope.js'

/** One bidirectional RPC protocol: deliver envelopes, exchange have-vectors, fetch profiles. */
export const MSG_PROTOCOL = '/parley/msg/1.0.0'

/**
 * deliver: store this envelope (answer after a durable write);
 * getHave: your have-vector for a conversation (to push what you lack);
 * getProfile: your signed profile; receipt: these messages of mine were shown to you.
 */
export type PeerRpcMethod = 'deliver' | 'getHave' | 'getProfile' | 'announceProfile' | 'receipt' | 'typing'
export const PEER_RPC_METHODS: readonly PeerRpcMethod[] = ['deliver', 'getHave', 'getProfile', 'announceProfile', 'receipt', 'typing']
export const MAX_RECEIPT_IDS = 1000

/** Highest contiguous sequence number stored, per author, for one conversation. */
export type HaveVector = Record<PeerIdString, number>

export interface DeliverResult { status: 'stored' | 'duplicate' }

const frameCheck = new Checker('ERR_MALFORMED_FRAME', 'frame')

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

export function parseTyping (value: unknown): { conv: string } {
  const o = frameCheck.obj(value, 'body')
  return { conv: frameCheck.str(o, 'conv', { max: 200, pattern: CONV_ID }) }
}
