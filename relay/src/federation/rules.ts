/**
 * The federation rules both stores apply inside their writes, written once:
 * which invite may be used, which recipients of a forwarded item are ours.
 */
import { ParleyError } from '../../../core/errors.js'
import type { FedInboundItem, FedInvite, FedReceipt } from './types.js'

/** The invite as used by `by`; throws ERR_FED_PAIRING with the reason. */
export function usableFedInvite (invite: FedInvite | undefined, by: string, now: number): FedInvite {
  if (invite === undefined) throw new ParleyError('ERR_FED_PAIRING',
    'this pairing token is not known to the relay that made it (wrong token, or it was removed)')
  if (invite.usedBy !== undefined && invite.usedBy !== by) throw new ParleyError('ERR_FED_PAIRING',
    'this pairing token was already used by another relay; ask for a new one')
  if (invite.usedBy === undefined && invite.expiresAt < now) throw new ParleyError('ERR_FED_PAIRING',
    'this pairing token has expired; ask for a new one (parley-relay federation invite)')
  return { ...invite, usedBy: by, usedAt: invite.usedAt ?? now }
}

/**
 * A forwarded item's recipients: `mine` are admitted here and get a copy;
 * `others` are not ours (nothing is kept for them). An item whose author is
 * one of our own users is a forgery (our users deposit here, not through
 * another office): none of its recipients is taken, except that author
 * itself for its own envelope given back with a "slot taken" notice.
 */
export function splitFedRecipients (item: FedInboundItem, isAdmitted: (peerId: string) => boolean): { mine: string[], others: string[] } {
  // an author of ours gets back its own envelope with a "slot taken" notice (issue 9, verified by the caller:
  // signed by the recipient that gives it back); any other mail "from" our own users is refused
  if (item.envelope.taken !== undefined) {
    const back = (t: string): boolean => t === item.envelope.author && isAdmitted(t)
    return { mine: item.to.filter(back), others: item.to.filter(t => !back(t)) }
  }
  if (isAdmitted(item.envelope.author)) return { mine: [], others: item.to }
  return { mine: item.to.filter(isAdmitted), others: item.to.filter(t => !isAdmitted(t)) }
}

/**
 * Who a forwarded item is charged to (the sender share, `stats`): its author, or for an envelope given back
 * with a "slot taken" notice the device that gave it back (as a local deposit charges its depositor).
 */
export const fedSender = (item: FedInboundItem): string => item.envelope.taken?.by ?? item.envelope.author

/**
 * The seq of the next item queued to a relay paired at `pairedAt`: above the
 * last one, and above pairedAt * 1000. A pairing made again (after `remove`, or
 * after this relay lost its store) starts above every seq of the earlier
 * pairing, so the other relay's high-water mark never swallows new items.
 */
export const fedSeqAfter = (last: number, pairedAt: number): number => Math.max(last, pairedAt * 1000) + 1

/**
 * A forwarded batch taken in seq order above the high-water mark `last`,
 * inside one store write: `deposit` keeps the copies for our recipients. It
 * stops at an item that meets a full mailbox (that item and those after it
 * come again, in order); the receipt's `lastSeq` is the new mark to write.
 */
export async function takeFedBatch (items: FedInboundItem[], last: number, isAdmitted: (peerId: string) => boolean,
  deposit: (mine: string[], item: FedInboundItem) => Promise<{ stored: number, full: string[] }>): Promise<FedReceipt> {
  let stored = 0
  const unknown: Array<[number, string]> = []
  let full = false
  for (const item of [...items].sort((a, b) => a.seq - b.seq)) {
    if (item.seq <= last) continue
    const { mine, others } = splitFedRecipients(item, isAdmitted)
    for (const o of others) unknown.push([item.seq, o])
    const r = await deposit(mine, item)
    stored += r.stored
    if (r.full.length > 0) { full = true; break }
    last = item.seq
  }
  return { lastSeq: last, stored, unknown, full }
}
