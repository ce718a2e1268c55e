/**
 * Consistency check of a node's message store after damage. Messages (`msg`)
 * are the source of truth; the indexes are rebuilt from them: a history or
 * sequence entry whose message is gone counts that message as lost here (peers
 * send it back by sync), a message without its entries gets them again, and
 * every sequence state is recounted (its `max` never goes down while its
 * record survives, so a lost message of our own never gives its number to a
 * new one; where the record itself was lost, peers restore the counter).
 *
 * Loss is also counted against what the store held at its last clean stop
 * (`counts`, kept beside the database by health.ts recordLogSizes): the index
 * entries go down with their messages when a log or a table is lost, so only
 * a record from outside the database can say how many went.
 *
 * Memory: one small record per message (ids, numbers, time; no envelopes or
 * texts), and the fixes are written in bounded batches.
 */
import type { Db, Sub } from '../../../core/store/group-commit.js'
import { compareHlc, hlcKey } from '../clock/hlc.js'
import type { Hlc } from '../../../core/protocol/envelope.js'
import type { ConversationRecord, StoredMessage } from './types.js'

export interface StoreCheck {
  /** messages held */
  messages: number
  /**
   * messages known to be lost here: named by an index but gone, or missing
   * against the counts of the last clean stop. A lower bound: what was
   * written since that stop and lost with it is not counted.
   */
  lost: number
  /** index entries written or removed (with `fix`), or that would be */
  fixes: number
}

const SEP = '!'
const pad = (n: number): string => n.toString().padStart(16, '0')
interface SeqState { contiguous: number, max: number, n?: number }
/** what the check keeps of a message */
interface Slim { conv: string, author: string, seq: number, hlc: Hlc, held: boolean }
/** fixes per batch */
const FIX_BATCH = 5000

type Op = { type: 'put' | 'del', sublevel: unknown, key: string, value?: unknown }

/**
 * Checks (and with `fix`, repairs, in synced batches) the indexes of the open
 * database `db`. `counts`: sequence numbers held per conv!author at the last
 * clean stop.
 */
export async function checkStore (db: Db, fix: boolean, counts?: Record<string, number>): Promise<StoreCheck> {
  // plain sublevels (not jsonSublevel's, which a reopen of the store would keep reopening)
  const sublevel = <V>(name: string): Sub<V> => db.sublevel<string, V>(name, { valueEncoding: 'json' }) as unknown as Sub<V>
  const msgs = sublevel<StoredMessage>('msg')
  const hist = sublevel<string>('hist')
  const seqIdx = sublevel<string>('seqidx')
  const heldIdx = sublevel<string>('heldidx')
  const seqState = sublevel<SeqState>('seq')
  const outboxes = sublevel<string>('outbox')
  const deposited = sublevel<number>('deposited')
  const convs = sublevel<ConversationRecord>('conv')
  let fixes = 0
  let ops: Op[] = []
  const push = async (...more: Op[]): Promise<void> => {
    fixes += more.length
    if (!fix) return
    ops.push(...more)
    if (ops.length >= FIX_BATCH) await flush()
  }
  const flush = async (): Promise<void> => {
    if (ops.length === 0) return
    const batch = ops
    ops = []
    await db.batch(batch as never, { sync: true } as never)
  }
  const lost = new Set<string>()

  const held = new Map<string, Slim>()
  for await (const [id, m] of msgs.iterator()) held.set(id, { conv: m.conv, author: m.author, seq: m.seq, hlc: m.hlc, held: m.held === true })

  // dangling entries: their message is gone; entries kept, by key
  const histKeys = new Map<string, string>()
  for await (const [k, id] of hist.iterator()) {
    if (held.has(id)) histKeys.set(k, id)
    else { lost.add(id); await push({ type: 'del', sublevel: hist, key: k }) }
  }
  const seqKeys = new Map<string, string>()
  for await (const [k, id] of seqIdx.iterator()) {
    if (held.has(id)) seqKeys.set(k, id)
    else { lost.add(id); await push({ type: 'del', sublevel: seqIdx, key: k }) }
  }
  // held messages' index (store/level-store.ts heldidx): an entry whose message is gone or no longer held
  // is dropped; a held message without one gets it below (else no release would ever find it)
  const heldKeys = new Map<string, string>()
  for await (const [k, id] of heldIdx.iterator()) {
    if (held.get(id)?.held === true) heldKeys.set(k, id)
    else await push({ type: 'del', sublevel: heldIdx, key: k })
  }
  for await (const [k, id] of outboxes.iterator()) {
    if (held.has(id)) continue
    lost.add(id)
    await push({ type: 'del', sublevel: outboxes, key: k }, { type: 'del', sublevel: deposited, key: k })
  }

  // messages without their entries; and what each conversation and author holds
  const newest = new Map<string, { id: string, hlc: Hlc }>()
  for (const [id, m] of held) {
    const hk = m.conv + SEP + hlcKey(m.hlc, id)
    if (histKeys.get(hk) !== id) await push({ type: 'put', sublevel: hist, key: hk, value: id })
    const n = newest.get(m.conv)
    if (n === undefined || compareHlc(m.hlc, n.hlc) > 0) newest.set(m.conv, { id, hlc: m.hlc })
    const sk = m.conv + SEP + m.author + SEP + pad(m.seq)
    // a held message holds no slot yet, only its place among the held
    if (m.held) {
      if (heldKeys.get(sk) !== id) await push({ type: 'put', sublevel: heldIdx, key: sk, value: id })
      continue
    }
    if (!seqKeys.has(sk)) { await push({ type: 'put', sublevel: seqIdx, key: sk, value: id }); seqKeys.set(sk, id) }
  }
  histKeys.clear()
  const seqs = new Map<string, Set<number>>()
  for (const k of seqKeys.keys()) {
    const i = k.lastIndexOf(SEP)
    const author = k.slice(0, i)
    let set = seqs.get(author)
    if (set === undefined) { set = new Set(); seqs.set(author, set) }
    set.add(Number(k.slice(i + 1)))
  }
  seqKeys.clear()
  const states = new Map<string, SeqState>()
  for await (const [k, s] of seqState.iterator()) states.set(k, s)
  let missingSinceStop = 0
  for (const key of new Set([...seqs.keys(), ...states.keys(), ...Object.keys(counts ?? {})])) {
    const have = seqs.get(key) ?? new Set<number>()
    let contiguous = 0
    while (have.has(contiguous + 1)) contiguous++
    // a loop, not Math.max(...have): a spread of a big set overflows the stack
    let max = 0
    for (const seq of have) if (seq > max) max = seq
    const old = states.get(key)
    if (old !== undefined && old.max > max) max = old.max
    const had = counts?.[key]
    if (had !== undefined && had > have.size) missingSinceStop += had - have.size
    if (old === undefined && have.size === 0) continue
    const next: SeqState = { contiguous, max, n: have.size }
    if (old?.contiguous !== next.contiguous || old.max !== next.max || old.n !== next.n) await push({ type: 'put', sublevel: seqState, key, value: next })
  }
  for (const [conv, n] of newest) {
    if (await convs.get(conv) !== undefined) continue
    const m = await msgs.get(n.id)
    await push({ type: 'put', sublevel: convs, key: conv, value: { conv, lastHlc: n.hlc, lastText: (m?.text ?? '').slice(0, 200), unread: 0 } })
  }
  await flush()
  return { messages: held.size, lost: Math.max(lost.size, missingSinceStop), fixes }
}
