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
import { gatedDb, storedMessage } from '../helpers/store.js'
import { newIdentities } from '../helpers/identities.js'
import { Reconciler, provenTop } from '../../../node/src/messaging/reconcile.js'
import { newMessageId, sealEnvelope } from '../../../core/crypto/envelope.js'
import { MAX_SEQ } from '../../../core/protocol/envelope.js'
import { RECONCILE_META } from '../../../node/src/store/health.js'
import { silentLogger } from '../../../core/util/log.js'
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
    const released = await store.reconcileOwn(conv, me, 5, () => true, reseal)
    assert.deepEqual(released.map(m => [m.text, m.seq, m.held]), [['first', 6, undefined], ['second', 7, undefined]])
    assert.deepEqual(resealed, [[h1.id, 6], [h2.id, 7]])
    assert.deepEqual((await store.outbox(bob)).map(m => [m.id, m.seq]), [[(await store.history(conv))[0]!.id, 1], [h1.id, 6], [h2.id, 7]])
    assert.deepEqual((await store.envelopesAfter(conv, me, 0)).map(e => e.seq), [1, 6, 7])
    assert.equal((await store.getMessage(h2.id))?.envelope.seq, 7)
    assert.equal((await send(false)).seq, 8)
  })

  it('without holding, a reported top only raises the counter', async () => {
    await send(false)
    assert.deepEqual(await store.reconcileOwn(conv, me, 9, () => false, reseal), [])
    assert.equal((await send(false)).seq, 10)
    // a lower report never lowers it
    await store.reconcileOwn(conv, me, 3, () => false, reseal)
    assert.equal((await send(false)).seq, 11)
  })
})

describe('holding and releasing (Reconciler over the store)', () => {
  it('a send prepared while the release is being written is not held (it would be released by no one)', async () => {
    const [mine, his] = await newIdentities(2)
    const c = dmConversationId(mine!.peerId, his!.peerId)
    const { db, release } = gatedDb()
    const store = new LevelStore(db)
    await store.start()
    { const p = store.putMeta(RECONCILE_META, { since: 1 }); release(); await p }
    const rec = new Reconciler({ store, identity: mine!, log: silentLogger })
    { const p = rec.start(); release(); await p }
    // as the messenger does: held while rec.holds(conv), decided in the write's turn
    const sendNow = async (): Promise<StoredMessage> => await store.appendOutgoing(c, mine!.peerId, [his!.peerId], seq => ({
      ...storedMessage({ conv: c, author: mine!.peerId, seq, outgoing: true, to: [his!.peerId, mine!.peerId] }), ...(rec.holds(c) ? { held: true } : {})
    }))
    const f = sendNow(); release()
    assert.equal((await f).held, true)
    // the colleague answers: the release's batch waits for its fsync while the user sends again
    const reported = rec.peerReported(c, 0)
    const second = sendNow()
    await new Promise(resolve => setTimeout(resolve, 20))
    for (let i = 0; i < 10; i++) release()
    const [released, m2] = await Promise.all([reported, second])
    assert.equal(released.length, 1)
    assert.equal(m2.held, undefined)
    assert.equal(m2.seq, 2)
    assert.equal((await store.getMessage(m2.id))?.held, undefined)
    assert.deepEqual((await store.envelopesAfter(c, mine!.peerId, 0)).map(e => e.seq), [1, 2])
    const stopping = store.stop(); for (let i = 0; i < 10; i++) release(); await stopping
  })

  it('a held message left over (no conversation held any more) goes out with the next report', async () => {
    const [mine, his] = await newIdentities(2)
    const c = dmConversationId(mine!.peerId, his!.peerId)
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    const rec = new Reconciler({ store, identity: mine!, log: silentLogger })
    await rec.start()
    assert.equal(rec.holds(c), false)
    const held = await store.appendOutgoing(c, mine!.peerId, [his!.peerId], seq => ({
      ...storedMessage({ conv: c, author: mine!.peerId, seq, outgoing: true, to: [his!.peerId, mine!.peerId] }), held: true
    }))
    const released = await rec.peerReported(c, 0)
    assert.deepEqual(released.map(m => m.id), [held.id])
    assert.equal((await store.getMessage(held.id))?.held, undefined)
    await store.stop()
  })
})

describe('a reported top of ours is believed only with proof', () => {
  it('our own signed envelope of the conversation proves its seq; anything else proves nothing', async () => {
    const [mine, his, third] = await newIdentities(3)
    const c = dmConversationId(mine!.peerId, his!.peerId)
    const seal = (by: typeof mine, conv: string, seq: number): Envelope => sealEnvelope(by!, {
      id: newMessageId(), conv, seq, hlc: { w: 1, c: 0 }, recipients: [his!.peerId, mine!.peerId], body: { text: 'x' }
    })
    assert.equal(provenTop(c, mine!.peerId, seal(mine, c, 7)), 7)
    assert.equal(provenTop(c, mine!.peerId, undefined), 0)
    // a lying peer: its own envelope, or ours changed to MAX_SEQ (the signature no longer matches)
    assert.equal(provenTop(c, mine!.peerId, seal(his, c, MAX_SEQ)), 0)
    assert.equal(provenTop(c, mine!.peerId, { ...seal(mine, c, 7), seq: MAX_SEQ }), 0)
    // ours, but from another conversation
    assert.equal(provenTop(c, mine!.peerId, seal(mine, dmConversationId(mine!.peerId, third!.peerId), 9)), 0)
  })
})
