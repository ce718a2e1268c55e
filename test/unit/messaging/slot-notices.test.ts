/**
 * SlotNotices (node/src/messaging/slot-notices.ts, issue 9 N3) on real
 * stores: what the refusing device gives back (the highest first, the one at
 * the refused number naming the refused message), and what the author does
 * with it (the move and the lost one back; an old copy of a moved message
 * answered with the moved copy and the refused message again).
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { LevelStore } from '../../../node/src/store/level-store.js'
import { Reconciler } from '../../../node/src/messaging/reconcile.js'
import { SlotNotices } from '../../../node/src/messaging/slot-notices.js'
import { newMessageId, sealEnvelope, signSlotTaken, verifySlotTaken } from '../../../core/crypto/envelope.js'
import { dmConversationId, type Envelope } from '../../../core/protocol/envelope.js'
import { silentLogger } from '../../../core/util/log.js'
import { GIVE_BACK_ROUND } from '../../../core/protocol/slot-notice.js'
import type { DeviceIdentity } from '../../../core/keys.js'
import type { StoredMessage } from '../../../node/src/store/types.js'
import { newIdentities } from '../helpers/identities.js'

describe('slot notices', () => {
  let ann: DeviceIdentity, bob: DeviceIdentity
  let conv: string
  let store: LevelStore
  const redeposits: Array<[string, Array<[string, number]>]> = []
  beforeEach(async () => {
    [ann, bob] = await newIdentities(2) as [DeviceIdentity, DeviceIdentity]
    conv = dmConversationId(ann.peerId, bob.peerId)
    store = new LevelStore(new MemoryLevel())
    await store.start()
    redeposits.length = 0
  })
  afterEach(async () => { await store.stop() })

  const seal = (seq: number, id = newMessageId()): Envelope =>
    sealEnvelope(ann, { id, conv, seq, hlc: { w: 1000 + seq, c: 0 }, recipients: [bob.peerId, ann.peerId], body: { text: `ann ${seq}` } })
  const msg = (env: Envelope, outgoing: boolean): StoredMessage => ({
    id: env.id, conv, author: env.author, seq: env.seq, hlc: env.hlc, text: `ann ${env.seq}`, outgoing, state: outgoing ? 'sent' : 'received', storedAt: 0, envelope: env
  })
  const notices = (me: DeviceIdentity): SlotNotices => new SlotNotices({
    store,
    identity: me,
    log: silentLogger,
    reconciler: new Reconciler({ store, identity: me, log: silentLogger }),
    receive: async (_from, env) => { const r = await store.storeIncoming(msg(env, true)); assert.equal(r, 'stored'); return r },
    redeposit: async (peer, envs) => { redeposits.push([peer, envs.map(e => [e.id, e.seq])]) }
  })

  it('the refusing device gives back the highest first, then from the refused number up; the one there names the refused message', async () => {
    const held = [seal(5), seal(6), seal(7)]
    for (const e of [seal(4), ...held]) await store.storeIncoming(msg(e, false))
    const refused = seal(5)
    const n = notices(bob)
    const out = await n.noticesFor([refused])
    await n.notGiven([])
    assert.deepEqual(out.map(e => e.seq), [7, 5, 6])
    for (const e of out) assert.equal(verifySlotTaken(e).by, bob.peerId)
    assert.deepEqual(out.map(e => e.taken?.refused), [undefined, refused.id, undefined])
    // nothing held under the refused number now (it moved meanwhile): nothing to tell
    assert.deepEqual(await notices(bob).noticesFor([seal(9)]), [])
  })

  it('the whole lost run comes back, a page per round, the top first; a page the relay did not take is given again (review s5 M3)', async () => {
    const held: Envelope[] = []
    for (let seq = 1; seq <= 40; seq++) held.push(seal(seq))
    for (const e of held) await store.storeIncoming(msg(e, false))
    const refused = seal(1)
    const n1 = notices(bob)
    const first = await n1.noticesFor([refused])
    assert.deepEqual(first.map(e => e.seq), [40, ...Array.from({ length: 32 }, (_, i) => i + 1)], 'the top, the refused number, then a page')
    assert.equal(first[1]!.taken?.refused, refused.id)
    await n1.notGiven([])
    // the next round (a later drain; a fresh instance: the rest is kept in meta across a restart); the top first again
    const n2 = notices(bob)
    const second = await n2.noticesFor([])
    assert.deepEqual(second.map(e => e.seq), [40, 33, 34, 35, 36, 37, 38, 39])
    await n2.notGiven([])
    assert.deepEqual(new Set([...first, ...second].map(e => e.id)), new Set(held.map(e => e.id)), 'all 40 given back')
    assert.deepEqual(await notices(bob).noticesFor([]), [], 'nothing left')
    // a page the relay did not take (its author's mailbox full): given again on the next round, the top first
    const n = notices(bob)
    await n.notGiven(second.slice(2))
    assert.deepEqual((await n.noticesFor([])).map(e => e.seq), [40, 34, 35, 36, 37, 38, 39])
    await n.notGiven([])
    assert.deepEqual(await n.noticesFor([]), [])
  })

  it('a page whose deposits did not go through (connection lost, kill -9) is given again: the position is saved only after them (review s5-b M1-b)', async () => {
    for (let seq = 1; seq <= 40; seq++) await store.storeIncoming(msg(seal(seq), false))
    const n = notices(bob)
    await n.noticesFor([seal(1)])
    await n.notGiven([])
    // round 2: the connection drops during its deposits, so `notGiven` is never called
    assert.deepEqual((await n.noticesFor([])).map(e => e.seq), [40, 33, 34, 35, 36, 37, 38, 39])
    // the same instance (the drain again) and a fresh one (after a kill -9): the page comes again
    assert.deepEqual((await notices(bob).noticesFor([])).map(e => e.seq), [40, 33, 34, 35, 36, 37, 38, 39])
    assert.deepEqual((await n.noticesFor([])).map(e => e.seq), [40, 33, 34, 35, 36, 37, 38, 39])
    await n.notGiven([])
    assert.deepEqual(await notices(bob).noticesFor([]), [], 'given once the deposits went through')
  })

  it('after a round the relay did not take, the next round gives the top first again, then the run from its start (review s5-b M2-b)', async () => {
    for (let seq = 1; seq <= 40; seq++) await store.storeIncoming(msg(seal(seq), false))
    const n = notices(bob)
    const first = await n.noticesFor([seal(1)])
    await n.notGiven(first)
    const again = await n.noticesFor([])
    assert.deepEqual(again.map(e => e.seq), [40, ...Array.from({ length: 32 }, (_, i) => i + 1)], 'the top first, then from the refused number up')
  })

  it('one round gives back at most GIVE_BACK_ROUND beside the proofs; the rest on later rounds', async () => {
    const other = (await newIdentities(1))[0]!
    const conv2 = dmConversationId(other.peerId, bob.peerId)
    const sealBy = (who: DeviceIdentity, c: string, seq: number): Envelope =>
      sealEnvelope(who, { id: newMessageId(), conv: c, seq, hlc: { w: 1000 + seq, c: 0 }, recipients: [bob.peerId, who.peerId], body: { text: `${seq}` } })
    const all: Envelope[] = []
    for (let seq = 1; seq <= 50; seq++) all.push(seal(seq), sealBy(other, conv2, seq))
    for (const e of all) await store.storeIncoming({ ...msg(e, false), conv: e.conv, author: e.author })
    const n = notices(bob)
    const rounds: number[] = []
    const given = new Set<string>()
    let out = await n.noticesFor([seal(1), sealBy(other, conv2, 1)])
    while (out.length > 0) {
      rounds.push(out.length)
      for (const e of out) given.add(e.id)
      await n.notGiven([])
      out = await n.noticesFor([])
    }
    assert.ok(rounds.every(r => r <= GIVE_BACK_ROUND + 4), `bounded per round: ${rounds.join(', ')}`)
    assert.equal(given.size, 100, 'every envelope of both runs given back over the rounds')
  })

  it('the author: its message at that number moves above everything given back, and the lost one lands in its old number', async () => {
    const x = seal(5)
    await store.storeIncoming(msg(x, true))
    const n = notices(ann)
    const top = signSlotTaken(bob, seal(7))
    const lost = signSlotTaken(bob, seal(5), x.id)
    assert.equal(await (await n.accept(top, bob.peerId)).durable, 'stored')
    assert.equal(await (await n.accept(lost, bob.peerId)).durable, 'stored')
    const moved = await store.getMessage(x.id)
    assert.equal(moved?.seq, 8, 'moved above the highest given back')
    assert.equal(moved?.moves, 1)
    assert.equal((await store.getMessage(lost.id))?.seq, 5, 'the lost one back under its number')
    // the same notice again (a replay): nothing moves
    assert.equal(await (await n.accept(lost, bob.peerId)).durable, 'duplicate')
    assert.equal((await store.getMessage(x.id))?.seq, 8)
  })

  it('an old copy of a message that moved since: the device gets the moved copy, then the message it refused there again', async () => {
    const w = seal(9)
    const x = seal(5)
    for (const e of [w, x]) await store.storeIncoming(msg(e, true))
    const oldW = signSlotTaken(bob, seal(5, w.id), x.id)
    const n = notices(ann)
    assert.equal(await (await n.accept(oldW, bob.peerId)).durable, 'duplicate')
    assert.deepEqual(redeposits, [[bob.peerId, [[w.id, 9], [x.id, 5]]]])
    assert.equal((await store.getMessage(x.id))?.seq, 5, 'nothing moved')
    // the same old copy handed round again (a relay, or a loop): answered once per run, no more deposits
    assert.equal(await (await n.accept(oldW, bob.peerId)).durable, 'duplicate')
    assert.equal(redeposits.length, 1)
  })
})
