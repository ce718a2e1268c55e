/**
 * Have-vector sync (node/src/messaging/sync.ts) to a scripted peer on the
 * typed fake network: what the peer lacks by its have-vector, the watermark
 * that keeps settled pages from being sent again for the same have value,
 * and a refusal (final) told apart from an error worth a retry.
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { Delivery } from '../../../node/src/messaging/delivery.js'
import type { PeerChannel } from '../../../node/src/messaging/peer-channels.js'
import { Sync } from '../../../node/src/messaging/sync.js'
import type { MessengerEvents } from '../../../node/src/messaging/types.js'
import { LevelStore } from '../../../node/src/store/level-store.js'
import { MAX_SEQ, dmConversationId, type Envelope } from '../../../core/protocol/envelope.js'
import type { PeerRpcMethod } from '../../../core/protocol/peer-rpc.js'
import { ParleyError } from '../../../core/errors.js'
import { silentLogger } from '../../../core/util/log.js'
import { EventRecorder } from '../helpers/events.js'
import { testGroups } from '../helpers/groups.js'
import { FakeNetwork } from '../helpers/fake-host.js'
import { PEER_A, PEER_B, PEER_C } from '../helpers/peer-ids.js'
import { callingChannels, deliverUnless, scriptedPeer, type ScriptedPeer } from '../helpers/scripted-peer.js'
import { storedMessage } from '../helpers/store.js'

describe('Sync', () => {
  const conv = dmConversationId(PEER_A, PEER_B)
  let store: LevelStore
  let net: FakeNetwork
  let bob: ScriptedPeer
  let sync: Sync
  /** what bob reports holding of our messages */
  let bobHas: number
  /** seqs bob refuses, with the code */
  let refuse: Record<number, string>
  /** when set: bob's whole getHave answer */
  let haveAnswer: unknown

  const delivered = (): number[] => bob.calls.filter(c => c.method === 'deliver').map(c => (c.body as Envelope).seq)
  const channel = async (): Promise<PeerChannel> => await callingChannels(net.get(PEER_A)!).get(PEER_B)
  const script = async (method: PeerRpcMethod, body: unknown): Promise<unknown> => {
    if (method === 'getHave') return haveAnswer ?? (bobHas === 0 ? {} : { [PEER_A]: bobHas })
    return await deliverUnless(() => refuse)(body)
  }

  beforeEach(async () => {
    store = new LevelStore(new MemoryLevel())
    await store.start()
    const events = new EventRecorder<MessengerEvents>()
    const groups = testGroups({ store, events }, PEER_A)
    const delivery = new Delivery({ store, log: silentLogger, events }, { sendWindow: 4 })
    sync = new Sync({ store, log: silentLogger, self: PEER_A, groups, delivery, reconciler: { epoch: 'e1', peerReported: async () => [] }, released: () => {} })
    net = new FakeNetwork()
    net.host(PEER_A)
    bob = scriptedPeer(net, PEER_B, script)
    net.connect(PEER_A, PEER_B)
    bobHas = 0
    refuse = {}
    haveAnswer = undefined
    for (let i = 0; i < 3; i++) {
      await store.appendOutgoing(conv, PEER_A, [PEER_B], seq => storedMessage({ conv, author: PEER_A, seq, to: [PEER_B], outgoing: true }))
    }
  })
  afterEach(async () => { await store.stop() })

  it('a peer claiming a top of ours without our signed envelope as proof moves no counter (MAX_SEQ would end the conversation)', async () => {
    const reported: number[] = []
    const events = new EventRecorder<MessengerEvents>()
    const groups = testGroups({ store, events }, PEER_A)
    const delivery = new Delivery({ store, log: silentLogger, events }, { sendWindow: 4 })
    const s = new Sync({
      store, log: silentLogger, self: PEER_A, groups, delivery, released: () => {},
      reconciler: { epoch: 'e1', peerReported: async (_c, _p, top) => { reported.push(top); return [] } }
    })
    haveAnswer = { have: { [PEER_A]: 3 }, tops: { [PEER_A]: MAX_SEQ }, epoch: 'x' }
    await s.syncTo(PEER_B, await channel())
    // a proof that is not our signature (these test ids have no keys): not believed either
    haveAnswer = { have: { [PEER_A]: 3 }, tops: { [PEER_A]: MAX_SEQ }, epoch: 'x', proof: (await store.envelopesAfter(conv, PEER_A, 2))[0] }
    await s.syncTo(PEER_B, await channel())
    assert.deepEqual(reported, [0, 0])
  })

  it('sends what the peer lacks by its have-vector', async () => {
    bobHas = 1
    assert.equal(await sync.syncTo(PEER_B, await channel()), true)
    assert.deepEqual(delivered(), [2, 3])
  })

  it('does not send settled pages again while the peer reports the same have value; a new value syncs from it', async () => {
    // bob refuses seq 2 for good: he keeps reporting 1, which alone would resend 2 and 3 on every sync
    bobHas = 1
    refuse = { 2: 'ERR_NOT_A_MEMBER' }
    const ch = await channel()
    assert.equal(await sync.syncTo(PEER_B, ch), true)
    assert.deepEqual(delivered(), [2, 3])
    assert.equal(await sync.syncTo(PEER_B, ch), true)
    assert.deepEqual(delivered(), [2, 3], 'nothing again for the same have value')
    // bob lost data: he reports 0 now, and gets everything from there
    bobHas = 0
    assert.equal(await sync.syncTo(PEER_B, ch), true)
    assert.deepEqual(delivered(), [2, 3, 1, 2, 3])
  })

  it('the watermark does not pass a message the peer could not judge yet: it is sent again', async () => {
    refuse = { 2: 'ERR_UNKNOWN_GROUP' }
    const ch = await channel()
    await sync.syncTo(PEER_B, ch)
    assert.deepEqual(delivered(), [1, 2, 3])
    refuse = {}
    await sync.syncTo(PEER_B, ch)
    assert.deepEqual(delivered(), [1, 2, 3, 1, 2, 3])
  })

  it('a refusal of the conversation is final (true); an error at the peer asks for a retry (false)', async () => {
    bob.script = async (method, body) => {
      if (method === 'getHave') throw new ParleyError('ERR_NOT_FOUND', 'no such conversation')
      return await script(method, body)
    }
    const ch = await channel()
    assert.equal(await sync.syncTo(PEER_B, ch), true)
    bob.script = async (method, body) => {
      if (method === 'getHave') throw new ParleyError('ERR_INTERNAL', 'disk trouble')
      return await script(method, body)
    }
    assert.equal(await sync.syncTo(PEER_B, ch), false)
    bob.script = script
    refuse = { 3: 'ERR_TIMEOUT' }
    assert.equal(await sync.syncTo(PEER_B, ch), false, 'a delivery failing with a code worth a retry')
    assert.deepEqual(delivered(), [1, 2, 3])
  })

  it('a closed channel stops the sync with the error', async () => {
    const ch = await channel()
    await ch.close()
    await assert.rejects(sync.syncTo(PEER_B, ch))
  })

  it('answers getHave for a conversation both are in, refuses one the caller is not in', async () => {
    assert.deepEqual(await sync.handlers.getHave(PEER_B, { conv }), { [PEER_A]: 3 })
    await assert.rejects(sync.handlers.getHave(PEER_B, { conv: dmConversationId(PEER_A, PEER_C) }), (err: unknown) => err instanceof ParleyError && err.code === 'ERR_NOT_FOUND')
  })

  it('answers the slot question of the move: the envelope held at that number, null for none', async () => {
    const ask = async (seq: number): Promise<unknown> =>
      ((await sync.handlers.getHave(PEER_B, { conv, tops: true, slot: { author: PEER_A, seq } })) as { slot?: unknown }).slot
    const held = await store.envelopesAfter(conv, PEER_A, 1, 1)
    assert.deepEqual(await ask(2), held[0])
    assert.equal(await ask(9), null)
    // not asked: not answered
    assert.equal('slot' in (await sync.handlers.getHave(PEER_B, { conv, tops: true }) as object), false)
  })
})
