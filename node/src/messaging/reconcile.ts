/**
 * Sequence reconciliation: a (conversation, author, seq) slot is never
 * reused, even after this device's store lost messages, with or without a
 * trace. Three parts:
 * - On every sync the peer's getHave answer proves the highest seq of ours it
 *   holds (`proof`, our own signed envelope), and our counter goes above it.
 * - Sends are held (stored durably, not sent, not deposited) until the
 *   conversation's peers answered: after damage was found at start (the store
 *   is marked, see store/open-node-store.ts) in every conversation, after a
 *   clean start in the groups known at start (any member may hold a number
 *   once given out), until the peer, or every other member, answered, or the
 *   wait ran out. Then they are re-sealed above the highest number proven,
 *   if need be, and released. Held messages take no slot meanwhile (they are
 *   outside the sequence index), so our own messages that peers send back
 *   land in their old slots.
 * - A peer that refuses one of our messages with ERR_SEQ_CONFLICT holds
 *   another of ours at that number (damage that left no trace: a log cut
 *   short, an old copy of the data dir put back; or a hold that ran out
 *   while the only member holding the lost numbers was away): the message
 *   moves (the move): above what the peer proves it holds, re-sealed with
 *   the same id, and sent again to every recipient device, also to those
 *   that hold the old copy; a receiver holding the old copy takes the new
 *   number and frees the old one (MessageStore.storeIncoming), where the
 *   message our store lost lands. A refusal because the peer still holds an
 *   old copy of a message that moved since is answered with the moved copy.
 * See docs/PROTOCOL.md, "Sequence reconciliation".
 */
import { randomBytes } from 'node:crypto'
import { openEnvelope, sealEnvelope, verifyEnvelope, type SealInput, type SigningKeys } from '../../../core/crypto/envelope.js'
import { RECONCILE_META, type ReconcileMark } from '../store/health.js'
import { isGroupConv, isPermanentRefusal, type Envelope } from '../../../core/protocol/envelope.js'
import { parseHaveWithTops } from '../../../core/protocol/peer-rpc.js'
import { remoteCode } from '../../../core/rpc/channel.js'
import { MAX_MOVES, type MessageStore, type Sendable, type StoredMessage } from '../store/types.js'
import type { Logger } from '../../../core/util/log.js'

/**
 * The highest number of ours a peer proved it holds in `conv`: the seq of
 * `proof`, our own signed envelope of that conversation (0 without one). A
 * number a peer only claims is not believed: a hostile or broken peer could
 * otherwise push our counter to MAX_SEQ and end the conversation.
 */
export function provenTop (conv: string, self: string, proof: Envelope | undefined): number {
  if (proof === undefined || proof.author !== self || proof.conv !== conv) return 0
  try {
    verifyEnvelope(proof)
  } catch {
    return 0
  }
  return proof.seq
}

export interface ReconcilerComponents {
  store: MessageStore
  identity: SigningKeys
  log: Logger
  /** the other members of a group conversation (undefined: not a group we know) */
  members?: (conv: string) => string[] | undefined
  /** the account a device belongs to (group members are accounts): a device's answer counts for its account */
  accountOf?: (device: string) => string
  /** seals an envelope of ours as the messenger does (with our account's certificate chain beside it) */
  seal?: (input: SealInput) => Envelope
  /** held messages released by the wait running out (a peer's answer releases through peerReported's result) */
  released?: (m: StoredMessage) => void
  /** the devices a moved message is queued for again (not our own revoked ones) @default every one */
  sendable?: Sendable
}

export interface ReconcilerInit {
  /**
   * After a clean start, sends in a group this store already knew are held
   * until every other member answered, at most this long. @default 5000
   */
  startWaitMs?: number
  /**
   * After damage was found, sends are held until the peer (in a group: every
   * other member) answered, at most this long; then they go out, to the
   * relay's mailbox too, above the highest number proven so far, and a
   * conflict is re-sealed (seqConflict). @default 60000
   */
  damagedWaitMs?: number
}

export const DEFAULT_START_WAIT_MS = 5000
export const DEFAULT_DAMAGED_WAIT_MS = 60_000

/** What seqConflict needs of the channel to the peer that refused. */
export interface HaveChannel { call: (method: 'getHave' | 'deliver', body: unknown) => Promise<unknown> }

/**
 * What became of a message a peer refused with ERR_SEQ_CONFLICT: `moved` (ours: it has a new number and
 * is queued again), `again` (the number is free at the peer now, or the peer got the moved copy of the
 * message it held there: send it again), `keep` (nothing proves a conflict, or it is another author's
 * to move: it fails for that peer, or a forwarder skips it). A passing error (the peer's answer, our
 * disk) is thrown: the delivery is tried again later.
 */
export type SeqConflictOutcome = 'moved' | 'again' | 'keep'

/** meta key: names this store's incarnation; renewed when damage is found (peers then forget what it held) */
const EPOCH_META = 'epoch'

export class Reconciler {
  private pending = false
  private since = 0
  private readonly done = new Set<string>()
  /** per held conversation: the peers that answered since this start */
  private readonly answered = new Map<string, Set<string>>()
  /** conversations this store knew at start (one made since cannot hold a number given out before) */
  private readonly known = new Set<string>()
  private expired = false
  /** conversations whose hold the wait's end released (decided in its write turn, as a peer's answer is) */
  private readonly expiredConvs = new Set<string>()
  private timer?: NodeJS.Timeout
  private epoch_ = ''

  constructor (private readonly c: ReconcilerComponents, private readonly init: ReconcilerInit = {}) {}

  /** Reads the mark left by a damaged start (or by `parley doctor`); starts the wait. */
  async start (): Promise<void> {
    const mark = await this.c.store.getMeta(RECONCILE_META) as ReconcileMark | undefined
    this.pending = mark !== undefined
    const epoch = await this.c.store.getMeta(EPOCH_META)
    // while marked (a damaged start), every start begins a new epoch: renewing is cheap, missing one loses messages
    if (typeof epoch === 'string' && mark === undefined) {
      this.epoch_ = epoch
    } else {
      this.epoch_ = randomBytes(9).toString('base64url')
      await this.c.store.putMeta(EPOCH_META, this.epoch_)
    }
    for (const conv of await this.c.store.listConversations()) this.known.add(conv.conv)
    if (mark !== undefined) {
      this.since = mark.since
      for (const conv of mark.done ?? []) this.done.add(conv)
    }
    const wait = this.pending ? this.init.damagedWaitMs ?? DEFAULT_DAMAGED_WAIT_MS : this.init.startWaitMs ?? DEFAULT_START_WAIT_MS
    this.expired = false
    this.timer = setTimeout(() => { void this.waitOver() }, wait)
    this.timer.unref()
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  /** This store's epoch, given to peers with our have-vector. */
  get epoch (): string { return this.epoch_ }

  /** After damage: are new messages still held in some conversation (our numbers not yet checked with its peers, the wait not over)? */
  get damaged (): boolean { return this.pending && !this.expired }

  /**
   * Are our new messages in `conv` to be held until its peers answered? After
   * damage: every direct conversation, and every group known at start; after
   * a clean start: the groups known at start (a store restored from an old
   * copy looks clean; in a group a number once given out may be held by any
   * member). Not once the wait ran out.
   */
  holds (conv: string): boolean {
    if (this.expired || this.expiredConvs.has(conv) || this.done.has(conv)) return false
    const group = isGroupConv(conv)
    if (this.pending) return !group || this.known.has(conv)
    return group && this.known.has(conv)
  }

  /**
   * `peer`, of `conv`, holds our messages up to `top`: our counter goes above
   * it; once the conversation is held no more (the peer of a direct
   * conversation answered, or every other member of a group), held messages
   * are released, re-sealed above every number proven where needed. Returns
   * the released messages.
   */
  async peerReported (conv: string, peer: string, top: number): Promise<StoredMessage[]> {
    let released = false
    // decided inside the store's write turn: from then on new sends in `conv` are not held (a send
    // prepared after the release but held would be released by no one)
    const release = (): boolean => {
      if (this.holds(conv)) {
        const who = this.answered.get(conv) ?? new Set<string>()
        const member = this.c.accountOf?.(peer) ?? peer
        who.add(member)
        this.answered.set(conv, who)
        const members = isGroupConv(conv) ? this.c.members?.(conv) ?? [] : [member]
        if (members.every(m => who.has(m))) { this.done.add(conv); released = true }
      }
      return !this.holds(conv)
    }
    let changed: StoredMessage[]
    try {
      changed = await this.c.store.reconcileOwn(conv, this.c.identity.peerId, top, release, this.reseal)
    } catch (err) {
      // not written: still held (a send that slipped through meanwhile failed with this write, or
      // is held and goes out with the next release, see MessageStore.reconcileOwn)
      if (released) this.done.delete(conv)
      throw err
    }
    if (released) {
      if (this.pending) await this.saveMark()
      this.c.log.info('sequence numbers reconciled with the conversation\'s peers', { conv, top, released: changed.length })
    }
    return changed
  }

  /**
   * The wait ran out: what is still held goes out above the highest number
   * proven so far (the counter already went above every answer). A peer
   * that holds more refuses with ERR_SEQ_CONFLICT, and seqConflict re-seals.
   */
  private async waitOver (): Promise<void> {
    // per conversation, inside its write turn: a send there is held (and numbered) before the release, or
    // not held and numbered after it, never below a held message sent earlier
    const release = async (conv: string): Promise<void> => {
      const out = await this.c.store.reconcileOwn(conv, this.c.identity.peerId, 0, () => { this.expiredConvs.add(conv); return true }, this.reseal)
      for (const m of out) this.c.released?.(m)
    }
    try {
      for (const { conv } of await this.c.store.listConversations()) await release(conv)
      this.expired = true
      // a conversation that began meanwhile (its first send held before the end was decided)
      for (const { conv } of await this.c.store.listConversations()) if (!this.expiredConvs.has(conv)) await release(conv)
    } catch (err) {
      this.expired = true
      this.c.log.warn('releasing held messages failed; they go out with the next answer of a peer', { err: String(err) })
    }
  }

  /**
   * `peer` refused `env` with ERR_SEQ_CONFLICT: it holds another message of
   * `env`'s author at that number. We ask which (getHave `slot`, the
   * author's signed envelope there):
   * - an old copy of a message we hold at a higher number (it moved since):
   *   the peer gets the moved copy, which frees the number, and `env` goes
   *   again;
   * - ours, one our store lost (damage that left no trace, an old copy of the
   *   data dir, a hold that ran out): the number is never reused. Our message
   *   moves above what the peer proves it holds, re-sealed (the move,
   *   MessageStore.resealOwn), queued again for every recipient device, and
   *   the peer gives the lost one back (`resync`).
   * Another author's message is not ours to move: `keep` (skipped).
   */
  async seqConflict (peer: string, ch: HaveChannel, env: Envelope): Promise<SeqConflictOutcome> {
    try {
      return await this.resolveConflict(peer, ch, env)
    } catch (err) {
      const code = remoteCode(err)
      // the peer refuses the question (or the moved copy) for good: nothing more to do here
      if (code === 'ERR_NOT_FOUND' || isPermanentRefusal(code)) return 'keep'
      // a dropped connection, a timeout, a full disk: tried again, never failed for it
      this.c.log.info('a sequence conflict could not be resolved now; tried again later', { peer, id: env.id, err: String(err) })
      throw err
    }
  }

  private async resolveConflict (peer: string, ch: HaveChannel, env: Envelope): Promise<SeqConflictOutcome> {
    const self = this.c.identity.peerId
    const { proof, slot } = parseHaveWithTops(await ch.call('getHave', { conv: env.conv, tops: true, slot: { author: env.author, seq: env.seq } }))
    // nothing there now (what it held moved meanwhile), or this very message: send again
    if (slot === null || slot?.id === env.id) return 'again'
    const there = slot !== undefined && this.holdsAt(slot, env) ? slot : undefined
    if (there !== undefined) {
      const current = await this.c.store.getMessage(there.id)
      if (current !== undefined && current.author === env.author && current.conv === env.conv && current.held !== true && current.seq > env.seq) {
        // an old copy of a message that moved since: the peer moves it when it gets this one. Its refusal of
        // that copy is about that message (its own outbox entry resolves it), not this one: tried again later
        try {
          await ch.call('deliver', current.envelope)
        } catch (err) {
          this.c.log.info('a peer refused the moved copy of a message it holds an old copy of; tried again later', { peer, id: current.id, err: String(err) })
        }
        return 'again'
      }
    }
    if (env.author !== self) return 'keep'
    // the move needs the slot proof: our own signed envelope of another message at exactly this number. An
    // answer without one (an older peer that does not know the question, a broken or lying one) proves
    // nothing: the message keeps its number and fails for that peer
    if (there === undefined) {
      this.c.log.warn('a peer refused a message of ours as a sequence conflict without proving that it holds another message of ours at that number: ' +
        'it fails for that peer', {
        peer, conv: env.conv, id: env.id, seq: env.seq
      })
      return 'keep'
    }
    // the refused envelope itself proves nothing about what else the peer holds
    const top = Math.max(proof?.id === env.id ? 0 : provenTop(env.conv, self, proof), there.seq)
    const moved = await this.c.store.resealOwn(env.id, env.seq, top, this.reseal, this.c.sendable)
    if (moved === undefined) return 'keep'
    if (moved === 'capped') {
      const why = `a message of ours moved ${MAX_MOVES} times already (each time a peer proved another message of ours at its number)`
      this.c.log.warn(`${why} and moves no more: it fails for that peer`, {
        peer, conv: env.conv, id: env.id, seq: env.seq
      })
      return 'keep'
    }
    if (moved.seq !== env.seq) {
      this.c.log.warn('a peer holds a message of ours under the number just sent (our store lost it): moved to a new number', {
        peer, conv: env.conv, id: env.id, seq: env.seq, newSeq: moved.seq, top
      })
      this.c.released?.(moved)
      // the number is free here now: the peer sends our message it holds there (a sync it made before
      // may have taken the number for ours)
      await ch.call('getHave', { conv: env.conv, tops: true, resync: true }).catch(() => {})
    }
    return 'moved'
  }

  /**
   * Through the mailbox (slot-notices.ts): a recipient gave back `env`, our own signed envelope (verified by
   * the caller), which our store lost. If another message of ours holds its number here, that number was
   * given out twice, and `env` is the proof: ours moves above it and above every number known here (the
   * move, as in seqConflict), queued again for every recipient device, and the number is free for `env`.
   * Returns the moved message, or undefined (the number is free, or it is `env` itself, or the move is capped).
   */
  async slotProven (env: Envelope, by: string): Promise<StoredMessage | undefined> {
    const self = this.c.identity.peerId
    if (env.author !== self) return undefined
    const at = await this.c.store.envelopeAt(env.conv, self, env.seq)
    if (at === undefined || at.id === env.id) return undefined
    const moved = await this.c.store.resealOwn(at.id, at.seq, env.seq, this.reseal, this.c.sendable)
    if (moved === undefined || moved === 'capped') {
      this.c.log.warn('a recipient gave back a message of ours under a number another holds here, and it does not move: it stays lost here', {
        by, conv: env.conv, id: at.id, seq: at.seq, capped: moved === 'capped'
      })
      return undefined
    }
    if (moved.seq !== at.seq) {
      this.c.log.warn('a recipient holds a message of ours under the number of a later one (our store lost it): moved to a new number', {
        by, conv: env.conv, id: at.id, seq: at.seq, newSeq: moved.seq
      })
      this.c.released?.(moved)
    }
    return moved
  }

  /** Is `slot` the author's own signed envelope at `env`'s number, of another message? */
  private holdsAt (slot: Envelope, env: Envelope): boolean {
    if (slot.author !== env.author || slot.conv !== env.conv || slot.seq !== env.seq || slot.id === env.id) return false
    try {
      verifyEnvelope(slot)
      return true
    } catch {
      return false
    }
  }

  /** The mark ends once every conversation this store knows was reconciled. */
  private async saveMark (): Promise<void> {
    const convs = await this.c.store.listConversations()
    if (convs.every(c => this.done.has(c.conv))) {
      this.pending = false
      await this.c.store.deleteMeta(RECONCILE_META)
      this.c.log.info('every conversation is reconciled; sends go out at once again')
      return
    }
    // the rest of the mark (a damage report not shown yet) stays
    await this.c.store.updateMeta(RECONCILE_META, (m) => ({ ...(m as ReconcileMark | undefined), since: this.since, done: [...this.done] }))
  }

  /** The same message (id, time, body, recipients) under a new seq: no one has seen a held message yet. */
  private readonly reseal = (m: StoredMessage, seq: number): Envelope => {
    const body = openEnvelope(this.c.identity, m.envelope)
    const recipients = m.envelope.keys.map(k => k.to)
    const input = { id: m.id, conv: m.conv, seq, hlc: m.hlc, recipients, body, kind: m.envelope.kind }
    return this.c.seal?.(input) ?? sealEnvelope(this.c.identity, input)
  }
}
