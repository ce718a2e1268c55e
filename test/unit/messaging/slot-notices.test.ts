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
    const out = await notices(bob).noticesFor([refused])
    assert.deepEqual(out.map(e => e.seq), [7, 5, 6])
    for (const e of out) assert.equal(verifySlotTaken(e).by, bob.peerId)
    assert.deepEqual(out.map(e => e.taken?.refused), [undefined, refused.id, undefined])
    // nothing held under the refused number now (it moved meanwhile): nothing to tell
    assert.deepEqual(await notices(bob).noticesFor([seal(9)]), [])
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
    assert.equal(await (await notices(ann).accept(oldW, bob.peerId)).durable, 'duplicate')
    assert.deepEqual(redeposits, [[bob.peerId, [[w.id, 9], [x.id, 5]]]])
    assert.equal((await store.getMessage(x.id))?.seq, 5, 'nothing moved')
  })
})
