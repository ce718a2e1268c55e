/**
 * Per-sender shares of a recipient's mailbox. The quota is per recipient;
 * without a share, one admitted sender could fill a colleague's mailbox so
 * that everyone else's offline mail to that person is refused. Each sender
 * may fill `senderShare` of the quota (messages and bytes); a deposit beyond
 * it is refused with ERR_SENDER_SHARE_FULL, which the sender shows, and the
 * refusals are counted per (recipient, sender) so `stats` names the flooder.
 */
import { ParleyError } from '../../../core/errors.js'
import type { Tx, Sub } from '../../../core/store/group-commit.js'

export interface Usage { count: number, bytes: number }

export interface ShareLimits { quotaMessages: number, quotaBytes: number, /** @default DEFAULT_SENDER_SHARE */ senderShare?: number }

/** one sender may fill a quarter of a recipient's mailbox */
export const DEFAULT_SENDER_SHARE = 0.25

/** One sender's hold on one recipient's mailbox. */
export interface SenderUse {
  recipient: string
  sender: string
  messages: number
  bytes: number
  /** the larger of messages and bytes, as a fraction of the sender's share (1 = full) */
  shareUsed: number
  /** deposits refused since the relay started because this share was full */
  refused: number
}

/** refusal counters kept at most for this many (recipient, sender) pairs */
const MAX_TRACKED_PAIRS = 10_000

export class SenderShares {
  readonly shareMessages: number
  readonly shareBytes: number
  private readonly refusals = new Map<string, number>()

  constructor (private readonly limits: ShareLimits) {
    // at least one message each, however small the quota
    const share = limits.senderShare ?? DEFAULT_SENDER_SHARE
    this.shareMessages = Math.max(1, Math.floor(limits.quotaMessages * share))
    this.shareBytes = Math.max(1, Math.floor(limits.quotaBytes * share))
  }

  /** The same refusal record under new limits (a policy changed at run time). */
  withLimits (limits: ShareLimits): SenderShares {
    const next = new SenderShares(limits)
    for (const [k, v] of this.refusals) next.refusals.set(k, v)
    return next
  }

  /** Is there room for one more copy of `bytes`: ok, the mailbox is full, or this sender's share is? */
  room (mailbox: Usage, sender: Usage, bytes: number): 'ok' | 'mailbox' | 'share' {
    if (mailbox.count + 1 > this.limits.quotaMessages || mailbox.bytes + bytes > this.limits.quotaBytes) return 'mailbox'
    if (sender.count + 1 > this.shareMessages || sender.bytes + bytes > this.shareBytes) return 'share'
    return 'ok'
  }

  refused (recipient: string, sender: string): void {
    const key = `${recipient} ${sender}`
    if (!this.refusals.has(key) && this.refusals.size >= MAX_TRACKED_PAIRS) return
    this.refusals.set(key, (this.refusals.get(key) ?? 0) + 1)
  }

  refusedPairs (): Array<{ recipient: string, sender: string }> {
    return [...this.refusals.keys()].map(k => { const [recipient = '', sender = ''] = k.split(' '); return { recipient, sender } })
  }

  describe (recipient: string, sender: string, u: Usage): SenderUse {
    const shareUsed = Math.max(u.count / this.shareMessages, u.bytes / this.shareBytes)
    const refused = this.refusals.get(`${recipient} ${sender}`) ?? 0
    return { recipient, sender, messages: u.count, bytes: u.bytes, shareUsed: Math.round(shareUsed * 1000) / 1000, refused }
  }

  /** The error when no copy was kept: `full` recipients had no room, `shareFull` of them because of this sender's share. */
  refusal (full: string[], shareFull: string[]): ParleyError {
    const names = (ps: string[]): string => ps.map(r => r.slice(-12)).join(', ')
    if (shareFull.length === full.length) {
      const share = `${this.shareMessages} messages or ${this.shareBytes} bytes from one sender`
      const next = 'other senders still have room, and it drains when they come online'
      return new ParleyError('ERR_SENDER_SHARE_FULL', `your share of the mailbox of ${names(full)} is full (${share}); ${next}`)
    }
    const quota = `${this.limits.quotaMessages} messages or ${this.limits.quotaBytes} bytes`
    return new ParleyError('ERR_QUOTA_EXCEEDED', `the mailbox of ${names(full)} is full (${quota}); it drains when they come online`)
  }
}

/** Subtracts `rows` from the usage at `key`, inside the transaction; deletes the entry at zero. */
export async function subtractUsage (tx: Tx, sub: Sub<Usage>, key: string, rows: ReadonlyArray<{ bytes: number }>): Promise<void> {
  const use = await tx.get(sub, key)
  const left = { count: Math.max(0, (use?.count ?? 0) - rows.length), bytes: Math.max(0, (use?.bytes ?? 0) - rows.reduce((n, r) => n + r.bytes, 0)) }
  if (left.count === 0) tx.del(sub, key)
  else tx.put(sub, key, left)
}
