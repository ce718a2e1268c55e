/**
 * "Slot taken" notices through the relay's mailbox and federation (issue 9,
 * core/protocol/slot-notice.ts; PROTOCOL.md, "Sequence reconciliation").
 *
 * On the LAN and through the relay's circuit a refused delivery is resolved
 * at once: the author asks the refusing peer what it holds at that number
 * (Reconciler.seqConflict). A device reached only through the mailbox (never
 * online with the author, or in another office) cannot be asked. So:
 * - the refusing side (`noticesFor`): mail refused with ERR_SEQ_CONFLICT is
 *   answered by giving the author back its own signed envelopes we hold from
 *   that number up (the highest first, so the author's counter goes above
 *   them before anything moves), each with a notice we sign beside it, as
 *   mail for the author alone (the relay checks who signed it);
 * - the author's side (`accept`): the notice and the author's own signature
 *   are verified; if another message of ours holds that number here, it moves
 *   (Reconciler.slotProven: the move, with its proof and MAX_MOVES), and the
 *   envelope our store lost comes back into its old number, as a sync gives
 *   it back. An old copy of a message that moved since is answered with the
 *   moved copy and the refused message, deposited again for that device.
 * A hostile notice (a bad signature, another device's message, a device that
 * is no recipient) is refused with a typed error and dropped by the drain.
 */
import { signSlotTaken, verifyEnvelope, verifySlotTaken, withoutSlotTaken, type SigningKeys } from '../../../core/crypto/envelope.js'
import { ParleyError } from '../../../core/errors.js'
import type { Envelope } from '../../../core/protocol/envelope.js'
import { MAX_GIVEN_BACK } from '../../../core/protocol/slot-notice.js'
import type { Logger } from '../../../core/util/log.js'
import type { MessageStore } from '../store/types.js'
import type { Reconciler } from './reconcile.js'
import type { AcceptMail } from './relay-client.js'

export interface SlotNoticesComponents {
  store: MessageStore
  identity: SigningKeys
  log: Logger
  reconciler: Pick<Reconciler, 'slotProven'>
  /** our own envelope given back, through the receive pipeline (its checks, the durable write); settles after the write */
  receive: (from: string, env: Envelope) => Promise<'stored' | 'duplicate'>
  /** deposits envelopes of ours for `peer` at the relay again, now, in order */
  redeposit: (peer: string, envs: Envelope[]) => Promise<void>
}

export class SlotNotices {
  /** notices are taken one at a time, in mailbox order: each may move a message the next one's number depends on */
  private turn: Promise<unknown> = Promise.resolve()

  constructor (private readonly c: SlotNoticesComponents) {}

  /**
   * The refusing side: for mail refused with ERR_SEQ_CONFLICT (one drain's worth), the envelopes to give
   * back, each to deposit for its author: per (conversation, author), the highest we hold first, then from
   * the lowest refused number up (at most MAX_GIVEN_BACK), and the one at every refused number.
   */
  async noticesFor (refused: Envelope[]): Promise<Envelope[]> {
    const self = this.c.identity.peerId
    const out: Envelope[] = []
    const given = new Set<string>()
    const byConv = new Map<string, Envelope[]>()
    for (const e of refused) {
      if (e.author === self) continue
      const k = `${e.conv} ${e.author}`
      byConv.set(k, [...(byConv.get(k) ?? []), e])
    }
    for (const list of byConv.values()) {
      const { conv, author } = list[0]!
      const refusedAt = new Map(list.map(e => [e.seq, e.id]))
      const low = Math.min(...list.map(e => e.seq))
      const top = await this.c.store.topEnvelope(conv, author)
      const atRefused: Envelope[] = []
      for (const e of list) {
        const at = await this.c.store.envelopeAt(conv, author, e.seq)
        if (at !== undefined && at.id !== e.id) atRefused.push(at)
      }
      // nothing of ours holds a refused number (it moved meanwhile): nothing to tell
      if (atRefused.length === 0) continue
      const after = await this.c.store.envelopesAfter(conv, author, low - 1, MAX_GIVEN_BACK)
      for (const e of [...(top !== undefined && top.seq > low ? [top] : []), ...after, ...atRefused]) {
        // only what is sealed to its author can be taken back by it (every envelope since the author seals to itself)
        if (given.has(e.id) || !e.keys.some(k => k.to === author)) continue
        given.add(e.id)
        const r = refusedAt.get(e.seq)
        out.push(signSlotTaken(this.c.identity, e, r !== undefined && r !== e.id ? r : undefined))
      }
      this.c.log.info('mail refused for a number its author gave out twice: its envelopes there are given back through the relay', {
        author, conv, refused: list.length, givenBack: out.length
      })
    }
    return out
  }

  /** The author's side: mail with a notice beside it (RelayClient's AcceptMail for those). */
  readonly accept: AcceptMail = async (envelope, from) => {
    const durable = this.turn.then(async () => await this.take(envelope, from))
    this.turn = durable.catch(() => {})
    return { durable }
  }

  private async take (envelope: Envelope, from: string): Promise<'stored' | 'duplicate'> {
    const self = this.c.identity.peerId
    const t = verifySlotTaken(envelope)
    const env = withoutSlotTaken(envelope)
    if (env.author !== self) throw new ParleyError('ERR_INVALID_ENVELOPE', 'a slot notice about a message this device did not write')
    if (!env.keys.some(k => k.to === t.by)) throw new ParleyError('ERR_NOT_A_RECIPIENT', 'the device that gave it back is not one of its recipients')
    verifyEnvelope(env)
    const same = await this.c.store.getMessage(env.id)
    if (same !== undefined) {
      if (same.author !== self || same.conv !== env.conv) throw new ParleyError('ERR_ID_CONFLICT', 'another message already has this id here')
      // an old copy of a message of ours that moved since: `by` gets the moved copy (it frees the number),
      // then the message it refused there again
      if (same.seq > env.seq && t.refused !== undefined) await this.staleCopy(t.by, same.envelope, t.refused)
      return 'duplicate'
    }
    await this.c.reconciler.slotProven(env, t.by)
    this.c.log.info('a message of ours our store lost came back through the relay', { by: t.by, from, conv: env.conv, id: env.id, seq: env.seq })
    return await this.c.receive(t.by, env)
  }

  private async staleCopy (by: string, moved: Envelope, refusedId: string): Promise<void> {
    const refused = await this.c.store.getMessage(refusedId)
    const ok = refused !== undefined && refused.author === this.c.identity.peerId && refused.conv === moved.conv && refused.held !== true &&
      refused.envelope.keys.some(k => k.to === by)
    await this.c.redeposit(by, ok ? [moved, refused.envelope] : [moved])
  }
}
