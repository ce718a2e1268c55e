/** Fixtures for store tests: stand-in messages and a memory DB with a controllable fsync. */
import { MemoryLevel } from 'memory-level'
import type { Envelope, Hlc } from '../../../core/protocol/envelope.js'
import type { MessageState, StoredMessage } from '../../../node/src/store/types.js'

let nextId = 0
export interface MsgOpts { id?: string, conv: string, author: string, seq: number, hlc?: Hlc, text?: string, outgoing?: boolean, state?: MessageState, to?: string[] }

/**
 * A StoredMessage with a stand-in envelope: the store looks only at its key
 * wraps' recipients (`to`). Incoming unless `outgoing`.
 */
export function storedMessage (o: MsgOpts): StoredMessage {
  const id = o.id ?? `m${(nextId++).toString().padStart(20, '0')}`
  const outgoing = o.outgoing ?? false
  return {
    id,
    conv: o.conv,
    author: o.author,
    seq: o.seq,
    hlc: o.hlc ?? { w: 1000 + o.seq, c: 0 },
    text: o.text ?? `text ${o.seq}`,
    outgoing,
    state: o.state ?? (outgoing ? 'queued' : 'received'),
    storedAt: 0,
    envelope: { id, seq: o.seq, conv: o.conv, author: o.author, keys: (o.to ?? []).map(to => ({ to })) } as unknown as Envelope
  }
}

/**
 * A memory DB whose array batches each wait for a permit from the test, and
 * can be told to fail: stands in for a slow or failing fsync.
 */
export function gatedDb (): { db: MemoryLevel, batches: () => number, release: () => void, failNext: () => void } {
  const db = new MemoryLevel()
  const realBatch = db.batch.bind(db) as (...args: unknown[]) => unknown
  let permits = 0
  const waiting: Array<() => void> = []
  let fail = false
  let n = 0
  const gated = async (...args: unknown[]): Promise<void> => {
    n++
    if (permits > 0) permits--
    else await new Promise<void>(resolve => { waiting.push(resolve) })
    if (fail) { fail = false; throw new Error('disk full') }
    await realBatch(...args)
  }
  Object.assign(db, { batch: (...args: unknown[]) => args.length === 0 ? realBatch() : gated(...args) })
  return {
    db,
    batches: () => n,
    release: () => { const next = waiting.shift(); if (next !== undefined) next(); else permits++ },
    failNext: () => { fail = true }
  }
}

/** Whether `p` has settled once pending I/O callbacks have run. */
export const settled = async (p: Promise<unknown>): Promise<boolean> => {
  let done = false
  void p.then(() => { done = true }, () => { done = true })
  await new Promise(resolve => setImmediate(resolve))
  return done
}
