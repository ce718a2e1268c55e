/**
 * The "slot taken" notice (issue 9, PROTOCOL.md "Sequence reconciliation",
 * "Through the mailbox"): a device that refuses mail from the relay with
 * ERR_SEQ_CONFLICT cannot ask the author anything (they are never online
 * together, or in two offices), so it gives the author back, through the
 * relay, the author's own signed envelope it holds at that number, with this
 * notice beside it (`Envelope.taken`, outside the author's signature, as
 * `acct` is). The notice is signed by the device that holds the envelope
 * (`by`), over the envelope's id, conversation, author, number and
 * signature: no relay can make one up or move one to another envelope. The
 * author's own signature on the envelope is the proof that the number was
 * given out twice; the author moves its message (the move) and takes the
 * envelope back into its history. Envelopes of the author above that number
 * that the device holds come back the same way (no `refused`).
 */
import { B64URL, Checker, MSG_ID, PEER_ID } from './validate.js'

/**
 * Envelopes of the author given back per (conversation, author) per round (one per fetch batch with refusals,
 * one at the end of each drain), at most, beside the highest and the ones at the refused numbers (those are
 * bounded by the fetch batch only); the whole run comes back page by page. @default 32
 */
export const MAX_GIVEN_BACK = 32
/** Envelopes given back per round in all (every conversation and author), at most: a drain's other mail does not wait long. @default 64 */
export const GIVE_BACK_ROUND = 64

export interface SlotTaken {
  v: 1
  /** the device that holds the envelope (one of its recipients) */
  by: string
  /** the author's message it refused at this envelope's number (absent: given back beside such a refusal) */
  refused?: string
  /** `by`'s wall clock when it signed, ms */
  at: number
  /** Ed25519 signature by `by` (core/crypto/envelope.ts, signSlotTaken), base64url */
  sig: string
}

const check = new Checker('ERR_INVALID_ENVELOPE', 'slot notice')

export function parseSlotTaken (value: unknown): SlotTaken {
  const o = check.obj(value, 'taken')
  check.literal(o, 'v', [1])
  return {
    v: 1,
    by: check.str(o, 'by', { max: 60, pattern: PEER_ID }),
    ...(o.refused !== undefined ? { refused: check.str(o, 'refused', { max: 22, pattern: MSG_ID }) } : {}),
    at: check.int(o, 'at', { min: 0, max: 2 ** 50 }),
    sig: check.str(o, 'sig', { min: 86, max: 86, pattern: B64URL })
  }
}
