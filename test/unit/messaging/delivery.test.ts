/**
 * Delivery (node/src/messaging/delivery.ts) to a scripted peer on the typed
 * fake network: acks mark messages delivered, "not yet" (ERR_UNKNOWN_GROUP)
 * is skipped without blocking what follows, a permanent refusal marks the
 * message failed for that peer.
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { Delivery } from '../../../node/src/messaging/delivery.js'
import type { MessengerEvents } from '../../../node/src/messaging/types.js'
import { LevelStore } from '../../../node/src/store/level-store.js'
import type { StoredMessage } from '../../../node/src/store/types.js'
import { dmConversationId, type Envelope } from '../../../core/protocol/envelope.js'
import { silentLogger } from '../../../core/util/log.js'
import { EventRecorder } from '../helpers/events.js'
import { FakeNetwork } from '../helpers/fake-host.js'
import { PEER_A, PEER_B } from '../helpers/peer-ids.js'
import { callingChannels, deliverUnless, scriptedPeer, type ScriptedPeer } from '../helpers/scripted-peer.js'
import { storedMessage } from '../helpers/store.js'

describe('Delivery', () => {
  const conv = dmConversationId(PEER_A, PEER_B)
  let store: LevelStore
  let events: EventRecorder<MessengerEvents>
  let bob: ScriptedPeer
  let delivery: Delivery
  let net: FakeNetwork

  /** `n` messages from us to bob, stored as queued */
  const queue = async (n: number): Promise<StoredMessage[]> => {
    const out: StoredMessage[] = []
    for (let i = 0; i < n; i++) {
      out.push(await store.appendOutgoing(conv, PEER_A, [PEER_B], seq => storedMessage({ conv, author: PEER_A, seq, to: [PEER_B], outgoing: true })))
    }
    return out
  }
  const deliver = async (msgs: StoredMessage[]): Promise<number> => {
    const ch = await callingChannels(net.get(PEER_A)!).get(PEER_B)
    return await delivery.deliverAll(PEER_B, ch, msgs.map(m => m.envelope))
  }
  const state = async (m: StoredMessage): Promise<string | undefined> => (await store.getMessage(m.id))?.state
  /** bob refuses the envelopes whose seq is in `refuse` with its code, and stores the rest */
  const refusing = (refuse: Record<number, string>) => async (_method: string, body: unknown): Promise<unknown> => await deliverUnless(() => refuse)(body)

  beforeEach(async () => {
    store = new LevelStore(new MemoryLevel())
    await store.start()
    events = new EventRecorder()
    net = new FakeNetwork()
    net.host(PEER_A)
    bob = scriptedPeer(net, PEER_B, refusing({}))
    net.connect(PEER_A, PEER_B)
    delivery = new Delivery({ store, log: silentLogger, events }, { sendWindow: 2 })
  })
  afterEach(async () => { await store.stop() })

  it('marks each acked message delivered, in windows, and counts them settled', async () => {
    const msgs = await queue(5)
    assert.equal(await deliver(msgs), 5)
    assert.deepEqual(bob.calls.map(c => (c.body as Envelope).seq), [1, 2, 3, 4, 5])
    for (const m of msgs) assert.equal(await state(m), 'delivered')
    assert.deepEqual(events.of('messageStateChanged').map(m => m.id).sort(), msgs.map(m => m.id).sort())
    assert.deepEqual(await store.outboxPeers(), [])
  })

  it('skips a message the peer cannot judge yet (ERR_UNKNOWN_GROUP): still queued, and what follows is delivered', async () => {
    const msgs = await queue(3)
    bob.script = refusing({ 2: 'ERR_UNKNOWN_GROUP' })
    assert.equal(await deliver(msgs), 2, 'the skipped one is not settled')
    assert.deepEqual([await state(msgs[0]!), await state(msgs[1]!), await state(msgs[2]!)], ['delivered', 'queued', 'delivered'])
    assert.deepEqual((await store.outbox(PEER_B)).map(m => m.id), [msgs[1]!.id], 'still owed to bob')
  })

  it('a permanent refusal marks the message failed for that peer with the code, and settles it', async () => {
    const msgs = await queue(3)
    bob.script = refusing({ 2: 'ERR_NOT_A_MEMBER' })
    assert.equal(await deliver(msgs), 3)
    const failed = await store.getMessage(msgs[1]!.id)
    assert.equal(failed?.state, 'failed')
    assert.equal(failed?.error, 'ERR_NOT_A_MEMBER')
    assert.equal(await state(msgs[2]!), 'delivered', 'the refusal did not block what follows')
    assert.ok(events.of('messageStateChanged').some(m => m.id === msgs[1]!.id && m.state === 'failed'))
    assert.deepEqual(await store.outboxPeers(), [])
  })

  it('any other error stops the delivery and leaves the message queued for a retry', async () => {
    const msgs = await queue(3)
    bob.script = refusing({ 1: 'ERR_INTERNAL' })
    await assert.rejects(deliver(msgs))
    assert.equal(await state(msgs[0]!), 'queued')
    assert.ok((await store.outbox(PEER_B)).some(m => m.id === msgs[0]!.id))
  })
})
