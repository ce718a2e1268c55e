/**
 * MessageStore on an abstract-level database. Every write resolves only after
 * an fsynced (`sync: true`) batch holding all of it (group commit, see
 * group-commit.ts); writes are prepared one at a time, so read-check-write
 * sequences (dedupe, sequence assignment) never interleave.
 */
import { isDeepStrictEqual } from 'node:util'
import { type GroupCommit, LevelBackedStore, Tx, jsonSublevel, type Db, type Sub } from '../../../core/store/group-commit.js'
import { ParleyError } from '../../../core/errors.js'
import type { WriteLatchInit } from '../../../core/store/write-latch.js'
import { checkStore, type StoreCheck } from './check.js'
import { RECONCILE_META, readLevelLog, type ReconcileMark } from './health.js'
import { compareHlc, hlcKey } from '../clock/hlc.js'
import { throwIfAborted, type AbortOptions } from '../../../core/util/abort.js'
import { bodyFields, type Envelope } from '../../../core/protocol/envelope.js'
import type { HaveVector } from '../../../core/protocol/peer-rpc.js'
import {
  MAX_MOVES, type ConversationRecord, type HistoryQuery, type IncomingOptions, type MessageStore, type PeerRecord, type Reseal, type Route,
  type Sendable, type StoredMessage
} from './types.js'


/** per conv!author: first gap - 1, highest seq, and how many numbers are held (`n`: kept beside the store at a clean stop, to count loss) */
interface SeqState { contiguous: number, max: number, n?: number }

/** @default 200 */
export const DEFAULT_HISTORY_LIMIT = 200
const SEP = '!'
const pad = (n: number): string => n.toString().padStart(16, '0')
/** key of `peer`'s outbox entry (and deposit marker) for a message: peer!seq!id */
const entryKey = (peer: string, m: { seq: number, id: string }): string => peer + SEP + pad(m.seq) + SEP + m.id

/** how many later messages of the conversation a recall looks through for the recalled message's edits */
const MAX_EDIT_SCAN = 20_000

export class LevelStore extends LevelBackedStore implements MessageStore {
  private readonly peers: Sub<PeerRecord>
  private readonly msgs: Sub<StoredMessage>
  private readonly hist: Sub<string>
  private readonly seqIdx: Sub<string>
  private readonly seqState: Sub<SeqState>
  private readonly outboxes: Sub<string>
  /** peer!seq!id of outbox entries whose copy the relay holds for that peer */
  private readonly deposited: Sub<number>
  private readonly convs: Sub<ConversationRecord>
  /** conv!author!seq of held messages (not in seqidx: they hold no slot until released) */
  private readonly heldIdx: Sub<string>
  /** target id -> the recall that arrived before the message it recalls (erased when it comes) */
  private readonly recalls: Sub<string>
  /**
   * conv!author!seq -> id of the message the author moved away from that number (the move, see
   * resealOwn and storeIncoming); our own message given back into such a number is sent to its
   * recipients again (those that held the moved one there lack it)
   */
  private readonly movedIdx: Sub<string>
  /** highest provisional seq of held messages per conv!author, once read (staged ones are not on disk yet) */
  private readonly heldTops = new Map<string, number>()
  /** conv!author keys known to have no held message on disk (only appendOutgoing holds one; a check may rebuild them) */
  private readonly noneHeld = new Set<string>()
  /**
   * Ids a recall that came first waits for, on disk or staged: a superset (one erased stays until the next
   * start), so a message whose id is not here has no recall waiting and its store reads nothing for it.
   */
  private recallTargets = new Set<string>()

  constructor (db: Db, latchInit?: WriteLatchInit) {
    super(db, 'Parley', latchInit)
    this.peers = jsonSublevel(db, 'peers')
    this.msgs = jsonSublevel(db, 'msg')
    this.hist = jsonSublevel(db, 'hist')
    this.seqIdx = jsonSublevel(db, 'seqidx')
    this.seqState = jsonSublevel(db, 'seq')
    // read for every message stored or sent: kept in memory, written through (group-commit.ts)
    this.gc.cache(this.seqState)
    this.outboxes = jsonSublevel(db, 'outbox')
    this.deposited = jsonSublevel(db, 'deposited')
    this.convs = jsonSublevel(db, 'conv')
    this.gc.cache(this.convs)
    this.heldIdx = jsonSublevel(db, 'heldidx')
    this.recalls = jsonSublevel(db, 'recall')
    this.movedIdx = jsonSublevel(db, 'moved')
  }

  /** Loads the ids a recall waits for (a handful): a message stored reads no recall index unless its id is one. */
  protected override async opened (): Promise<void> {
    this.recallTargets = new Set(await this.recalls.keys().all())
    // the database may have changed while it was closed: what was remembered of the held index is read again
    this.noneHeld.clear()
    this.heldTops.clear()
  }

  /**
   * The check after a latched store was reopened: records LevelDB dropped
   * while replaying the log mean loss; the indexes are rebuilt and the store
   * marked, so the next start reports it and reconciles with peers.
   */
  protected override async reopened (): Promise<void> {
    const location = (this.db as { location?: string }).location
    if (location === undefined) return
    const log = await readLevelLog(location)
    if (log.droppedBytes === 0) return
    // not through the group commit: this runs inside the write that is reopening the store.
    // The evidence first (synced), then the check
    const old = await this.meta.get(RECONCILE_META) as ReconcileMark | undefined
    const mark: ReconcileMark = {
      ...old,
      since: old?.since ?? Date.now(),
      reasons: [...(old?.reasons ?? []), `LevelDB dropped ${log.droppedBytes} bytes when the store was reopened after a failed write`],
      uncounted: [...(old?.uncounted ?? []), `LevelDB dropped ${log.droppedBytes} bytes`]
    }
    await this.meta.put(RECONCILE_META, mark, { sync: true } as never)
    const check = await checkStore(this.db, true)
    this.gc.forgetCache()
    this.noneHeld.clear()
    if (check.lost > 0) await this.meta.put(RECONCILE_META, { ...mark, lost: (mark.lost ?? 0) + check.lost }, { sync: true } as never)
  }

  /** Checks the indexes against the messages (see check.ts); with `fix`, repairs them. Run before messaging starts. */
  async check (fix: boolean, counts?: Record<string, number>): Promise<StoreCheck> {
    await this.gc.drain()
    try {
      return await checkStore(this.db, fix, counts)
    } finally {
      // the check writes its fixes beside the group commit
      this.gc.forgetCache()
      this.noneHeld.clear()
    }
  }

  /**
   * How many sequence numbers each conv!author holds (where counted): kept
   * beside the database at a clean stop, so loss can be counted after damage.
   */
  async seqCounts (): Promise<Record<string, number>> {
    await this.gc.drain()
    const counts: Record<string, number> = {}
    for await (const [key, s] of this.seqState.iterator()) if (s.n !== undefined) counts[key] = s.n
    return counts
  }

  async getPeer (peerId: string): Promise<PeerRecord | undefined> { await this.readable(); return await this.gc.read(this.peers, peerId) }
  async putPeer (record: PeerRecord): Promise<void> {
    await this.gc.write(async (tx) => { tx.put(this.peers, record.peerId, record) })
  }

  async listPeers (): Promise<PeerRecord[]> { await this.readable(); return await this.peers.values().all() }

  async appendOutgoing (
    conv: string, author: string, recipients: string[], build: (seq: number) => StoredMessage, options: AbortOptions = {}
  ): Promise<StoredMessage> {
    return await this.gc.write(async (tx) => {
      throwIfAborted(options.signal)
      const state = await this.seqStateOf(tx, conv, author)
      // held messages (not sent yet) take provisional numbers, in order, outside the sequence index
      const key = conv2(conv, author)
      const heldTop = this.heldTops.get(key) ?? await this.heldTopOnDisk(key, conv, author)
      const next = Math.max(state.max, heldTop) + 1
      const msg = build(next)
      if (msg.seq !== next || msg.conv !== conv || msg.author !== author) {
        throw new ParleyError('ERR_INTERNAL', 'built message does not match the assigned sequence')
      }
      if (msg.held === true) {
        this.noneHeld.delete(key)
        tx.put(this.heldIdx, key + SEP + pad(msg.seq), msg.id)
        // a write failing after this leaves a gap in provisional numbers only: release renumbers them
        this.heldTops.set(key, msg.seq)
      }
      await this.putMessage(tx, msg, state, msg.held !== true)
      for (const peer of recipients) tx.put(this.outboxes, entryKey(peer, msg), msg.id)
      return msg
    })
  }

  async storeIncoming (msg: StoredMessage, options: IncomingOptions = {}): Promise<'stored' | 'moved' | 'duplicate' | 'conflict' | 'id-conflict'> {
    // a duplicate of a copy that is staged but not yet on disk is answered once that copy's write is done
    // (and fails with it): the sender may drop its copy on a 'duplicate'
    let staged: Promise<void> | undefined
    const outcome = await this.gc.write(async (tx) => {
      throwIfAborted(options.signal)
      const same = await tx.get(this.msgs, msg.id)
      // the same id from another author or conversation is not this message: someone reused the id
      if (same !== undefined) {
        if (same.author !== msg.author || same.conv !== msg.conv) return 'id-conflict'
        // the author moved it to a higher number (the caller verified its signature): it follows
        if (msg.seq > same.seq) return sameMessage(same, msg) ? await this.moveIn(tx, same, msg, options.self) : 'id-conflict'
        // the same copy, or an older one of a message that moved since: held here already
        staged = this.gc.pending(this.msgs, msg.id)
        return 'duplicate'
      }
      // a different id at a sequence number already taken: an author that restored an old backup,
      // or one that equivocates. Keep the first; the caller refuses the second (it is not held here)
      if (await tx.has(this.seqIdx, conv2(msg.conv, msg.author) + SEP + pad(msg.seq))) return 'conflict'
      await this.putMessage(tx, msg, await this.seqStateOf(tx, msg.conv, msg.author))
      if (options.self !== undefined && msg.author === options.self) await this.requeueIntoFreed(tx, msg, options.self, options.sendable)
      return 'stored' as const
    })
    if (staged !== undefined) await staged
    return outcome
  }

  /**
   * The move, at a receiver: `msg` is `same` re-signed by its author at a
   * higher number. It takes that number (unless another message holds it:
   * 'conflict') and frees its old one, where the message the author's store
   * lost can land. Local state (read, routes, recalled) stays.
   */
  private async moveIn (tx: Tx, same: StoredMessage, msg: StoredMessage, self: string | undefined): Promise<'moved' | 'conflict'> {
    const key = conv2(msg.conv, msg.author)
    const to = key + SEP + pad(msg.seq)
    const holder = await tx.get(this.seqIdx, to)
    if (holder !== undefined && holder !== msg.id) return 'conflict'
    const state = await this.seqStateOf(tx, msg.conv, msg.author)
    const from = key + SEP + pad(same.seq)
    if (await tx.get(this.seqIdx, from) === same.id) tx.del(this.seqIdx, from)
    tx.put(this.seqIdx, to, msg.id)
    // only where the freed number can be used (our own message given back there is queued again: requeueIntoFreed)
    if (msg.author === self) tx.put(this.movedIdx, from, msg.id)
    tx.put(this.msgs, msg.id, { ...same, seq: msg.seq, envelope: msg.envelope })
    const next: SeqState = { contiguous: Math.min(state.contiguous, same.seq - 1), max: Math.max(state.max, msg.seq) }
    tx.put(this.seqState, key, state.n !== undefined ? { ...next, n: state.n } : next)
    return 'moved'
  }

  /**
   * Our own message given back into a number a move freed (resealOwn): the
   * recipients that held the moved message there lack this one, and their
   * have-vectors may not say so yet. It is queued for each of them again (a
   * recipient that has it answers 'duplicate').
   */
  private async requeueIntoFreed (tx: Tx, msg: StoredMessage, self: string, sendable: Sendable | undefined): Promise<void> {
    const slot = conv2(msg.conv, msg.author) + SEP + pad(msg.seq)
    if (await tx.get(this.movedIdx, slot) === undefined) return
    tx.del(this.movedIdx, slot)
    for (const k of msg.envelope.keys) {
      if (k.to !== self && (sendable?.(k.to) ?? true)) tx.put(this.outboxes, entryKey(k.to, msg), msg.id)
    }
  }

  /** Writes the message, its history/sequence indexes (`indexed`: not for a held one), sequence state and conversation summary. */
  private async putMessage (tx: Tx, given: StoredMessage, state: SeqState, indexed = true): Promise<void> {
    const key = conv2(given.conv, given.author)
    const msg = await this.eraseRecalled(tx, given)
    tx.put(this.msgs, msg.id, msg)
    tx.put(this.hist, msg.conv + SEP + hlcKey(msg.hlc, msg.id), msg.id)
    if (indexed) {
      tx.put(this.seqIdx, key + SEP + pad(msg.seq), msg.id)
      const next: SeqState = { contiguous: state.contiguous, max: Math.max(state.max, msg.seq) }
      if (msg.seq === next.contiguous + 1) next.contiguous = msg.seq
      // (a record from before the count stays without one until the next store check)
      if (state.n !== undefined) next.n = state.n + 1
      // later sequence numbers may already be here (stored out of order): seqStateOf advances over them
      tx.put(this.seqState, key, next)
    }
    const c = await tx.get(this.convs, msg.conv)
    const newer = c === undefined || compareHlc(msg.hlc, c.lastHlc) >= 0
    tx.put(this.convs, msg.conv, {
      conv: msg.conv,
      lastHlc: newer ? msg.hlc : c.lastHlc,
      lastText: newer ? msg.text.slice(0, 200) : c.lastText,
      unread: (c?.unread ?? 0) + (msg.outgoing ? 0 : 1)
    })
  }

  /**
   * Recall (撤回) erases: the recalled message's text and the text of its edits are removed from the store,
   * whichever arrives first (its signed envelope stays, sealed, so peers that lack it can still be given it in
   * sequence). Returns `msg` as it is to be stored.
   */
  private async eraseRecalled (tx: Tx, msg: StoredMessage): Promise<StoredMessage> {
    const change = msg.change
    const sameAuthor = (target: StoredMessage): boolean => target.author === msg.author && target.conv === msg.conv
    if (change === undefined) {
      // a recall that came first
      if (msg.op !== undefined || !this.recallTargets.has(msg.id) || await tx.get(this.recalls, msg.id) === undefined) return msg
      const recall = await tx.get(this.msgs, await tx.get(this.recalls, msg.id) as string)
      if (recall === undefined || !sameAuthor(recall)) return msg
      tx.del(this.recalls, msg.id)
      return { ...msg, text: '', recalled: true }
    }
    const target = await tx.get(this.msgs, change.id)
    if (change.type === 'edit') return target?.recalled === true && sameAuthor(target) ? { ...msg, text: '' } : msg
    if (target === undefined) { this.recallTargets.add(change.id); tx.put(this.recalls, change.id, msg.id); return msg }
    if (!sameAuthor(target) || target.op !== undefined || target.change !== undefined || target.recalled === true) return msg
    tx.put(this.msgs, target.id, { ...target, text: '', recalled: true })
    // its edits come after it in the conversation (bounded: a recall is only allowed within its window)
    let looked = 0
    for await (const id of this.hist.values({ gt: target.conv + SEP + hlcKey(target.hlc, target.id), lt: target.conv + SEP + '\xff' })) {
      if (++looked > MAX_EDIT_SCAN) break
      const m = await tx.get(this.msgs, id)
      if (m?.change?.type === 'edit' && m.change.id === target.id && sameAuthor(m) && m.text !== '') tx.put(this.msgs, m.id, { ...m, text: '' })
    }
    const c = await tx.get(this.convs, target.conv)
    if (c !== undefined && compareHlc(c.lastHlc, target.hlc) === 0) tx.put(this.convs, target.conv, { ...c, lastText: '' })
    return msg
  }

  private async seqStateOf (tx: Tx | GroupCommit, conv: string, author: string): Promise<SeqState> {
    const key = conv2(conv, author)
    const get = async <V>(sub: Sub<V>, k: string): Promise<V | undefined> => tx instanceof Tx ? await tx.get(sub, k) : await tx.read(sub, k)
    const s = (await get(this.seqState, key)) ?? { contiguous: 0, max: 0, n: 0 }
    // advance over messages that arrived ahead of a gap which is now filled
    let c = s.contiguous
    while (c < s.max && await get(this.seqIdx, key + SEP + pad(c + 1)) !== undefined) c++
    return { contiguous: c, max: s.max, ...(s.n !== undefined ? { n: s.n } : {}) }
  }

  async getMessage (id: string): Promise<StoredMessage | undefined> { await this.readable(); return await this.gc.read(this.msgs, id) }
  pendingWrite (id: string): Promise<void> | undefined { return this.gc.pending(this.msgs, id) }

  async history (conv: string, query: HistoryQuery = {}): Promise<StoredMessage[]> {
    await this.readable()
    const limit = query.limit ?? DEFAULT_HISTORY_LIMIT
    const needle = query.search?.toLowerCase()
    const out: StoredMessage[] = []
    const lt = query.before === undefined ? conv + SEP + '\xff' : conv + SEP + hlcKey(query.before.hlc, query.before.id)
    for await (const id of this.hist.values({ gt: conv + SEP, lt, reverse: true })) {
      const m = await this.msgs.get(id)
      if (m === undefined) continue
      if (needle !== undefined && !m.text.toLowerCase().includes(needle)) continue
      out.push(m)
      if (out.length >= limit) break
    }
    return out.reverse()
  }

  async listConversations (): Promise<ConversationRecord[]> {
    await this.readable()
    const all = await this.convs.values().all()
    return all.sort((a, b) => b.lastHlc.w - a.lastHlc.w || b.lastHlc.c - a.lastHlc.c)
  }

  async depositedFor (peer: string, msgs: ReadonlyArray<Pick<StoredMessage, 'id' | 'seq'>>): Promise<Set<string>> {
    await this.readable()
    const keys = msgs.map(m => entryKey(peer, m))
    const found = await this.deposited.getMany(keys)
    return new Set(msgs.filter((_, i) => found[i] !== undefined).map(m => m.id))
  }

  async outbox (peer: string, limit = 1000, after?: { seq: number, id: string }): Promise<StoredMessage[]> {
    await this.readable()
    const out: StoredMessage[] = []
    // keys are peer!seq!id; several conversations can use the same seq, so page by the whole key
    const gt = after === undefined ? peer + SEP : entryKey(peer, after)
    for await (const id of this.outboxes.values({ gt, lt: peer + SEP + '\xff', limit })) {
      const m = await this.msgs.get(id)
      if (m !== undefined) out.push(m)
    }
    return out
  }

  async outboxSize (): Promise<number> {
    await this.readable()
    let n = 0
    for await (const _ of this.outboxes.keys()) n++
    return n
  }

  async outboxPeers (): Promise<string[]> {
    await this.readable()
    const peers: string[] = []
    let from = ''
    for (;;) {
      // skip-scan: one seek per peer, not one step per queued message
      const [key] = await this.outboxes.keys({ gt: from, limit: 1 }).all()
      if (key === undefined) return peers
      const peer = key.slice(0, key.indexOf(SEP))
      peers.push(peer)
      from = peer + SEP + '\xff'
    }
  }

  async markDelivered (ids: string[], peer: string, routes?: ReadonlyMap<string, Route>, seqs?: ReadonlyMap<string, number>): Promise<StoredMessage[]> {
    return await this.gc.write(async (tx) => {
      const changed: StoredMessage[] = []
      for (const id of ids) {
        let m = await tx.get(this.msgs, id)
        if (m === undefined) continue
        // the ack of a copy sent before the message moved: the moved copy is still owed to the peer
        const sent = seqs?.get(id)
        if (sent !== undefined && sent !== m.seq) continue
        const route = routes?.get(id)
        // the first confirmation says how it got there; one coming later (a duplicate) changes nothing
        if (m.outgoing && route !== undefined && m.routes?.[peer] === undefined && await tx.has(this.outboxes, entryKey(peer, m))) {
          m = { ...m, routes: { ...m.routes, [peer]: route } }
          tx.put(this.msgs, id, m)
        }
        this.dropEntry(tx, peer, m)
        const delivered = await this.deliveredIfSettled(tx, m, peer)
        if (delivered !== undefined) changed.push(delivered)
      }
      return changed
    })
  }

  /** Deletes `peer`'s outbox entry for `m` and its deposit marker. */
  private dropEntry (tx: Tx, peer: string, m: StoredMessage): void {
    const key = entryKey(peer, m)
    tx.del(this.outboxes, key)
    tx.del(this.deposited, key)
  }

  /** Does a recipient other than `except` still have an outbox entry for `m`? */
  private async othersWaiting (tx: Tx, m: StoredMessage, except?: string): Promise<boolean> {
    for (const k of m.envelope?.keys ?? []) {
      if (k.to !== except && await tx.has(this.outboxes, entryKey(k.to, m))) return true
    }
    return false
  }

  /**
   * By account (StoredMessage.recipientAccounts): is every recipient account settled, one of its devices
   * holding it or every one refusing it? `peer` has just settled.
   */
  private async accountsSettled (tx: Tx, m: StoredMessage, peer: string, map: Record<string, string>): Promise<boolean> {
    const refused = new Set(m.refusedBy ?? [])
    const byAccount = new Map<string, string[]>()
    for (const [d, a] of Object.entries(map)) byAccount.set(a, [...(byAccount.get(a) ?? []), d])
    for (const devices of byAccount.values()) {
      let holds = false
      for (const d of devices) {
        if (refused.has(d)) continue
        if (d === peer || !await tx.has(this.outboxes, entryKey(d, m))) { holds = true; break }
      }
      if (!holds && !devices.every(d => refused.has(d))) return false
    }
    return true
  }

  /** A message is delivered once no recipient is waiting any more (for a group: every recipient settled). */
  private async deliveredIfSettled (tx: Tx, m: StoredMessage, peer: string): Promise<StoredMessage | undefined> {
    if (!m.outgoing || (m.state !== 'queued' && m.state !== 'sent')) return undefined
    if (m.recipientAccounts !== undefined) {
      if (!await this.accountsSettled(tx, m, peer, m.recipientAccounts)) return undefined
    } else if (await this.othersWaiting(tx, m, peer)) return undefined
    const delivered = { ...m, state: 'delivered' as const }
    tx.put(this.msgs, m.id, delivered)
    return delivered
  }

  async markFailed (id: string, peer: string, error: string): Promise<StoredMessage | undefined> {
    return await this.gc.write(async (tx) => {
      const m = await tx.get(this.msgs, id)
      if (m === undefined) return undefined
      this.dropEntry(tx, peer, m)
      const map = m.recipientAccounts
      // one of our own other devices is no recipient: its refusal fails nothing
      if (map !== undefined && map[peer] === undefined) return undefined
      // the author's own key wrap (its copy, for a refetch after damage) is no recipient
      const recipients = map !== undefined ? Object.keys(map) : m.envelope.keys.filter(k => k.to !== m.author).map(k => k.to)
      // a group message refused by one member (or a message refused by one device of an account) still
      // reaches the others: it fails only when every recipient device refused it; once no one is waiting
      // and someone took it, it is delivered
      if (recipients.length > 1 || map !== undefined) {
        const refusedBy = [...new Set([...(m.refusedBy ?? []), peer])]
        const noted = { ...m, refusedBy }
        if (recipients.some(d => !refusedBy.includes(d))) {
          tx.put(this.msgs, id, noted)
          return await this.deliveredIfSettled(tx, noted, peer)
        }
        if (!m.outgoing || m.state === 'failed') return undefined
        const failed = { ...noted, state: 'failed' as const, error }
        tx.put(this.msgs, id, failed)
        return failed
      }
      const failed = { ...m, state: 'failed' as const, error }
      tx.put(this.msgs, id, failed)
      return failed
    })
  }

  async markSent (items: Array<string | { id: string, peers: string[], seq?: number }>): Promise<StoredMessage[]> {
    return await this.gc.write(async (tx) => {
      const changed: StoredMessage[] = []
      for (const item of items) {
        const id = typeof item === 'string' ? item : item.id
        const m = await tx.get(this.msgs, id)
        if (m === undefined || !m.outgoing) continue
        // remember for whom the relay holds a copy, while they still wait for it (not a copy from before a move)
        const current = typeof item === 'string' || item.seq === undefined || item.seq === m.seq
        for (const peer of typeof item === 'string' || !current ? [] : item.peers) {
          const key = entryKey(peer, m)
          if (await tx.has(this.outboxes, key)) tx.put(this.deposited, key, 1)
        }
        if (m.state !== 'queued') continue
        const sent = { ...m, state: 'sent' as const }
        tx.put(this.msgs, id, sent)
        changed.push(sent)
      }
      return changed
    })
  }

  async noteRelayRefusal (ids: string[], code: string): Promise<StoredMessage[]> {
    return await this.gc.write(async (tx) => {
      const changed: StoredMessage[] = []
      for (const id of ids) {
        const m = await tx.get(this.msgs, id)
        if (m === undefined || !m.outgoing || m.state !== 'queued' || m.relayRefusal === code) continue
        const noted = { ...m, relayRefusal: code }
        tx.put(this.msgs, id, noted)
        changed.push(noted)
      }
      return changed
    })
  }

  async markSeen (conv: string): Promise<StoredMessage[]> {
    return await this.gc.write(async (tx) => {
      const changed: StoredMessage[] = []
      for await (const id of this.hist.values({ gt: conv + SEP, lt: conv + SEP + '\xff' })) {
        const m = await tx.get(this.msgs, id)
        if (m === undefined || m.outgoing || m.state !== 'received') continue
        const seen = { ...m, state: 'seen' as const }
        tx.put(this.msgs, m.id, seen)
        changed.push(seen)
      }
      // messages still being written are not listed above; they stay unread
      const c = await tx.get(this.convs, conv)
      if (c !== undefined) tx.put(this.convs, conv, { ...c, unread: Math.max(0, c.unread - changed.length) })
      return changed
    })
  }

  async markRead (ids: string[], peer: string): Promise<StoredMessage[]> {
    return await this.gc.write(async (tx) => {
      const changed: StoredMessage[] = []
      for (const id of ids) {
        const m = await tx.get(this.msgs, id)
        if (m === undefined || !m.outgoing || m.state === 'failed') continue
        // only a recipient can have read it; and having read it, it has it (its ack may still be on the way)
        const recipients = (m.envelope?.keys ?? []).filter(k => k.to !== m.author)
        if (!recipients.some(k => k.to === peer)) continue
        // in a group, who has read it (message info shows it member by member)
        const noted = recipients.length > 1 && m.readBy?.includes(peer) !== true ? { ...m, readBy: [...(m.readBy ?? []), peer] } : m
        if (noted.state === 'read') {
          if (noted !== m) { tx.put(this.msgs, id, noted); changed.push(noted) }
          continue
        }
        // a moved message: the receipt may be for the old copy; only the ack of the moved one drops its entry
        if (m.moved !== true) this.dropEntry(tx, peer, m)
        // read by one member is not read by the group while another has not even got it
        if (await this.othersWaiting(tx, m, peer)) {
          if (noted !== m) { tx.put(this.msgs, id, noted); changed.push(noted) }
          continue
        }
        const read = { ...noted, state: 'read' as const }
        tx.put(this.msgs, id, read)
        changed.push(read)
      }
      return changed
    })
  }

  async haveVector (conv: string): Promise<HaveVector> {
    await this.readable()
    const have: HaveVector = {}
    for await (const key of this.seqState.keys({ gt: conv + SEP, lt: conv + SEP + '\xff' })) {
      const author = key.slice(conv.length + 1)
      have[author] = (await this.seqStateOf(this.gc, conv, author)).contiguous
    }
    return have
  }

  async envelopesAfter (conv: string, author: string, afterSeq: number, limit = 1000): Promise<Envelope[]> {
    await this.readable()
    const key = conv2(conv, author)
    const out: Envelope[] = []
    for await (const id of this.seqIdx.values({ gt: key + SEP + pad(afterSeq), lt: key + SEP + '\xff', limit })) {
      const m = await this.msgs.get(id)
      if (m !== undefined && m.held !== true) out.push(m.envelope)
    }
    return out
  }

  async topEnvelope (conv: string, author: string): Promise<Envelope | undefined> {
    await this.readable()
    const key = conv2(conv, author)
    for await (const id of this.seqIdx.values({ gt: key + SEP, lt: key + SEP + '\xff', reverse: true, limit: 16 })) {
      const m = await this.msgs.get(id)
      if (m !== undefined && m.held !== true) return m.envelope
    }
    return undefined
  }

  async envelopeAt (conv: string, author: string, seq: number): Promise<Envelope | undefined> {
    await this.readable()
    const id = await this.seqIdx.get(conv2(conv, author) + SEP + pad(seq))
    if (id === undefined) return undefined
    const m = await this.msgs.get(id)
    return m === undefined || m.held === true ? undefined : m.envelope
  }

  async haveAndTops (conv: string): Promise<{ have: HaveVector, tops: HaveVector }> {
    await this.readable()
    const have: HaveVector = {}
    const tops: HaveVector = {}
    for await (const key of this.seqState.keys({ gt: conv + SEP, lt: conv + SEP + '\xff' })) {
      const author = key.slice(conv.length + 1)
      const s = await this.seqStateOf(this.gc, conv, author)
      have[author] = s.contiguous
      tops[author] = s.max
    }
    return { have, tops }
  }

  async reconcileOwn (conv: string, author: string, top: number, release: () => boolean, reseal: Reseal): Promise<StoredMessage[]> {
    return await this.gc.write(async (tx) => {
      const key = conv2(conv, author)
      const state = await this.seqStateOf(tx, conv, author)
      const changed: StoredMessage[] = []
      // released above every slot known here and every one the peer holds, in order: no one has seen them yet
      let next = Math.max(top, state.max)
      // asked first, in this turn: a send prepared after this one is decided against the same answer.
      // Then every held message goes out (staged here: heldTops; on disk: heldidx), one held by a send
      // that raced an earlier release too
      if (release() && (this.heldTops.has(key) || await this.anyHeld(key))) {
        // heldOf reads the disk: let what is staged before this write land first
        await this.gc.idle()
        for (const m of await this.heldOf(conv, author)) {
          const seq = ++next
          const moved: StoredMessage = { ...m, seq, envelope: seq === m.seq ? m.envelope : reseal(m, seq) }
          delete moved.held
          tx.del(this.heldIdx, key + SEP + pad(m.seq))
          tx.put(this.seqIdx, key + SEP + pad(seq), m.id)
          if (seq !== m.seq) {
            for (const k of m.envelope.keys) {
              const old = entryKey(k.to, m)
              if (await tx.has(this.outboxes, old)) { tx.del(this.outboxes, old); tx.put(this.outboxes, entryKey(k.to, moved), m.id) }
            }
          }
          tx.put(this.msgs, m.id, moved)
          changed.push(moved)
        }
        this.heldTops.delete(key)
      }
      // the counter never again gives out a number the peer holds
      if (next !== state.max) {
        tx.put(this.seqState, key, { contiguous: state.contiguous, max: next, ...(state.n !== undefined ? { n: state.n + changed.length } : {}) })
      }
      return changed
    })
  }

  async resealOwn (id: string, seq: number, top: number, reseal: Reseal, sendable?: Sendable): Promise<StoredMessage | 'capped' | undefined> {
    return await this.gc.write(async (tx) => {
      const m = await tx.get(this.msgs, id)
      if (m === undefined || !m.outgoing || m.held === true) return undefined
      // moved already (another refusal of the same copy, in the same window)
      if (m.seq !== seq) return m
      // the peer proves nothing at this number: it keeps it
      if (top < seq) return undefined
      // a loop (a broken store of ours, a bug): it moves no more, and keeps its number
      if ((m.moves ?? 0) >= MAX_MOVES) return 'capped'
      const key = conv2(m.conv, m.author)
      const state = await this.seqStateOf(tx, m.conv, m.author)
      const next = Math.max(top, state.max) + 1
      // `moved`: a read receipt of the old copy no longer drops an entry (markRead)
      const moved: StoredMessage = { ...m, seq: next, envelope: reseal(m, next), moved: true, moves: (m.moves ?? 0) + 1 }
      const from = key + SEP + pad(seq)
      if (await tx.get(this.seqIdx, from) === id) tx.del(this.seqIdx, from)
      tx.put(this.seqIdx, key + SEP + pad(next), id)
      tx.put(this.movedIdx, from, id)
      // every recipient device gets the moved copy, also those that hold the old one (they move it and
      // free the old number) and those the relay holds the old one for; not those that refused it for good,
      // nor our own revoked devices (`sendable`)
      const refused = new Set(m.refusedBy ?? [])
      for (const k of m.envelope.keys) {
        if (k.to === m.author) continue
        this.dropEntry(tx, k.to, m)
        if (!refused.has(k.to) && (sendable?.(k.to) ?? true)) tx.put(this.outboxes, entryKey(k.to, moved), id)
      }
      tx.put(this.msgs, id, moved)
      // the old number is free again (our own message there comes back from the peer); the counter goes above both
      tx.put(this.seqState, key, { contiguous: Math.min(state.contiguous, seq - 1), max: next, ...(state.n !== undefined ? { n: state.n } : {}) })
      return moved
    })
  }

  /** The highest provisional number held on disk for conv!author (0: none); "none" is remembered, so a send reads nothing. */
  private async heldTopOnDisk (key: string, conv: string, author: string): Promise<number> {
    if (this.noneHeld.has(key)) return 0
    const top = (await this.heldOf(conv, author)).at(-1)?.seq ?? 0
    if (top === 0) this.noneHeld.add(key)
    return top
  }

  /** Has conv!author held messages on disk? */
  private async anyHeld (key: string): Promise<boolean> {
    return (await this.heldIdx.keys({ gt: key + SEP, lt: key + SEP + '\xff', limit: 1 }).all()).length > 0
  }

  /** `author`'s held messages in `conv`, in provisional seq order. */
  private async heldOf (conv: string, author: string): Promise<StoredMessage[]> {
    const key = conv2(conv, author)
    const out: StoredMessage[] = []
    for await (const id of this.heldIdx.values({ gt: key + SEP, lt: key + SEP + '\xff' })) {
      const m = await this.gc.read(this.msgs, id)
      if (m !== undefined) out.push(m)
    }
    return out
  }

}

const conv2 = (conv: string, author: string): string => conv + SEP + author

/**
 * Is `msg` (a copy at a higher number) the message `same` held here? The
 * same time, kind and body: text, op, reply, change (all but seq and
 * signature). The text is not compared where a recall erased it here (the
 * recalled message, and its edits).
 */
function sameMessage (same: StoredMessage, msg: StoredMessage): boolean {
  const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v ?? null))
  if (same.hlc.w !== msg.hlc.w || same.hlc.c !== msg.hlc.c) return false
  if (same.envelope.kind !== msg.envelope.kind) return false
  if (!isDeepStrictEqual(plain(bodyFields(same)), plain(bodyFields(msg)))) return false
  const erased = same.recalled === true || (same.text === '' && same.change?.type === 'edit')
  return erased || same.text === msg.text
}
