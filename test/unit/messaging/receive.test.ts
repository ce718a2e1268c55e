/**
 * The receive pipeline (node/src/messaging/receive.ts) on a LevelStore whose
 * fsync the test releases: the answer waits for the durable write, duplicates
 * and refusals answer at once, and group envelopes are judged in turn.
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { LevelStore } from '../../../node/src/store/level-store.js'
import { ReceivePipeline } from '../../../node/src/messaging/receive.js'
import { AckAfterWrite } from '../../../core/rpc/channel.js'
import type { DeliverResult } from '../../../core/protocol/peer-rpc.js'
import { GroupService } from '../../../node/src/messaging/group-service.js'
import type { MessengerEvents } from '../../../node/src/messaging/types.js'
import { HybridClock } from '../../../node/src/clock/hlc.js'
import { newMessageId, sealEnvelope } from '../../../core/crypto/envelope.js'
import { dmConversationId, type Body, type Envelope, type EnvelopeKind } from '../../../core/protocol/envelope.js'
import { ParleyError } from '../../../core/errors.js'
import { silentLogger } from '../../../core/util/log.js'
import type { DeviceIdentity } from '../../../core/keys.js'
import { newIdentities } from '../helpers/identities.js'
import { EventRecorder } from '../helpers/events.js'
import { gatedDb, settled } from '../helpers/store.js'

describe('ReceivePipeline', () => {
  let alice: DeviceIdentity, bob: DeviceIdentity, carol: DeviceIdentity
  let store: LevelStore
  let gate: ReturnType<typeof gatedDb>
  let events: EventRecorder<MessengerEvents>
  let groups: GroupService
  let pipeline: ReceivePipeline
  let seq = 0
  const hlc = { w: Date.now(), c: 0 }
  const seal = (author: DeviceIdentity, conv: string, recipients: string[], body: Body, kind: EnvelopeKind = 'text', s = ++seq): Envelope =>
    sealEnvelope(author, { id: newMessageId(), conv, seq: s, hlc: { ...hlc, c: s }, recipients, body, kind })
  const dm = (text: string): Envelope => seal(alice, dmConversationId(alice.peerId, bob.peerId), [bob.peerId], { text })
  const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c
  /** the answer of a new message: sent once its write settles */
  const afterWrite = (a: DeliverResult | AckAfterWrite<DeliverResult>): AckAfterWrite<DeliverResult> => {
    assert.ok(a instanceof AckAfterWrite, 'a new message is answered after its write')
    return a
  }

  beforeEach(async () => {
    [alice, bob, carol] = await newIdentities(3) as [DeviceIdentity, DeviceIdentity, DeviceIdentity]
    gate = gatedDb()
    store = new LevelStore(gate.db)
    await store.start()
    events = new EventRecorder()
    groups = new GroupService({
      store,
      log: silentLogger,
      events,
      self: bob.peerId,
      selfName: () => 'Bob',
      send: async () => { throw new Error('not used') },
      syncWith: () => {},
      isConnected: () => false
    })
    pipeline = new ReceivePipeline({ store, identity: bob, clock: new HybridClock(), events, groups })
  })
  afterEach(async () => {
    for (let i = 0; i < 10; i++) gate.release()
    await store.stop()
  })

  it('answers only once the message is durably stored, then announces it', async () => {
    const env = dm('hello')
    const answer = afterWrite(await pipeline.handlers.deliver(alice.peerId, env))
    assert.equal(await settled(answer.durable), false, 'no answer before the write')
    assert.equal(events.of('messageStored').length, 0)
    gate.release()
    assert.deepEqual(await answer.durable, { status: 'stored' })
    assert.deepEqual(events.of('messageStored').map(m => m.text), ['hello'])
    assert.equal((await store.getMessage(env.id))?.state, 'received')
  })

  it('answers a duplicate at once, without a write', async () => {
    const env = dm('once')
    const first = afterWrite(await pipeline.receive(alice.peerId, env))
    gate.release()
    await first.durable
    const before = gate.batches()
    // the plain value: the channel sends it before it handles the next request (a replay flood stays in step)
    const again = await pipeline.receive(alice.peerId, env)
    assert.deepEqual(again, { status: 'duplicate' })
    assert.equal(gate.batches(), before)
  })

  it('a duplicate of a copy still being written is acknowledged only once that copy is on disk', async () => {
    const env = dm('two routes at once')
    const first = afterWrite(await pipeline.receive(alice.peerId, env))
    while (gate.batches() === 0) await new Promise(resolve => setImmediate(resolve))
    const second = afterWrite(await pipeline.receive(alice.peerId, env))
    assert.equal(await settled(second.durable), false, 'no ack before the first copy is durable')
    gate.release()
    assert.deepEqual(await first.durable, { status: 'stored' })
    assert.deepEqual(await second.durable, { status: 'duplicate' })
  })

  it('a duplicate of a copy whose write fails fails too: the sender keeps it and tries again', async () => {
    const env = dm('lost write')
    const first = afterWrite(await pipeline.receive(alice.peerId, env))
    // the first copy is staged and its batch is being written when the second arrives
    while (gate.batches() === 0) await new Promise(resolve => setImmediate(resolve))
    const second = afterWrite(await pipeline.receive(alice.peerId, env))
    gate.failNext()
    gate.release()
    const [a, b] = await Promise.allSettled([first.durable, second.durable])
    assert.equal(a.status, 'rejected')
    assert.equal(b.status, 'rejected', 'not acknowledged as a duplicate of a copy that was never written')
  })

  it('refuses before any write: not addressed to us, another sender, another id holder', async () => {
    const other = seal(alice, dmConversationId(alice.peerId, carol.peerId), [carol.peerId], { text: 'for carol' })
    await assert.rejects(pipeline.receive(alice.peerId, other), code('ERR_NOT_A_RECIPIENT'))
    await assert.rejects(pipeline.receive(carol.peerId, dm('relayed by a stranger')), code('ERR_INVALID_ENVELOPE'))
    const env = dm('mine')
    gate.release()
    await afterWrite(await pipeline.receive(alice.peerId, env)).durable
    const twin = { ...dm('same id'), id: env.id }
    await assert.rejects(pipeline.receive(alice.peerId, twin), code('ERR_BAD_SIGNATURE'))
    // signed by the author under the same id at a higher number, but another message (time, text, reply): not a
    // move; judged by the store inside its write (two copies at once cannot both pass), refused with its answer
    const conv = dmConversationId(alice.peerId, bob.peerId)
    const otherTime = sealEnvelope(alice, { id: env.id, conv, seq: env.seq + 5, hlc: { ...env.hlc, c: env.hlc.c + 1 }, recipients: [bob.peerId, alice.peerId], body: { text: 'mine' } })
    const otherText = sealEnvelope(alice, { id: env.id, conv, seq: env.seq + 5, hlc: env.hlc, recipients: [bob.peerId, alice.peerId], body: { text: 'not mine' } })
    const otherReply = sealEnvelope(alice, {
      id: env.id, conv, seq: env.seq + 5, hlc: env.hlc, recipients: [bob.peerId, alice.peerId], body: { text: 'mine', reply: { id: env.id, author: alice.peerId, text: 'x' } }
    })
    for (const not of [otherTime, otherText, otherReply]) {
      await assert.rejects(afterWrite(await pipeline.receive(alice.peerId, not)).durable, code('ERR_ID_CONFLICT'))
      assert.equal((await store.getMessage(env.id))?.seq, env.seq)
    }
    // the same message moved by its author: it takes the new number (answered stored); its old copy then is a duplicate
    const moved = sealEnvelope(alice, { id: env.id, conv, seq: env.seq + 5, hlc: env.hlc, recipients: [bob.peerId, alice.peerId], body: { text: 'mine' } })
    gate.release()
    assert.deepEqual(await afterWrite(await pipeline.receive(alice.peerId, moved)).durable, { status: 'stored' })
    assert.equal((await store.getMessage(env.id))?.seq, env.seq + 5)
    assert.deepEqual(await pipeline.receive(alice.peerId, env), { status: 'duplicate' })
  })

  it('judges a group message after the op received before it is folded in', async () => {
    const conv = `g:${newMessageId()}`
    const create = seal(alice, conv, [bob.peerId], { text: 'created', op: { type: 'create', name: 'team', members: [bob.peerId] } }, 'groupOp', 1)
    const text = seal(alice, conv, [bob.peerId], { text: 'hi team' }, 'text', 2)
    // both handed over at once: the text waits for its turn, after the op is stored and folded in
    const a = pipeline.receive(alice.peerId, create)
    const b = pipeline.receive(alice.peerId, text)
    gate.release()
    gate.release()
    assert.deepEqual(await afterWrite(await a).durable, { status: 'stored' })
    assert.deepEqual(await afterWrite(await b).durable, { status: 'stored' })
    assert.deepEqual(groups.get(conv)?.members.sort(), [alice.peerId, bob.peerId].sort())
    assert.deepEqual(events.of('groupUpdated').map(g => g.name), ['team'])
  })

  it('answers "not yet" for a group it does not know, and "never" for a change only the admin may make', async () => {
    const conv = `g:${newMessageId()}`
    await assert.rejects(pipeline.receive(alice.peerId, seal(alice, conv, [bob.peerId], { text: 'early' })), code('ERR_UNKNOWN_GROUP'))
    const create = seal(alice, conv, [bob.peerId], { text: 'created', op: { type: 'create', name: 'team', members: [bob.peerId] } }, 'groupOp', 1)
    const stored = pipeline.receive(alice.peerId, create)
    gate.release()
    await afterWrite(await stored).durable
    const rename = seal(carol, conv, [bob.peerId], { text: 'mine now', op: { type: 'rename', name: 'ours' } }, 'groupOp', 1)
    await assert.rejects(pipeline.receive(carol.peerId, rename), code('ERR_NOT_A_MEMBER'))
  })

  it('mail from the relay takes the same path and reports the write', async () => {
    const env = dm('by mail')
    const accepted = await pipeline.acceptMail(env, alice.peerId)
    gate.release()
    assert.equal(await accepted.durable, 'stored')
    assert.equal((await pipeline.acceptMail(env, alice.peerId)).durable instanceof Promise, true)
    assert.equal(await (await pipeline.acceptMail(env, alice.peerId)).durable, 'duplicate')
  })
})
