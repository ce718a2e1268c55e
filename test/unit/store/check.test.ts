/**
 * The store check after damage (node/src/store/check.ts): loss counted from
 * what survives it (dangling indexes; the counts of the last clean stop),
 * said in words that never claim "0 lost" where data was dropped uncounted,
 * and big stores checked without blowing the stack.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { LevelStore } from '../../../node/src/store/level-store.js'
import { checkStore } from '../../../node/src/store/check.js'
import { lossWords } from '../../../node/src/store/open-node-store.js'
import { dmConversationId } from '../../../core/protocol/envelope.js'
import { PEER_A, PEER_B } from '../helpers/peer-ids.js'
import { storedMessage } from '../helpers/store.js'

const conv = dmConversationId(PEER_A, PEER_B)

describe('store check', () => {
  it('counts messages lost with their indexes against the counts of the last clean stop', async () => {
    const db = new MemoryLevel()
    const store = new LevelStore(db)
    await store.start()
    const msgs = Array.from({ length: 6 }, (_, i) => storedMessage({ conv, author: PEER_B, seq: i + 1 }))
    for (const m of msgs) await store.storeIncoming(m)
    const counts = await store.seqCounts()
    assert.deepEqual(counts, { [conv + '!' + PEER_B]: 6 })
    await store.stop()
    await db.open()
    // a lost table or log tail: messages 4-6 go with their index entries and the sequence state
    const raw = new MemoryLevel()
    for await (const [k, v] of db.iterator({ keyEncoding: 'utf8', valueEncoding: 'utf8' })) {
      if (msgs.slice(3).some(m => k.includes(m.id) || v.includes(m.id))) continue
      if (k.includes('!seq!')) continue
      await raw.put(k, v)
    }
    assert.equal((await checkStore(raw as never, false)).lost, 0, 'the indexes alone cannot see it')
    const found = await checkStore(raw as never, true, counts)
    assert.equal(found.messages, 3)
    assert.equal(found.lost, 3)
    // repaired: the recount keeps counting from here
    assert.deepEqual((await checkStore(raw as never, false)).fixes, 0)
  })

  it('says the loss in words, never "0 lost" where data was dropped uncounted', () => {
    assert.equal(lossWords(0, []), 'no messages lost')
    assert.equal(lossWords(1, []), '1 message lost')
    assert.equal(lossWords(5, []), '5 messages lost')
    assert.equal(lossWords(0, ['LevelDB dropped 420 bytes']), 'an unknown number of messages lost (LevelDB dropped 420 bytes)')
    assert.equal(lossWords(2, ['LevelDB dropped 420 bytes']), 'at least 2 messages lost (LevelDB dropped 420 bytes)')
  })

  it('checks 130k numbers of one author (no Math.max spread: it overflowed the stack)', async () => {
    const db = new MemoryLevel()
    const seq = db.sublevel<string, string>('seqidx', { valueEncoding: 'json' })
    const msgs = db.sublevel<string, unknown>('msg', { valueEncoding: 'json' })
    const key = conv + '!' + PEER_B + '!'
    const N = 130_000
    for (let i = 0; i < N; i += 10_000) {
      const ops: Array<{ type: 'put', key: string, value: unknown, sublevel: unknown }> = []
      for (let s = i + 1; s <= i + 10_000; s++) {
        const id = `m${s}`
        ops.push({ type: 'put', sublevel: seq, key: key + s.toString().padStart(16, '0'), value: id })
        ops.push({ type: 'put', sublevel: msgs, key: id, value: { conv, author: PEER_B, seq: s, hlc: { w: s, c: 0 } } })
      }
      await db.batch(ops as never)
    }
    // (the spread fails whether or not the fixes are written; without them the test is twice as fast)
    const r = await checkStore(db as never, false)
    assert.equal(r.messages, N)
    assert.equal(r.lost, 0)
  })
})
