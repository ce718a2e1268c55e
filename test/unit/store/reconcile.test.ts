/**
 * The store's half of sequence reconciliation (LevelStore.reconcileOwn, held
 * messages): a held message takes no slot, its release goes above every
 * number known and the one a peer reported, and the counter never again
 * gives out a number a peer holds.
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { LevelStore } from '../../../node/src/store/level-store.js'
import { checkStore } from '../../../node/src/store/check.js'
import { dmConversationId, type Envelope } from '../../../core/protocol/envelope.js'
import { PEER_A, PEER_B } from '../helpers/peer-ids.js'
import { storedMessage } from '../helpers/store.js'
import type { StoredMessage } from '../../../node/src/store/types.js'

const [me, bob] = [PEER_A, PEER_B]
const conv = dmConversationId(me, bob)

describe('sequence reconciliation in the store', () => {
  let db: MemoryLevel
  let store: LevelStore
  beforeEach(async () => { db = new MemoryLevel(); store = new LevelStore(db); await store.start() })
  afterEach(async () => { await store.stop() })

  const send = async (held: boolean, text = 'x'): Promise<StoredMessage> => await store.appendOutgoing(conv, me, [bob], seq => ({
    ...storedMessage({ conv, author: me, seq, text, outgoing: true, to: [bob, me] }), ...(held ? { held: true } : {})
  }))
  const resealed: Array<[string, number]> = []
  const reseal = (m: StoredMessage, seq: number): Envelope => { resealed.push([m.id, seq]); return { ...m.envelope, seq } }

  it('a held message takes no slot: not in the have-vector, not offered by sync, and our own message may come back into its number', async () => {
    await send(false)
    const held = await send(true)
    assert.equal(held.seq, 2)
    assert.deepEqual(await store.haveVector(conv), { [me]: 1 })
    assert.deepEqual((await store.envelopesAfter(conv, me, 0)).map(e => e.seq), [1])
    assert.deepEqual(await store.outbox(bob).then(o => o.map(m => m.id)).then(ids => ids.includes(held.id)), true)
    // the lost message 2 of ours, given back by Bob: no conflict with the held one
    assert.equal(await store.storeIncoming(storedMessage({ conv, author: me, seq: 2, outgoing: true, state: 'delivered', to: [bob, me] })), 'stored')
    assert.deepEqual(await store.haveVector(conv), { [me]: 2 })
    // a second held message is numbered after the first
    assert.equal((await send(true)).seq, 3)
    // the index check does not take held messages for damage
    assert.equal((await checkStore(db as never, false)).fixes, 0)
  })

  it('release: above the reported top and every number known, in order, re-sealed, outbox entries moved', async () => {
    await send(false)
    const h1 = await send(true, 'first')
    const h2 = await send(true, 'second')
    resealed.length = 0
    const released = await store.reconcileOwn(conv, me, 5, true, reseal)
    assert.deepEqual(released.map(m => [m.text, m.seq, m.held]), [['first', 6, undefined], ['second', 7, undefined]])
    assert.deepEqual(resealed, [[h1.id, 6], [h2.id, 7]])
    assert.deepEqual((await store.outbox(bob)).map(m => [m.id, m.seq]), [[(await store.history(conv))[0]!.id, 1], [h1.id, 6], [h2.id, 7]])
    assert.deepEqual((await store.envelopesAfter(conv, me, 0)).map(e => e.seq), [1, 6, 7])
    assert.equal((await store.getMessage(h2.id))?.envelope.seq, 7)
    assert.equal((await send(false)).seq, 8)
  })

  it('without holding, a reported top only raises the counter', async () => {
    await send(false)
    assert.deepEqual(await store.reconcileOwn(conv, me, 9, false, reseal), [])
    assert.equal((await send(false)).seq, 10)
    // a lower report never lowers it
    await store.reconcileOwn(conv, me, 3, false, reseal)
    assert.equal((await send(false)).seq, 11)
  })
})
