/**
 * Sequence reconciliation: a (conversation, author, seq) slot is never
 * reused, even after this device's store lost messages. On every sync the
 * peer's getHave answer says the highest seq of ours it holds (`tops`), and
 * our counter goes above it. After damage was found at start (the store is
 * marked, see store/open-node-store.ts), our sends in a conversation are
 * stored durably but held (not sent, not deposited) until a peer of that
 * conversation has answered: then they are re-sealed above its top, if need
 * be, and released. Held messages take no slot meanwhile (they are outside
 * the sequence index), so our own messages that peers send back land in
 * their old slots. See docs/PROTOCOL.md, "Sequence reconciliation".
 */
import { randomBytes } from 'node:crypto'
import { openEnvelope, sealEnvelope, type SigningKeys } from '../../../core/crypto/envelope.js'
import { RECONCILE_META } from '../store/health.js'
import type { Envelope } from '../../../core/protocol/envelope.js'
import type { MessageStore, StoredMessage } from '../store/types.js'
import type { Logger } from '../../../core/util/log.js'

export interface ReconcilerComponents { store: MessageStore, identity: SigningKeys, log: Logger }

interface Mark { since: number, done?: string[] }

/** meta key: names this store's incarnation; renewed when damage is found (peers then forget what it held) */
const EPOCH_META = 'epoch'

export class Reconciler {
  private pending = false
  private since = 0
  private readonly done = new Set<string>()
  private epoch_ = ''

  constructor (private readonly c: ReconcilerComponents) {}

  /** Reads the mark left by a damaged start (or by `parley doctor`). */
  async start (): Promise<void> {
    const mark = await this.c.store.getMeta(RECONCILE_META) as Mark | undefined
    this.pending = mark !== undefined
    const epoch = await this.c.store.getMeta(EPOCH_META)
    // while marked (a damaged start), every start begins a new epoch: renewing is cheap, missing one loses messages
    if (typeof epoch === 'string' && mark === undefined) {
      this.epoch_ = epoch
    } else {
      this.epoch_ = randomBytes(9).toString('base64url')
      await this.c.store.putMeta(EPOCH_META, this.epoch_)
    }
    if (mark === undefined) return
    this.since = mark.since
    for (const conv of mark.done ?? []) this.done.add(conv)
  }

  /** This store's epoch, given to peers with our have-vector. */
  get epoch (): string { return this.epoch_ }

  /** Are our new messages in `conv` to be held until a peer answered? */
  holds (conv: string): boolean { return this.pending && !this.done.has(conv) }

  /**
   * A peer of `conv` holds our messages up to `top`: our counter goes above
   * it, and held messages are released (re-sealed above it where needed).
   * Returns the released messages.
   */
  async peerReported (conv: string, top: number): Promise<StoredMessage[]> {
    const release = this.holds(conv)
    const changed = await this.c.store.reconcileOwn(conv, this.c.identity.peerId, top, release, this.reseal)
    if (release) {
      this.done.add(conv)
      await this.saveMark()
      this.c.log.info('sequence numbers reconciled with a peer', { conv, top, released: changed.length })
    }
    return changed
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
    await this.c.store.putMeta(RECONCILE_META, { since: this.since, done: [...this.done] } satisfies Mark)
  }

  /** The same message (id, time, body, recipients) under a new seq: no one has seen a held message yet. */
  private readonly reseal = (m: StoredMessage, seq: number): Envelope => {
    const body = openEnvelope(this.c.identity, m.envelope)
    return sealEnvelope(this.c.identity, { id: m.id, conv: m.conv, seq, hlc: m.hlc, recipients: m.envelope.keys.map(k => k.to), body, kind: m.envelope.kind })
  }
}
