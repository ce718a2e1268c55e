/**
 * Consistency check of a node's message store after damage. Messages (`msg`)
 * are the source of truth; the indexes are rebuilt from them: a history or
 * sequence entry whose message is gone counts that message as lost here (peers
 * send it back by sync), a message without its entries gets them again, and
 * every sequence state is recounted (its `max` never goes down, so a lost
 * message of our own never gives its number to a new one).
 */
import type { Db, Sub } from '../../../core/store/group-commit.js'
import { compareHlc, hlcKey } from '../clock/hlc.js'
import type { ConversationRecord, StoredMessage } from './types.js'

export interface StoreCheck {
  /** messages held */
  messages: number
  /** messages the indexes name that are gone (ids) */
  lost: number
  /** index entries written or removed (with `fix`), or that would be */
  fixes: number
}

const SEP = '!'
const pad = (n: number): string => n.toString().padStart(16, '0')
interface SeqState { contiguous: number, max: number }

/** Checks (and with `fix`, repairs in one synced batch) the indexes of the open database `db`. */
export async function checkStore (db: Db, fix: boolean): Promise<StoreCheck> {
  // plain sublevels (not jsonSublevel's, which a reopen of the store would keep reopening)
  const jsonSublevel = <V>(_db: Db, name: string): Sub<V> => db.sublevel<string, V>(name, { valueEncoding: 'json' }) as unknown as Sub<V>
  const msgs = jsonSublevel<StoredMessage>(db, 'msg')
  const hist = jsonSublevel<string>(db, 'hist')
  const seqIdx = jsonSublevel<string>(db, 'seqidx')
  const seqState = jsonSublevel<SeqState>(db, 'seq')
  const outboxes = jsonSublevel<string>(db, 'outbox')
  const deposited = jsonSublevel<number>(db, 'deposited')
  const convs = jsonSublevel<ConversationRecord>(db, 'conv')
  const ops: Array<{ type: 'put' | 'del', sublevel: unknown, key: string, value?: unknown }> = []
  const lost = new Set<string>()

  const held = new Map<string, StoredMessage>()
  for await (const [id, m] of msgs.iterator()) held.set(id, m)
  const histKeys = new Map(await hist.iterator().all())
  const seqKeys = new Map(await seqIdx.iterator().all())

  // dangling entries: their message is gone
  for (const [k, id] of histKeys) if (!held.has(id)) { lost.add(id); ops.push({ type: 'del', sublevel: hist, key: k }); histKeys.delete(k) }
  for (const [k, id] of seqKeys) if (!held.has(id)) { lost.add(id); ops.push({ type: 'del', sublevel: seqIdx, key: k }); seqKeys.delete(k) }
  for await (const [k, id] of outboxes.iterator()) {
    if (held.has(id)) continue
    lost.add(id)
    ops.push({ type: 'del', sublevel: outboxes, key: k }, { type: 'del', sublevel: deposited, key: k })
  }

  // messages without their entries; and what each conversation and author holds
  const seqs = new Map<string, number[]>()
  const newest = new Map<string, StoredMessage>()
  for (const m of held.values()) {
    const hk = m.conv + SEP + hlcKey(m.hlc, m.id)
    if (histKeys.get(hk) !== m.id) ops.push({ type: 'put', sublevel: hist, key: hk, value: m.id })
    const n = newest.get(m.conv)
    if (n === undefined || compareHlc(m.hlc, n.hlc) > 0) newest.set(m.conv, m)
    // a held message holds no slot yet (store/level-store.ts heldidx)
    if (m.held === true) continue
    const author = m.conv + SEP + m.author
    const sk = author + SEP + pad(m.seq)
    if (!seqKeys.has(sk)) { ops.push({ type: 'put', sublevel: seqIdx, key: sk, value: m.id }); seqKeys.set(sk, m.id) }
  }
  for (const k of seqKeys.keys()) {
    const i = k.lastIndexOf(SEP)
    const list = seqs.get(k.slice(0, i)) ?? []
    list.push(Number(k.slice(i + 1)))
    seqs.set(k.slice(0, i), list)
  }
  const states = new Map(await seqState.iterator().all())
  for (const key of new Set([...seqs.keys(), ...states.keys()])) {
    const have = new Set(seqs.get(key) ?? [])
    let contiguous = 0
    while (have.has(contiguous + 1)) contiguous++
    const old = states.get(key)
    const next = { contiguous, max: Math.max(old?.max ?? 0, ...have) }
    if (old?.contiguous !== next.contiguous || old.max !== next.max) ops.push({ type: 'put', sublevel: seqState, key, value: next })
  }
  for (const [conv, m] of newest) {
    if (await convs.get(conv) !== undefined) continue
    ops.push({ type: 'put', sublevel: convs, key: conv, value: { conv, lastHlc: m.hlc, lastText: m.text.slice(0, 200), unread: 0 } })
  }
  if (fix && ops.length > 0) await db.batch(ops as never, { sync: true } as never)
  return { messages: held.size, lost: lost.size, fixes: ops.length }
}
