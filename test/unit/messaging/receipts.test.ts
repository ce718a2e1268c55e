/**
 * Receipts (node/src/messaging/receipts.ts) on the typed fake network: a
 * peer's receipt marks only our own outgoing messages of that conversation
 * read; marking a conversation seen tells its author, in chunks of at most
 * MAX_RECEIPT_IDS ids.
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { Receipts } from '../../../node/src/messaging/receipts.js'
import type { MessengerEvents } from '../../../node/src/messaging/types.js'
import { LevelStore } from '../../../node/src/store/level-store.js'
import type { StoredMessage } from '../../../node/src/store/types.js'
import { newMessageId } from '../../../core/crypto/envelope.js'
import { dmConversationId } from '../../../core/protocol/envelope.js'
import { MAX_RECEIPT_IDS } from '../../../core/protocol/peer-rpc.js'
import { ParleyError } from '../../../core/errors.js'
import { silentLogger } from '../../../core/util/log.js'
import { EventRecorder } from '../helpers/events.js'
import { testGroups } from '../helpers/groups.js'
import { FakeNetwork } from '../helpers/fake-host.js'
import { PEER_A, PEER_B, PEER_C } from '../helpers/peer-ids.js'
import { callingChannels, scriptedPeer, type ScriptedPeer } from '../helpers/scripted-peer.js'
import { storedMessage } from '../helpers/store.js'

describe('Receipts', () => {
  const conv = dmConversationId(PEER_A, PEER_B)
  let store: LevelStore
  let events: EventRecorder<MessengerEvents>
  let net: FakeNetwork
  let bob: ScriptedPeer
  let receipts: Receipts

  const outgoing = async (c: string, to: string[]): Promise<StoredMessage> => {
    const m = await store.appendOutgoing(c, PEER_A, to, seq => storedMessage({ id: newMessageId(), conv: c, author: PEER_A, seq, to, outgoing: true }))
    await store.markDelivered([m.id], to[0]!)
    return m
  }

  beforeEach(async () => {
    store = new LevelStore(new MemoryLevel())
    await store.start()
    events = new EventRecorder()
    net = new FakeNetwork()
    const host = net.host(PEER_A)
    bob = scriptedPeer(net, PEER_B, async () => ({}))
    net.connect(PEER_A, PEER_B)
    const groups = testGroups({ store, events }, PEER_A, (p) => host.isConnected(p))
    receipts = new Receipts({ store, host, log: silentLogger, events, self: PEER_A, channels: callingChannels(host), groups })
  })
  afterEach(async () => { await store.stop() })

  it('a receipt marks read only our own outgoing messages of the conversation it names', async () => {
    const ours = await outgoing(conv, [PEER_B])
    // ours too, and bob is a recipient, but of another conversation than the receipt names
    const elsewhere = await outgoing('g:elsewhere', [PEER_B])
    const theirs = storedMessage({ id: newMessageId(), conv, author: PEER_B, seq: 1 })
    assert.equal(await store.storeIncoming(theirs), 'stored')
    await receipts.handlers.receipt(PEER_B, { conv, ids: [ours.id, elsewhere.id, theirs.id, newMessageId()] })
    assert.equal((await store.getMessage(ours.id))?.state, 'read')
    assert.equal((await store.getMessage(elsewhere.id))?.state, 'delivered')
    assert.equal((await store.getMessage(theirs.id))?.state, 'received')
    assert.deepEqual(events.of('messageStateChanged').map(m => m.id), [ours.id])
  })

  it('a receipt from someone outside the conversation is refused', async () => {
    const ours = await outgoing(conv, [PEER_B])
    await assert.rejects(receipts.handlers.receipt(PEER_C, { conv, ids: [ours.id] }), (err: unknown) => err instanceof ParleyError && err.code === 'ERR_NOT_FOUND')
    assert.equal((await store.getMessage(ours.id))?.state, 'delivered')
  })

  it('marking a conversation seen tells the author, in chunks of at most MAX_RECEIPT_IDS ids', async () => {
    const n = 2 * MAX_RECEIPT_IDS + 5
    const incoming = Array.from({ length: n }, (_, i) => storedMessage({ conv, author: PEER_B, seq: i + 1 }))
    await Promise.all(incoming.map(async m => await store.storeIncoming(m)))
    assert.equal(await receipts.markSeen(PEER_B), n)
    const end = Date.now() + 5000
    while (bob.calls.flatMap(c => (c.body as { ids: string[] }).ids).length < n && Date.now() < end) {
      await new Promise(resolve => setImmediate(resolve))
    }
    assert.deepEqual(bob.calls.map(c => c.method), ['receipt', 'receipt', 'receipt'])
    const chunks = bob.calls.map(c => c.body as { conv: string, ids: string[] })
    assert.deepEqual(chunks.map(c => c.ids.length), [MAX_RECEIPT_IDS, MAX_RECEIPT_IDS, 5])
    assert.ok(chunks.every(c => c.conv === conv))
    assert.deepEqual(new Set(chunks.flatMap(c => c.ids)), new Set(incoming.map(m => m.id)))
  })

  it('no receipt to an author we are not connected to', async () => {
    await store.storeIncoming(storedMessage({ conv: dmConversationId(PEER_A, PEER_C), author: PEER_C, seq: 1 }))
    net.host(PEER_C)
    assert.equal(await receipts.markSeen(PEER_C), 1)
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(bob.calls, [])
  })
})
