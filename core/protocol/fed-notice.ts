/**
 * Receipts and bounces that travel through the relays (federation, issue 12).
 * A user of another office cannot reach the author's device: its delivery and
 * read receipts go to its own relay (`receipt`), which forwards them to the
 * author's home relay (fed `notices`); that relay keeps them for the author's
 * device (`notices`), with the bounces it makes itself (a forwarded message
 * that expired in its queue, or that the other relay has no recipient for).
 *
 * A receipt is signed by the recipient device (`by`): no relay can make one
 * up. A bounce is said by the author's own relay, which held the message.
 */
import { Checker, PEER_ID } from './validate.js'
import { CONV_ID, MAX_SEQ, MSG_ID } from './envelope.js'

/** ids per receipt, at most */
export const MAX_NOTICE_IDS = 500
/** notices per answer, at most */
export const MAX_NOTICES = 200

export interface SignedReceipt {
  v: 1
  /** the recipient device that stored (delivered) or was shown (read) the messages */
  by: string
  /** their author device: where the receipt goes */
  author: string
  conv: string
  ids: string[]
  state: 'delivered' | 'read'
  at: number
  /** Ed25519 signature by `by` over the other fields (base64url) */
  sig: string
}

/** The author's relay gave up on these messages for `peer` (`code`: ERR_FED_EXPIRED, ERR_UNKNOWN_RECIPIENT). */
export interface Bounce { ids: string[], peer: string, code: string, office?: string }

/** What a relay keeps for one of its devices, numbered: `notices { ack: n }` deletes up to n. */
export type Notice = { n: number, receipt: SignedReceipt } | { n: number, bounce: Bounce }
/** A notice before the relay's store numbers it. */
export type NoticeBody = { receipt: SignedReceipt } | { bounce: Bounce }

const check = new Checker('ERR_MALFORMED_FRAME', 'notice')
const ids = (o: Record<string, unknown>): string[] =>
  check.arr(o, 'ids', { min: 1, max: MAX_NOTICE_IDS }).map(i => check.str({ i }, 'i', { max: 22, pattern: MSG_ID }))

export function parseSignedReceipt (value: unknown): SignedReceipt {
  const o = check.obj(value, 'receipt')
  check.literal(o, 'v', [1])
  return {
    v: 1,
    by: check.str(o, 'by', { max: 60, pattern: PEER_ID }),
    author: check.str(o, 'author', { max: 60, pattern: PEER_ID }),
    conv: check.str(o, 'conv', { max: 200, pattern: CONV_ID }),
    ids: ids(o),
    state: check.literal(o, 'state', ['delivered', 'read']),
    at: check.int(o, 'at', { min: 0, max: 2 ** 50 }),
    sig: check.str(o, 'sig', { min: 86, max: 86, pattern: /^[A-Za-z0-9_-]+$/ })
  }
}

export function parseBounce (value: unknown): Bounce {
  const o = check.obj(value, 'bounce')
  const office = o.office === undefined ? undefined : check.str(o, 'office', { min: 0, max: 100 })
  return { ids: ids(o), peer: check.str(o, 'peer', { max: 60, pattern: PEER_ID }), code: check.str(o, 'code', { max: 40, pattern: /^ERR_[A-Z_]+$/ }),
    ...(office !== undefined ? { office } : {}) }
}

export function parseNotices (value: unknown): Notice[] {
  const o = check.obj(value, 'body')
  return check.arr(o, 'items', { max: MAX_NOTICES }).map((v): Notice => {
    const i = check.obj(v, 'item')
    const n = check.int(i, 'n', { min: 1, max: MAX_SEQ })
    return i.receipt !== undefined ? { n, receipt: parseSignedReceipt(i.receipt) } : { n, bounce: parseBounce(i.bounce) }
  })
}

/** `notices { ack? }`: the notices after `ack`, those up to it deleted. */
export function parseNoticesAsk (value: unknown): { ack: number } {
  const o = check.obj(value, 'body')
  return { ack: o.ack === undefined ? 0 : check.int(o, 'ack', { min: 0, max: MAX_SEQ }) }
}

/** fed `notices { receipts }`: receipts for the users of the relay asked. */
export function parseFedNotices (value: unknown): SignedReceipt[] {
  const o = check.obj(value, 'body')
  return check.arr(o, 'receipts', { max: MAX_NOTICES }).map(parseSignedReceipt)
}
