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
import { newMessageId, sealEnvelope, verifyEnvelope } from '../../../core/crypto/envelope.js'
import { until } from '../../helpers/nodes.js'
import { MAX_SEQ } from '../../../core/protocol/envelope.js'
import { RECONCILE_META } from '../../../node/src/store/health.js'
import { silentLogger } from '../../../core/util/log.js'
import { ParleyError, RemoteError } from '../../../core/errors.js'
import { Delivery } from '../../../node/src/messaging/delivery.js'
import { MAX_MOVES, type StoredMessage } from '../../../node/src/store/types.js'
import { outboxPages } from '../../../node/src/store/pages.js'

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

  it('the index check rebuilds the held index: a held message whose entry was lost is released again, a dangling entry goes', async () => {
    await send(false)
    const held = await send(true)
    const heldIdx = db.sublevel<string, string>('heldidx', { valueEncoding: 'json' })
    const [key] = await heldIdx.keys().all()
    await heldIdx.del(key!)
    await heldIdx.put(`${conv}!${me}!${'9'.padStart(16, '0')}`, 'gone')
    const check = await checkStore(db as never, true)
    assert.equal(check.fixes, 2)
    assert.deepEqual(await heldIdx.keys().all(), [key])
    assert.deepEqual((await store.reconcileOwn(conv, me, 0, () => true, reseal)).map(m => m.id), [held.id])
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
    const reported = rec.peerReported(c, his!.peerId, 0)
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
    const released = await rec.peerReported(c, his!.peerId, 0)
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

describe('a sequence conflict at a peer (our store lost the message there, with or without a trace)', () => {
  const setup = async (): Promise<{ store: LevelStore, rec: Reconciler, mine: Awaited<ReturnType<typeof newIdentities>>[number], his: Awaited<ReturnType<typeof newIdentities>>[number], c: string, released: StoredMessage[] }> => {
    const [mine, his] = await newIdentities(2)
    const c = dmConversationId(mine!.peerId, his!.peerId)
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    const released: StoredMessage[] = []
    const rec = new Reconciler({ store, identity: mine!, log: silentLogger, released: (m) => { released.push(m) } })
    await rec.start()
    rec.stop()
    return { store, rec, mine: mine!, his: his!, c, released }
  }
  /** a message of ours as the peer holds it: our signature at `seq` */
  const ours = (by: Awaited<ReturnType<typeof newIdentities>>[number], to: string, c: string, seq: number): Envelope =>
    sealEnvelope(by, { id: newMessageId(), conv: c, seq, hlc: { w: seq, c: 0 }, recipients: [to, by.peerId], body: { text: `lost ${seq}` } })
  const sendReal = async (store: LevelStore, me: Awaited<ReturnType<typeof newIdentities>>[number], to: string, c: string, text: string): Promise<StoredMessage> =>
    await store.appendOutgoing(c, me.peerId, [to], seq => {
      const envelope = sealEnvelope(me, { id: newMessageId(), conv: c, seq, hlc: { w: 100 + seq, c: 0 }, recipients: [to, me.peerId], body: { text } })
      return { id: envelope.id, conv: c, author: me.peerId, seq, hlc: envelope.hlc, text, outgoing: true, state: 'queued', storedAt: 0, envelope }
    })

  /** a peer's getHave answer: our numbers up to `top` proven, `slot` what it holds at the number asked about */
  const answer = (mine: { peerId: string }, top: Envelope, slot?: Envelope | null) =>
    ({ have: { [mine.peerId]: top.seq }, tops: { [mine.peerId]: top.seq }, epoch: 'e', proof: top, ...(slot !== undefined ? { slot } : {}) })

  it('the refused message moves above what the peer proves, re-sealed, its outbox entry with it; the old number is free for the lost message', async () => {
    const { store, rec, mine, his, c, released } = await setup()
    // our store lost 1..3 (the peer holds them); the counter restarts at 1
    const m = await sendReal(store, mine, his.peerId, c, 'after the restore')
    assert.equal(m.seq, 1)
    const lost = ours(mine, his.peerId, c, 1)
    const asked: unknown[] = []
    const ch = { call: async (_m: string, body: unknown) => { asked.push(body); return answer(mine, ours(mine, his.peerId, c, 3), lost) } }
    assert.equal(await rec.seqConflict(his.peerId, ch, m.envelope), 'moved')
    assert.deepEqual(asked, [{ conv: c, tops: true, slot: { author: mine.peerId, seq: 1 } }, { conv: c, tops: true, resync: true }])
    const now = await store.getMessage(m.id)
    assert.equal(now?.seq, 4)
    assert.equal(now?.envelope.seq, 4)
    assert.equal(now?.text, 'after the restore')
    // re-sealed by us: the peer verifies it, and it opens to the same text
    assert.doesNotThrow(() => verifyEnvelope(now!.envelope))
    assert.deepEqual(released.map(x => [x.id, x.seq]), [[m.id, 4]])
    assert.deepEqual((await store.outbox(his.peerId)).map(x => [x.id, x.seq]), [[m.id, 4]])
    assert.deepEqual((await store.envelopesAfter(c, mine.peerId, 0)).map(e => e.seq), [4])
    // the lost message 1 comes back from the peer into its old number
    assert.equal(await store.storeIncoming({ ...storedMessage({ id: lost.id, conv: c, author: mine.peerId, seq: 1, outgoing: true, state: 'delivered' }), envelope: lost }), 'stored')
    // and the next send is above both
    assert.equal((await sendReal(store, mine, his.peerId, c, 'next')).seq, 5)
    // a second refusal of the copy already moved changes nothing
    assert.equal(await rec.seqConflict(his.peerId, ch, m.envelope), 'moved')
    assert.equal((await store.getMessage(m.id))?.seq, 4)
    await store.stop()
  })

  it('a copy someone already holds moves too (the move): queued again for every recipient device, a late ack of the old copy settles nothing', async () => {
    const [mine, his, other] = await newIdentities(3)
    const c = 'g:' + 'M'.repeat(22)
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    const rec = new Reconciler({ store, identity: mine!, log: silentLogger })
    const devices = [his!.peerId, other!.peerId]
    const m = await store.appendOutgoing(c, mine!.peerId, devices, seq => {
      const envelope = sealEnvelope(mine!, { id: newMessageId(), conv: c, seq, hlc: { w: 100 + seq, c: 0 }, recipients: [...devices, mine!.peerId], body: { text: 'y' } })
      return { id: envelope.id, conv: c, author: mine!.peerId, seq, hlc: envelope.hlc, text: 'y', outgoing: true, state: 'queued', storedAt: 0, envelope }
    })
    // `other` confirmed the old copy, and the relay holds it for `his`: before, either kept the number (and failed it)
    await store.markDelivered([m.id], other!.peerId)
    await store.markSent([{ id: m.id, peers: [his!.peerId] }])
    assert.equal((await store.depositedFor(his!.peerId, [m])).size, 1)
    const ch = { call: async () => answer(mine!, ours(mine!, his!.peerId, c, 2), ours(mine!, his!.peerId, c, 1)) }
    assert.equal(await rec.seqConflict(his!.peerId, ch, m.envelope), 'moved')
    const now = await store.getMessage(m.id)
    assert.equal(now?.seq, 3)
    assert.equal(now?.moved, true)
    for (const d of devices) assert.deepEqual((await store.outbox(d)).map(x => [x.id, x.seq]), [[m.id, 3]], `queued again for ${d}`)
    assert.equal((await store.depositedFor(his!.peerId, [now!])).size, 0, 'the relay\'s copy is the old one: deposited afresh')
    // acks and receipts of the old copy, late: the moved one is still owed
    await store.markDelivered([m.id], other!.peerId, undefined, new Map([[m.id, 1]]))
    await store.markRead([m.id], other!.peerId)
    await store.markSent([{ id: m.id, peers: [his!.peerId], seq: 1 }])
    assert.equal((await store.outbox(other!.peerId)).length, 1)
    assert.equal((await store.depositedFor(his!.peerId, [now!])).size, 0)
    await store.markDelivered([m.id], other!.peerId, undefined, new Map([[m.id, 3]]))
    assert.equal((await store.outbox(other!.peerId)).length, 0, 'the ack of the moved copy settles it')
    await store.stop()
  })

  it('without proof at that number the message keeps it and fails for that peer (a lying or broken peer)', async () => {
    const { store, rec, mine, his, c } = await setup()
    const m = await sendReal(store, mine, his.peerId, c, 'x')
    // an older peer (no slot answer) that proves nothing (or a lower number)
    const noProof = { call: async () => ({ have: {}, tops: { [mine.peerId]: 9 }, epoch: 'e' }) }
    assert.equal(await rec.seqConflict(his.peerId, noProof, m.envelope), 'keep')
    // a slot answer that is not our envelope at that number
    const forged = { ...ours(mine, his.peerId, c, 1), seq: 1, id: newMessageId() }
    for (const slot of [ours(his, mine.peerId, c, 1), ours(mine, his.peerId, c, 2), forged]) {
      const ch = { call: async () => answer(mine, ours(mine, his.peerId, c, 3), slot) }
      assert.equal(await rec.seqConflict(his.peerId, ch, m.envelope), 'keep')
    }
    assert.equal((await store.getMessage(m.id))?.seq, 1)
    // nothing there any more (what it held moved meanwhile): sent again as it is
    assert.equal(await rec.seqConflict(his.peerId, { call: async () => answer(mine, ours(mine, his.peerId, c, 3), null) }, m.envelope), 'again')
    await store.stop()
  })

  it('a passing error while resolving the conflict is thrown (tried again), not a failure; the next try moves it', async () => {
    const { store, rec, mine, his, c } = await setup()
    const m = await sendReal(store, mine, his.peerId, c, 'x')
    let calls = 0
    const ch = {
      call: async () => {
        if (calls++ === 0) throw new RemoteError('ERR_TIMEOUT', 'getHave timed out')
        return answer(mine, ours(mine, his.peerId, c, 2), ours(mine, his.peerId, c, 1))
      }
    }
    await assert.rejects(rec.seqConflict(his.peerId, ch, m.envelope), (e: unknown) => e instanceof RemoteError && e.remoteCode === 'ERR_TIMEOUT')
    assert.equal((await store.getMessage(m.id))?.state, 'queued')
    assert.equal(await rec.seqConflict(his.peerId, ch, m.envelope), 'moved')
    assert.equal((await store.getMessage(m.id))?.seq, 3)
    // and the delivery loop: a conflict that cannot be resolved now makes deliverAll throw (the push loop retries)
    const n = await sendReal(store, mine, his.peerId, c, 'y')
    const delivery = new Delivery({ store, log: silentLogger, events: new EventTarget() as never, seqConflict: async () => { throw new ParleyError('ERR_DISK_FULL', 'full') } }, { sendWindow: 4 })
    const refusing = { call: async () => { throw new RemoteError('ERR_SEQ_CONFLICT', 'taken') } }
    await assert.rejects(delivery.deliverAll(his.peerId, refusing as never, [n.envelope]), (e: unknown) => e instanceof ParleyError && e.code === 'ERR_DISK_FULL')
    assert.equal((await store.getMessage(n.id))?.state, 'queued', 'not failed')
    await store.stop()
  })

  it('a peer holding an old copy of a message that moved since gets the moved copy, then the refused one goes again', async () => {
    const { store, rec, mine, his, c } = await setup()
    const y = await sendReal(store, mine, his.peerId, c, 'y')
    const ch1 = { call: async () => answer(mine, ours(mine, his.peerId, c, 2), ours(mine, his.peerId, c, 1)) }
    assert.equal(await rec.seqConflict(his.peerId, ch1, y.envelope), 'moved')
    const movedY = (await store.getMessage(y.id))!
    // the lost message comes back into number 1; the peer (another one, still holding y's old copy there) refuses it
    const x = ours(mine, his.peerId, c, 1)
    assert.equal(await store.storeIncoming({ ...storedMessage({ id: x.id, conv: c, author: mine.peerId, seq: 1, outgoing: true, state: 'delivered' }), envelope: x }, { self: mine.peerId }), 'stored')
    assert.deepEqual((await store.outbox(his.peerId)).map(m => m.seq), [1, 3], 'given back into a number a move freed: queued for its recipients again')
    assert.deepEqual(await store.outboxPeers(), [his.peerId], 'never for this device itself')
    const delivered: Envelope[] = []
    const ch2 = {
      call: async (method: string, body: unknown) => {
        if (method === 'deliver') { delivered.push(body as Envelope); return { status: 'stored' } }
        return answer(mine, ours(mine, his.peerId, c, 2), y.envelope)
      }
    }
    assert.equal(await rec.seqConflict(his.peerId, ch2, x), 'again')
    assert.deepEqual(delivered.map(e => [e.id, e.seq]), [[y.id, movedY.seq]])
    assert.equal((await store.getMessage(x.id))?.seq, 1, 'the message given back keeps its number')
    await store.stop()
  })
})

type Ident = Awaited<ReturnType<typeof newIdentities>>[number]
/** a message sent from `me`'s store to `devices` in `c`, with a real envelope */
const sendTo = async (store: LevelStore, me: Ident, devices: string[], c: string, text: string, hlc = { w: 100, c: 0 }): Promise<StoredMessage> =>
  await store.appendOutgoing(c, me.peerId, devices, seq => {
    const envelope = sealEnvelope(me, { id: newMessageId(), conv: c, seq, hlc, recipients: [...devices, me.peerId], body: { text } })
    return { id: envelope.id, conv: c, author: me.peerId, seq, hlc: envelope.hlc, text, outgoing: true, state: 'queued', storedAt: 0, envelope }
  })
/** `by`'s envelope of another message at `seq` (what a peer holds there after our store lost it) */
const other = (by: Ident, c: string, seq: number, to: string[]): Envelope =>
  sealEnvelope(by, { id: newMessageId(), conv: c, seq, hlc: { w: seq, c: 0 }, recipients: [...to, by.peerId], body: { text: `lost ${seq}` } })

describe('the move is bounded (review N1: a lying, broken or looping peer)', () => {
  it('a peer that refuses every copy and "proves" with the envelope it was just given moves nothing: one push pass, the message fails for that peer only', async () => {
    const [me, hostile, m2, m3] = await newIdentities(4)
    const c = 'g:' + 'H'.repeat(22)
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    let released = 0
    const rec = new Reconciler({ store, identity: me!, log: silentLogger, released: () => { released++ } })
    await rec.start(); rec.stop()
    const devices = [hostile!.peerId, m2!.peerId, m3!.peerId]
    const m = await sendTo(store, me!, devices, c, 'hello team')
    await store.markDelivered([m.id], m2!.peerId)
    await store.markDelivered([m.id], m3!.peerId)
    for (const slot of [undefined, 'garbage', null]) {
      let last: unknown
      let refusals = 0
      const ch = {
        isOpen: true,
        call: async (method: string, body: unknown) => {
          if (method === 'deliver') { last = body; refusals++; throw new RemoteError('ERR_SEQ_CONFLICT', 'taken') }
          // no slot (an "older peer"), a garbage slot, or "nothing there": the proof is the refused envelope itself
          return { have: {}, tops: {}, epoch: 'e', proof: last, ...(slot !== undefined ? { slot } : {}) }
        }
      }
      const delivery = new Delivery({ store, log: silentLogger, events: { emit: () => true } as never, seqConflict: async (p, chan, env) => await rec.seqConflict(p, chan as never, env) }, { sendWindow: 32 })
      // one pass, as PushLoop.loop does
      for await (const page of outboxPages(store, hostile!.peerId, 256)) await delivery.deliverAll(hostile!.peerId, ch as never, page.map(x => x.envelope))
      assert.ok(refusals <= 2, `bounded: ${refusals} refusals in one pass`)
    }
    const now = (await store.getMessage(m.id))!
    assert.equal(now.seq, 1, 'never moved')
    assert.equal(now.moved, undefined)
    assert.equal(released, 0)
    assert.deepEqual(now.refusedBy, [hostile!.peerId], 'failed for that peer (ERR_SEQ_CONFLICT), nothing else')
    assert.equal(now.state, 'delivered', 'the honest members have it')
    for (const d of devices) assert.equal((await store.outbox(d)).length, 0, `nothing queued again for ${d}`)
    assert.deepEqual(await store.haveVector(c), { [me!.peerId]: 1 }, 'no hole in the have-vector')
    await store.stop()
  })

  it('the refused envelope itself proves no top: a copy of it at a higher number is not believed', async () => {
    const [me, his] = await newIdentities(2)
    const c = dmConversationId(me!.peerId, his!.peerId)
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    const rec = new Reconciler({ store, identity: me!, log: silentLogger })
    const m = await sendTo(store, me!, [his!.peerId], c, 'x')
    // our signature on this very message at 50 (an old copy, say): says nothing about what else the peer holds
    const self50 = sealEnvelope(me!, { id: m.id, conv: c, seq: 50, hlc: m.hlc, recipients: [his!.peerId, me!.peerId], body: { text: 'x' } })
    const ch = { call: async () => ({ have: {}, tops: {}, epoch: 'e', proof: self50, slot: other(me!, c, 1, [his!.peerId]) }) }
    assert.equal(await rec.seqConflict(his!.peerId, ch, m.envelope), 'moved')
    assert.equal((await store.getMessage(m.id))?.seq, 2, 'above the slot proven, not above the refused message\'s own copy')
    await store.stop()
  })

  it(`a message moves at most MAX_MOVES (${MAX_MOVES}) times, each on a slot proof; then it keeps its number and fails for that peer`, async () => {
    const [me, his] = await newIdentities(2)
    const c = dmConversationId(me!.peerId, his!.peerId)
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    const rec = new Reconciler({ store, identity: me!, log: silentLogger })
    const m = await sendTo(store, me!, [his!.peerId], c, 'x')
    // a loop: each time the peer proves (with our genuine signature) another message of ours at the new number
    const ch = { call: async (_m: string, body: unknown) => ({ have: {}, tops: {}, epoch: 'e', slot: other(me!, c, (body as { slot?: { seq: number } }).slot?.seq ?? 0, [his!.peerId]) }) }
    for (let i = 1; i <= MAX_MOVES; i++) {
      const cur = (await store.getMessage(m.id))!
      assert.equal(await rec.seqConflict(his!.peerId, ch, cur.envelope), 'moved', `move ${i}`)
    }
    const last = (await store.getMessage(m.id))!
    assert.equal(last.moves, MAX_MOVES)
    assert.equal(await rec.seqConflict(his!.peerId, ch, last.envelope), 'keep', 'the cap')
    assert.equal((await store.getMessage(m.id))?.seq, last.seq)
    // through the delivery: the refusal at the cap fails it for that peer, in words (ERR_SEQ_CONFLICT)
    const delivery = new Delivery({ store, log: silentLogger, events: { emit: () => true } as never, seqConflict: async (p, chan, env) => await rec.seqConflict(p, chan as never, env) }, { sendWindow: 4 })
    const refusing = { call: async (method: string, body: unknown) => { if (method === 'deliver') throw new RemoteError('ERR_SEQ_CONFLICT', 'taken'); return await ch.call(method, body) } }
    await delivery.deliverAll(his!.peerId, refusing as never, [last.envelope])
    const failed = (await store.getMessage(m.id))!
    assert.equal(failed.state, 'failed')
    assert.equal(failed.error, 'ERR_SEQ_CONFLICT')
    assert.equal(failed.seq, last.seq)
    await store.stop()
  })
})

describe('the move around it (review N4-N6)', () => {
  it('a moved message is not queued again for our own revoked devices (resealOwn and a message given back into a freed number)', async () => {
    const [me, his, laptop] = await newIdentities(3)
    const c = 'g:' + 'R'.repeat(22)
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    const revoked = new Set([laptop!.peerId])
    const sendable = (d: string): boolean => d !== me!.peerId && !revoked.has(d)
    const rec = new Reconciler({ store, identity: me!, log: silentLogger, sendable })
    const y = await sendTo(store, me!, [his!.peerId, laptop!.peerId], c, 'y')
    // the laptop was revoked before it got y: its entry was dropped (Messenger.accountChanged)
    await store.markFailed(y.id, laptop!.peerId, 'ERR_NOT_A_MEMBER')
    const lost = other(me!, c, 1, [his!.peerId, laptop!.peerId])
    assert.equal(await rec.seqConflict(his!.peerId, { call: async () => ({ have: {}, tops: {}, epoch: 'e', slot: lost }) }, y.envelope), 'moved')
    assert.deepEqual((await store.outbox(his!.peerId)).map(x => [x.id, x.seq]), [[y.id, 2]])
    assert.equal((await store.outbox(laptop!.peerId)).length, 0, 'not for the revoked laptop')
    // the lost message comes back into number 1: queued again, but not for the laptop nor for this device
    const given = { ...storedMessage({ id: lost.id, conv: c, author: me!.peerId, seq: 1, hlc: lost.hlc, text: 'lost 1', outgoing: true, state: 'delivered' }), envelope: lost }
    assert.equal(await store.storeIncoming(given, { self: me!.peerId, sendable }), 'stored')
    assert.deepEqual((await store.outbox(his!.peerId)).map(x => [x.id, x.seq]), [[lost.id, 1], [y.id, 2]])
    assert.deepEqual(await store.outboxPeers(), [his!.peerId])
    await store.stop()
  })

  it('on a linked device, a sibling\'s message given back into a number its move freed is queued for no one (not for this device), and no freed-number index is kept', async () => {
    const [desktop, laptop, bob] = await newIdentities(3)
    const c = dmConversationId(desktop!.peerId, bob!.peerId)
    const db = new MemoryLevel()
    const store = new LevelStore(db)
    await store.start()
    const to = [bob!.peerId, laptop!.peerId, desktop!.peerId]
    const seal = (id: string, seq: number, text: string, w: number): Envelope => sealEnvelope(desktop!, { id, conv: c, seq, hlc: { w, c: 0 }, recipients: to, body: { text } })
    const at = (env: Envelope, text: string): StoredMessage => ({ ...storedMessage({ id: env.id, conv: c, author: desktop!.peerId, seq: env.seq, hlc: env.hlc, text, outgoing: true, state: 'delivered' }), envelope: env })
    const yId = newMessageId()
    const opts = { self: laptop!.peerId }
    assert.equal(await store.storeIncoming(at(seal(yId, 5, 'y', 50), 'y'), opts), 'stored')
    assert.equal(await store.storeIncoming(at(seal(yId, 7, 'y', 50), 'y'), opts), 'moved')
    assert.equal(await store.storeIncoming(at(seal(newMessageId(), 5, 'x', 40), 'x'), opts), 'stored')
    assert.deepEqual(await store.outboxPeers(), [], 'the desktop sends its own messages')
    assert.deepEqual(await db.sublevel('moved').keys().all(), [], 'no freed-number entry at a receiver (N8)')
    await store.stop()
  })

  it('a refusal of the moved copy (sent to a peer holding its old copy) does not fail the message that was refused', async () => {
    const [me, his] = await newIdentities(2)
    const c = dmConversationId(me!.peerId, his!.peerId)
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    const rec = new Reconciler({ store, identity: me!, log: silentLogger })
    const y = await sendTo(store, me!, [his!.peerId], c, 'y')
    assert.equal(await rec.seqConflict(his!.peerId, { call: async () => ({ have: {}, tops: {}, epoch: 'e', slot: other(me!, c, 1, [his!.peerId]) }) }, y.envelope), 'moved')
    const x = other(me!, c, 1, [his!.peerId])
    assert.equal(await store.storeIncoming({ ...storedMessage({ id: x.id, conv: c, author: me!.peerId, seq: 1, hlc: x.hlc, text: 'lost 1', outgoing: true, state: 'delivered' }), envelope: x }, { self: me!.peerId }), 'stored')
    // another peer holds y's old copy at 1, and refuses y's moved copy too (its new number is taken there)
    const peer = {
      call: async (method: string) => {
        if (method === 'deliver') throw new RemoteError('ERR_SEQ_CONFLICT', 'taken')
        return { have: {}, tops: {}, epoch: 'e', slot: y.envelope }
      }
    }
    const delivery = new Delivery({ store, log: silentLogger, events: { emit: () => true } as never, seqConflict: async (p, chan, env) => await rec.seqConflict(p, chan as never, env) }, { sendWindow: 4 })
    assert.equal(await delivery.deliverAll(his!.peerId, peer as never, [x]), 0, 'not settled: tried again later')
    const after = (await store.getMessage(x.id))!
    assert.equal(after.refusedBy, undefined)
    assert.notEqual(after.state, 'failed')
    assert.equal(after.seq, 1)
    assert.ok((await store.outbox(his!.peerId)).some(m => m.id === x.id), 'still queued for that peer')
    await store.stop()
  })
})

describe('the move takes only the same message (review N2)', () => {
  it('the same id and time with another body or kind is refused (id-conflict), also when both copies are written at once', async () => {
    const [ann, bob] = await newIdentities(2)
    const c = dmConversationId(ann!.peerId, bob!.peerId)
    const to = [bob!.peerId, ann!.peerId]
    const id = newMessageId()
    const hlc = { w: 5, c: 0 }
    const at = (env: Envelope, text: string, extra: Partial<StoredMessage> = {}): StoredMessage =>
      ({ ...storedMessage({ id, conv: c, author: ann!.peerId, seq: env.seq, hlc, text }), ...extra, envelope: env })
    const quote = { id: newMessageId(), author: bob!.peerId, text: 'earlier' }
    const y1 = sealEnvelope(ann!, { id, conv: c, seq: 1, hlc, recipients: to, body: { text: 'y' } })
    const variants: Array<[string, StoredMessage]> = [
      ['another text', at(sealEnvelope(ann!, { id, conv: c, seq: 3, hlc, recipients: to, body: { text: 'z' } }), 'z')],
      ['a reply added', at(sealEnvelope(ann!, { id, conv: c, seq: 3, hlc, recipients: to, body: { text: 'y', reply: quote } }), 'y', { reply: quote })],
      ['an edit target added', at(sealEnvelope(ann!, { id, conv: c, seq: 3, hlc, recipients: to, body: { text: 'y', change: { type: 'edit', id: quote.id } } }), 'y', { change: { type: 'edit', id: quote.id } })],
      ['another time', { ...at(sealEnvelope(ann!, { id, conv: c, seq: 3, hlc: { w: 6, c: 0 }, recipients: to, body: { text: 'y' } }), 'y'), hlc: { w: 6, c: 0 } }],
      ['another kind', at({ ...sealEnvelope(ann!, { id, conv: c, seq: 3, hlc, recipients: to, body: { text: 'y' } }), kind: 'groupOp' } as Envelope, 'y')]
    ]
    for (const [what, copy] of variants) {
      const store = new LevelStore(new MemoryLevel())
      await store.start()
      assert.equal(await store.storeIncoming(at(y1, 'y')), 'stored')
      assert.equal(await store.storeIncoming(copy), 'id-conflict', what)
      assert.equal((await store.getMessage(id))?.seq, 1, what)
      await store.stop()
    }
    // both copies at once: the second is judged inside the write, against the first (staged, not on disk yet)
    const g = gatedDb()
    const store = new LevelStore(g.db)
    await store.start()
    const first = store.storeIncoming(at(y1, 'y'))
    const second = store.storeIncoming(variants[1]![1])
    g.release(); g.release()
    assert.deepEqual(await Promise.all([first, second]), ['stored', 'id-conflict'])
    // the same message re-signed at a higher number is still taken
    const same = at(sealEnvelope(ann!, { id, conv: c, seq: 3, hlc, recipients: to, body: { text: 'y' } }), 'y')
    const moved = store.storeIncoming(same)
    g.release()
    assert.equal(await moved, 'moved')
    await store.stop()
  })
})

describe('the move at a receiver (the author re-signed the same message at a higher number)', () => {
  it('takes the new number and frees the old one, where the lost message lands; an old copy after it is a duplicate', async () => {
    const [ann, bob] = await newIdentities(2)
    const c = dmConversationId(ann!.peerId, bob!.peerId)
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    // as the receive pipeline stores it: the time and text of the envelope's body
    const texts = new Map<string, string>()
    const at = (env: Envelope): StoredMessage => ({ ...storedMessage({ id: env.id, conv: c, author: ann!.peerId, seq: env.seq, hlc: env.hlc, text: texts.get(env.id) }), envelope: env })
    const y1 = sealEnvelope(ann!, { id: newMessageId(), conv: c, seq: 1, hlc: { w: 5, c: 0 }, recipients: [bob!.peerId, ann!.peerId], body: { text: 'y' } })
    const y3 = sealEnvelope(ann!, { id: y1.id, conv: c, seq: 3, hlc: y1.hlc, recipients: [bob!.peerId, ann!.peerId], body: { text: 'y' } })
    const x1 = sealEnvelope(ann!, { id: newMessageId(), conv: c, seq: 1, hlc: { w: 4, c: 0 }, recipients: [bob!.peerId, ann!.peerId], body: { text: 'x' } })
    texts.set(y1.id, 'y').set(x1.id, 'x')
    assert.equal(await store.storeIncoming(at(y1)), 'stored')
    assert.equal(await store.storeIncoming(at(x1)), 'conflict', 'two messages never share a number')
    assert.equal(await store.storeIncoming(at(y3)), 'moved')
    assert.equal((await store.getMessage(y1.id))?.seq, 3)
    assert.equal((await store.haveVector(c))[ann!.peerId], 0, 'the freed number is asked for again')
    assert.equal(await store.storeIncoming(at(x1)), 'stored')
    assert.equal(await store.storeIncoming(at(y1)), 'duplicate', 'the old copy, late: held already, under its new number')
    assert.deepEqual((await store.envelopesAfter(c, ann!.peerId, 0)).map(e => [e.id, e.seq]), [[x1.id, 1], [y1.id, 3]])
    assert.equal((await store.haveVector(c))[ann!.peerId], 1)
    // a move into a number another message holds is refused
    const z3 = sealEnvelope(ann!, { id: x1.id, conv: c, seq: 3, hlc: x1.hlc, recipients: [bob!.peerId, ann!.peerId], body: { text: 'x' } })
    assert.equal(await store.storeIncoming(at(z3)), 'conflict')
    assert.equal((await checkStore((store as unknown as { db: never }).db, false)).fixes, 0, 'the indexes agree with the messages')
    await store.stop()
  })
})

describe('holding in a group until every member answered (not the first one)', () => {
  /** Ann's store with a group of three; `send` seals real envelopes (a release re-seals them) */
  const groupScene = async (letter: string) => {
    const [mine, bob, carol] = await newIdentities(3)
    const g = 'g:' + letter.repeat(22)
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    const members = [bob!.peerId, carol!.peerId]
    const send = async (held: boolean): Promise<StoredMessage> => await store.appendOutgoing(g, mine!.peerId, members, seq => {
      const envelope = sealEnvelope(mine!, { id: newMessageId(), conv: g, seq, hlc: { w: 100 + seq, c: 0 }, recipients: [...members, mine!.peerId], body: { text: 'x' } })
      return { id: envelope.id, conv: g, author: mine!.peerId, seq, hlc: envelope.hlc, text: 'x', outgoing: true, state: 'queued', storedAt: 0, envelope, ...(held ? { held: true } : {}) }
    })
    return { mine, bob, carol, g, store, members, send }
  }

  it('after a clean start a known group is held until every other member answered; released above the highest proven top', async () => {
    const { mine, bob, carol, g, store, members, send } = await groupScene('A')
    await send(false)
    const rec = new Reconciler({ store, identity: mine!, log: silentLogger, members: () => members }, { startWaitMs: 60_000 })
    await rec.start()
    assert.equal(rec.holds(g), true, 'a group known at start is held')
    assert.equal(rec.holds('g:' + 'B'.repeat(22)), false, 'a group made since is not')
    assert.equal(rec.holds(dmConversationId(mine!.peerId, bob!.peerId)), false, 'direct conversations are not (a conflict there is re-sealed)')
    const held = await send(true)
    // Bob answers first, holding only 1 of ours; Carol holds 4 (the store lost 2..4)
    assert.deepEqual(await rec.peerReported(g, bob!.peerId, 1), [])
    assert.equal(rec.holds(g), true, 'the first member to answer does not decide')
    const released = await rec.peerReported(g, carol!.peerId, 4)
    assert.deepEqual(released.map(m => [m.id, m.seq]), [[held.id, 5]])
    assert.equal(rec.holds(g), false)
    rec.stop()
    await store.stop()
  })

  it('when the wait runs out, a send made while the release is on its way is numbered after the held ones (send order kept)', async () => {
    const { mine, g, store, members, send } = await groupScene('D')
    await send(false)
    let gate: (() => void) | undefined
    let gated = false
    // the wait's end lists the conversations first: held up here, a send comes in between
    const slow = Object.assign(Object.create(store) as LevelStore, {
      listConversations: async () => {
        if (gated) await new Promise<void>(resolve => { gate = resolve })
        return await store.listConversations()
      }
    })
    const rec = new Reconciler({ store: slow, identity: mine!, log: silentLogger, members: () => members }, { startWaitMs: 100 })
    await rec.start()
    gated = true
    const first = await send(rec.holds(g))
    assert.equal(first.held, true)
    await until(() => gate, 'the wait ran out', 5000)
    const second = await send(rec.holds(g))
    gated = false
    gate!()
    await until(async () => (await store.getMessage(first.id))?.held !== true && (await store.getMessage(second.id))?.held !== true, 'both released', 5000)
    const [a, b] = [(await store.getMessage(first.id))!, (await store.getMessage(second.id))!]
    assert.ok(a.seq < b.seq, `the earlier send keeps the lower number (${a.seq} < ${b.seq})`)
    rec.stop()
    await store.stop()
  })

  it('when the wait runs out, what is held goes out above every top proven so far', async () => {
    const { mine, bob, g, store, members, send } = await groupScene('C')
    await send(false)
    const out: StoredMessage[] = []
    const rec = new Reconciler({ store, identity: mine!, log: silentLogger, members: () => members, released: (m) => { out.push(m) } }, { startWaitMs: 200 })
    await rec.start()
    const held = await send(true)
    await rec.peerReported(g, bob!.peerId, 3)
    await until(async () => out.length > 0, 'released when the wait ran out', 5000)
    assert.deepEqual(out.map(m => [m.id, m.seq]), [[held.id, 4]])
    assert.equal(rec.holds(g), false)
    assert.equal((await send(rec.holds(g))).seq, 5)
    rec.stop()
    await store.stop()
  })
})
