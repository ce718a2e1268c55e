/**
 * MessageStore on an abstract-level database. Every write that acknowledges
 * something to someone is one batch with `sync: true` (fsync before resolve).
 * Writes go through one queue, so read-check-write sequences (dedupe,
 * sequence assignment) never interleave.
 */
import type { AbstractLevel, AbstractSublevel } from 'abstract-level'
import { ParleyError } from '../errors.js'
import { compareHlc, hlcKey } from '../clock/hlc.js'
import { SerialQueue, throwIfAborted, type AbortOptions } from '../util/abort.js'
import type { Envelope, HaveVector } from '../protocol/wire.js'
import type { ConversationRecord, HistoryQuery, MessageStore, PeerRecord, StoredMessage } from './types.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Db = AbstractLevel<any, string, any>
type Sub<V> = AbstractSublevel<Db, any, string, V>

interface SeqState { contiguous: number, max: number }

/** @default 200 */
export const DEFAULT_HISTORY_LIMIT = 200
const SEP = '!'
const pad = (n: number): string => n.toString().padStart(16, '0')
const SYNC = { sync: true } as Record<string, unknown>

export class LevelStore implements MessageStore {
  private readonly db: Db
  private readonly meta: Sub<unknown>
  private readonly peers: Sub<PeerRecord>
  private readonly msgs: Sub<StoredMessage>
  private readonly hist: Sub<string>
  private readonly seqIdx: Sub<string>
  private readonly seqState: Sub<SeqState>
  private readonly outboxes: Sub<string>
  private readonly convs: Sub<ConversationRecord>
  private readonly queue = new SerialQueue()
  private started = false

  constructor (db: Db) {
    this.db = db
    const json = { valueEncoding: 'json' }
    this.meta = db.sublevel<string, unknown>('meta', json) as Sub<unknown>
    this.peers = db.sublevel<string, PeerRecord>('peers', json) as Sub<PeerRecord>
    this.msgs = db.sublevel<string, StoredMessage>('msg', json) as Sub<StoredMessage>
    this.hist = db.sublevel<string, string>('hist', json) as Sub<string>
    this.seqIdx = db.sublevel<string, string>('seqidx', json) as Sub<string>
    this.seqState = db.sublevel<string, SeqState>('seq', json) as Sub<SeqState>
    this.outboxes = db.sublevel<string, string>('outbox', json) as Sub<string>
    this.convs = db.sublevel<string, ConversationRecord>('conv', json) as Sub<ConversationRecord>
  }

  async start (): Promise<void> {
    if (this.started) return
    try {
      await this.db.open()
    } catch (err) {
      const code = (err as { code?: string, cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code
      if (code === 'LEVEL_LOCKED' || code === 'LEVEL_STATUS_LOCKED' || /lock/i.test(String((err as Error).cause ?? err))) {
        throw new ParleyError('ERR_DATA_DIR_LOCKED', 'the data directory is in use by another Parley process', { cause: err })
      }
      throw new ParleyError('ERR_STORE', `cannot open the store: ${(err as Error).message}`, { cause: err })
    }
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.queue.run(async () => { await this.db.close() })
  }

  async getMeta (key: string): Promise<unknown> { return await this.meta.get(key) }
  async putMeta (key: string, value: unknown): Promise<void> {
    await this.queue.run(async () => { await this.meta.put(key, value, SYNC) })
  }

  async getPeer (peerId: string): Promise<PeerRecord | undefined> { return await this.peers.get(peerId) }
  async putPeer (record: PeerRecord): Promise<void> {
    await this.queue.run(async () => { await this.peers.put(record.peerId, record) })
  }

  async listPeers (): Promise<PeerRecord[]> { return await this.peers.values().all() }

  async appendOutgoing (conv: string, author: string, recipients: string[], build: (seq: number) => StoredMessage, options: AbortOptions = {}): Promise<StoredMessage> {
    return await this.queue.run(async () => {
      throwIfAborted(options.signal)
      const state = await this.seqStateOf(conv, author)
      const msg = build(state.max + 1)
      if (msg.seq !== state.max + 1 || msg.conv !== conv || msg.author !== author) {
        throw new ParleyError('ERR_INTERNAL', 'built message does not match the assigned sequence')
      }
      const batch = this.db.batch()
      await this.putMessageOps(batch, msg, state)
      for (const peer of recipients) {
        batch.put(peer + SEP + pad(msg.seq) + SEP + msg.id, msg.id, { sublevel: this.outboxes })
      }
      await batch.write(SYNC)
      return msg
    })
  }

  async storeIncoming (msg: StoredMessage, options: AbortOptions = {}): Promise<'stored' | 'duplicate'> {
    return await this.queue.run(async () => {
      throwIfAborted(options.signal)
      if (await this.msgs.has(msg.id)) return 'duplicate'
      // a different id at a sequence number already taken is a replay or an equivocating author: keep the first
      if (await this.seqIdx.has(conv2(msg.conv, msg.author) + SEP + pad(msg.seq))) return 'duplicate'
      const state = await this.seqStateOf(msg.conv, msg.author)
      const batch = this.db.batch()
      await this.putMessageOps(batch, msg, state)
      await batch.write(SYNC)
      return 'stored'
    })
  }

  /** Adds the message, its history/sequence indexes, sequence state and conversation summary to `batch`. */
  private async putMessageOps (batch: ReturnType<Db['batch']>, msg: StoredMessage, state: SeqState): Promise<void> {
    const key = conv2(msg.conv, msg.author)
    batch.put(msg.id, msg, { sublevel: this.msgs })
    batch.put(msg.conv + SEP + hlcKey(msg.hlc, msg.id), msg.id, { sublevel: this.hist })
    batch.put(key + SEP + pad(msg.seq), msg.id, { sublevel: this.seqIdx })
    const next = { contiguous: state.contiguous, max: Math.max(state.max, msg.seq) }
    if (msg.seq === next.contiguous + 1) next.contiguous = msg.seq
    // later sequence numbers may already be here (stored out of order): the caller advances them lazily
    batch.put(key, next, { sublevel: this.seqState })
    const c = await this.convs.get(msg.conv)
    const newer = c === undefined || compareHlc(msg.hlc, c.lastHlc) >= 0
    batch.put(msg.conv, {
      conv: msg.conv,
      lastHlc: newer ? msg.hlc : c.lastHlc,
      lastText: newer ? msg.text.slice(0, 200) : c.lastText,
      unread: (c?.unread ?? 0) + (msg.outgoing ? 0 : 1)
    }, { sublevel: this.convs })
  }

  private async seqStateOf (conv: string, author: string): Promise<SeqState> {
    const key = conv2(conv, author)
    const s = (await this.seqState.get(key)) ?? { contiguous: 0, max: 0 }
    // advance over messages that arrived ahead of a gap which is now filled
    let c = s.contiguous
    while (c < s.max && await this.seqIdx.has(key + SEP + pad(c + 1))) c++
    return { contiguous: c, max: s.max }
  }

  async getMessage (id: string): Promise<StoredMessage | undefined> { return await this.msgs.get(id) }

  async history (conv: string, query: HistoryQuery = {}): Promise<StoredMessage[]> {
    const limit = query.limit ?? DEFAULT_HISTORY_LIMIT
    const needle = query.search?.toLowerCase()
    const out: StoredMessage[] = []
    for await (const id of this.hist.values({ gt: conv + SEP, lt: conv + SEP + '\xff', reverse: true })) {
      const m = await this.msgs.get(id)
      if (m === undefined) continue
      if (needle !== undefined && !m.text.toLowerCase().includes(needle)) continue
      out.push(m)
      if (out.length >= limit) break
    }
    return out.reverse()
  }

  async listConversations (): Promise<ConversationRecord[]> {
    const all = await this.convs.values().all()
    return all.sort((a, b) => b.lastHlc.w - a.lastHlc.w || b.lastHlc.c - a.lastHlc.c)
  }

  async outbox (peer: string, limit = 1000): Promise<StoredMessage[]> {
    const out: StoredMessage[] = []
    for await (const id of this.outboxes.values({ gt: peer + SEP, lt: peer + SEP + '\xff', limit })) {
      const m = await this.msgs.get(id)
      if (m !== undefined) out.push(m)
    }
    return out
  }

  async outboxSize (): Promise<number> {
    let n = 0
    for await (const _ of this.outboxes.keys()) n++
    return n
  }

  async outboxPeers (): Promise<string[]> {
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

  async markDelivered (ids: string[], peer: string): Promise<StoredMessage[]> {
    return await this.queue.run(async () => {
      const batch = this.db.batch()
      const changed: StoredMessage[] = []
      for (const id of ids) {
        const m = await this.msgs.get(id)
        if (m === undefined) continue
        batch.del(peer + SEP + pad(m.seq) + SEP + m.id, { sublevel: this.outboxes })
        if (m.outgoing && m.state === 'queued') {
          const delivered = { ...m, state: 'delivered' as const }
          batch.put(m.id, delivered, { sublevel: this.msgs })
          changed.push(delivered)
        }
      }
      await batch.write(SYNC)
      return changed
    })
  }

  async markSeen (conv: string): Promise<StoredMessage[]> {
    return await this.queue.run(async () => {
      const changed: StoredMessage[] = []
      const batch = this.db.batch()
      for await (const id of this.hist.values({ gt: conv + SEP, lt: conv + SEP + '\xff' })) {
        const m = await this.msgs.get(id)
        if (m === undefined || m.outgoing || m.state !== 'received') continue
        const seen = { ...m, state: 'seen' as const }
        batch.put(m.id, seen, { sublevel: this.msgs })
        changed.push(seen)
      }
      const c = await this.convs.get(conv)
      if (c !== undefined) batch.put(conv, { ...c, unread: 0 }, { sublevel: this.convs })
      await batch.write(SYNC)
      return changed
    })
  }

  async markRead (ids: string[]): Promise<StoredMessage[]> {
    return await this.queue.run(async () => {
      const changed: StoredMessage[] = []
      const batch = this.db.batch()
      for (const id of ids) {
        const m = await this.msgs.get(id)
        if (m === undefined || !m.outgoing || m.state === 'read') continue
        const read = { ...m, state: 'read' as const }
        batch.put(id, read, { sublevel: this.msgs })
        changed.push(read)
      }
      await batch.write(SYNC)
      return changed
    })
  }

  async haveVector (conv: string): Promise<HaveVector> {
    const have: HaveVector = {}
    for await (const key of this.seqState.keys({ gt: conv + SEP, lt: conv + SEP + '\xff' })) {
      const author = key.slice(conv.length + 1)
      have[author] = (await this.seqStateOf(conv, author)).contiguous
    }
    return have
  }

  async envelopesAfter (conv: string, author: string, afterSeq: number, limit = 1000): Promise<Envelope[]> {
    const key = conv2(conv, author)
    const out: Envelope[] = []
    for await (const id of this.seqIdx.values({ gt: key + SEP + pad(afterSeq), lt: key + SEP + '\xff', limit })) {
      const m = await this.msgs.get(id)
      if (m !== undefined) out.push(m.envelope)
    }
    return out
  }
}

const conv2 = (conv: string, author: string): string => conv + SEP + author
