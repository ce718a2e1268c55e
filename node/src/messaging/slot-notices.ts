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
import { GIVE_BACK_ROUND, MAX_GIVEN_BACK } from '../../../core/protocol/slot-notice.js'
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

/** What is left to give back of one (conversation, author): from `next` up to below `top`. */
interface GiveBackRest { conv: string, author: string, next: number, top: number }

/** the meta key of the runs still to give back */
const REST_KEY = 'slotGiveBack'

export class SlotNotices {
  /** notices are taken one at a time, in mailbox order: each may move a message the next one's number depends on */
  private turn: Promise<unknown> = Promise.resolve()

  /** old copies already answered with the moved copy in this run: (by, id, seq) */
  private readonly answered = new Set<string>()

  constructor (private readonly c: SlotNoticesComponents) {}

  /**
   * (conversation author) -> the rest of a run still to give back: from `next` below `top` (the top went first).
   * Kept in meta, so a restart of this device goes on where it was.
   */
  private pending: Map<string, GiveBackRest> | undefined

  /**
   * The refusing side: for mail refused with ERR_SEQ_CONFLICT (one drain's worth), the envelopes to give
   * back, each to deposit for its author: per (conversation, author), the highest we hold first and the one
   * at every refused number (the proof the author moves on), then the whole run from the lowest refused
   * number up, in pages (MAX_GIVEN_BACK per (conversation, author) per round, GIVE_BACK_ROUND in all): what
   * does not fit now is given on the next rounds (`noticesFor([])`, once per drain), so every lost message
   * comes back, also between offices linked relay to relay only. A page the relay did not take is given
   * again from `notGiven`.
   */
  async noticesFor (refused: Envelope[]): Promise<Envelope[]> {
    const self = this.c.identity.peerId
    const pending = await this.rest()
    if (refused.length === 0 && pending.size === 0) return []
    const out: Envelope[] = []
    const given = new Set<string>()
    const give = (e: Envelope, author: string, refusedHere?: string): void => {
      // only what is sealed to its author can be taken back by it (every envelope since the author seals to itself)
      if (given.has(e.id) || !e.keys.some(k => k.to === author)) return
      given.add(e.id)
      out.push(signSlotTaken(this.c.identity, e, refusedHere !== undefined && refusedHere !== e.id ? refusedHere : undefined))
    }
    const byConv = new Map<string, Envelope[]>()
    for (const e of refused) {
      if (e.author === self) continue
      const k = `${e.conv} ${e.author}`
      byConv.set(k, [...(byConv.get(k) ?? []), e])
    }
    for (const [key, list] of byConv) {
      const { conv, author } = list[0]!
      const refusedAt = new Map(list.map(e => [e.seq, e.id]))
      const low = Math.min(...list.map(e => e.seq))
      const atRefused: Envelope[] = []
      for (const e of list) {
        const at = await this.c.store.envelopeAt(conv, author, e.seq)
        if (at !== undefined && at.id !== e.id) atRefused.push(at)
      }
      // nothing of ours holds a refused number (it moved meanwhile): nothing to tell
      if (atRefused.length === 0) continue
      const top = await this.c.store.topEnvelope(conv, author)
      const before = out.length
      if (top !== undefined && top.seq > low) give(top, author)
      for (const e of atRefused) give(e, author, refusedAt.get(e.seq))
      // the run from the lowest refused number up to the top: its first page now (as the round allows), the rest later
      // (a run already pending for it keeps its lower start: nothing not yet given is skipped)
      const was = pending.get(key)
      pending.set(key, { conv, author, next: Math.min(low, was?.next ?? low), top: Math.max(top?.seq ?? low, was?.top ?? 0) })
      this.c.log.info('mail refused for a number its author gave out twice: its envelopes there are given back through the relay', {
        author, conv, refused: list.length, givenBack: out.length - before
      })
    }
    // the runs kept as they were until this round's deposits went through (`notGiven`, called after them):
    // a connection lost or a kill -9 during the deposits gives the same pages again (review s5-b M1-b)
    await this.c.store.putMeta(REST_KEY, [...pending.values()])
    // the runs, a page each per round, within the round's bound; the advanced positions staged for `notGiven`
    const after = new Map([...pending].map(([k, r]) => [k, { ...r }]))
    for (const [key, r] of after) {
      if (out.length >= GIVE_BACK_ROUND) break
      // each round gives the run's top first (again; the relay and the author dedupe), so the author's counter
      // is above the run before anything of it moves, also after a round the relay did not take (review s5-b M2-b)
      const top = await this.c.store.topEnvelope(r.conv, r.author)
      if (top !== undefined && top.seq >= r.next) give(top, r.author)
      const room = Math.min(MAX_GIVEN_BACK, GIVE_BACK_ROUND - out.length)
      if (room <= 0) break
      const page = (await this.c.store.envelopesAfter(r.conv, r.author, r.next - 1, room)).filter(e => e.seq < r.top)
      for (const e of page) give(e, r.author)
      const last = page[page.length - 1]
      if (page.length < room || last === undefined || last.seq + 1 >= r.top) after.delete(key)
      else r.next = last.seq + 1
    }
    this.staged = after
    return out
  }

  /** the runs as they are once the last round's pages went through (set by `noticesFor`, taken by `notGiven`) */
  private staged: Map<string, GiveBackRest> | undefined

  /**
   * Called after every round's deposits (also with none): the round's pages count as given only now, and the
   * envelopes `noticesFor` gave that the relay did not take for now go on from the lowest of them.
   */
  async notGiven (envs: Envelope[]): Promise<void> {
    if (this.staged !== undefined) { this.pending = this.staged; this.staged = undefined } else if (envs.length === 0) return
    const pending = await this.rest()
    for (const e of envs) {
      const key = `${e.conv} ${e.author}`
      const r = pending.get(key)
      if (r === undefined) pending.set(key, { conv: e.conv, author: e.author, next: e.seq, top: e.seq + 1 })
      else { r.next = Math.min(r.next, e.seq); r.top = Math.max(r.top, e.seq + 1) }
    }
    await this.c.store.putMeta(REST_KEY, [...pending.values()])
  }

  private async rest (): Promise<Map<string, GiveBackRest>> {
    if (this.pending === undefined) {
      const stored = await this.c.store.getMeta(REST_KEY)
      const list = Array.isArray(stored) ? stored as GiveBackRest[] : []
      this.pending = new Map(list.map(r => [`${r.conv} ${r.author}`, r]))
    }
    return this.pending
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
      // (once per (by, id, number) per run: a relay that hands the same old copy round again gets no more deposits)
      const answer = `${t.by} ${env.id} ${env.seq}`
      if (same.seq > env.seq && t.refused !== undefined && !this.answered.has(answer)) {
        await this.staleCopy(t.by, same.envelope, t.refused)
        this.answered.add(answer)
      }
      return 'duplicate'
    }
    await this.c.reconciler.slotProven(env, t.by)
    this.c.log.info('a message of ours our store lost came back through the relay', { by: t.by, from, conv: env.conv, id: env.id, seq: env.seq })
    // received as our own (its signature verified above), not as sent by `by`: the move is made, so the
    // pipeline must not refuse it for who handed it over (a device its account revoked since, review s5 m4)
    return await this.c.receive(self, env)
  }

  private async staleCopy (by: string, moved: Envelope, refusedId: string): Promise<void> {
    const refused = await this.c.store.getMessage(refusedId)
    const ok = refused !== undefined && refused.author === this.c.identity.peerId && refused.conv === moved.conv && refused.held !== true &&
      refused.envelope.keys.some(k => k.to === by)
    await this.c.redeposit(by, ok ? [moved, refused.envelope] : [moved])
  }
}
