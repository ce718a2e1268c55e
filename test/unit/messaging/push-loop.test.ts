/**
 * The push loop (node/src/messaging/push-loop.ts) with its real parts on a
 * typed fake network: a message queued while a pass runs is delivered by one
 * more pass, an offline peer is dialled with backoff (not on every retry
 * pass), and what it is owed goes out once the dial connects.
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { PushLoop } from '../../../node/src/messaging/push-loop.js'
import { PeerChannels } from '../../../node/src/messaging/peer-channels.js'
import { Delivery } from '../../../node/src/messaging/delivery.js'
import { Sync } from '../../../node/src/messaging/sync.js'
import { Deposits } from '../../../node/src/messaging/deposits.js'
import { GroupService } from '../../../node/src/messaging/group-service.js'
import type { MessengerEvents } from '../../../node/src/messaging/types.js'
import { LevelStore } from '../../../node/src/store/level-store.js'
import type { StoredMessage } from '../../../node/src/store/types.js'
import { dmConversationId } from '../../../core/protocol/envelope.js'
import { silentLogger } from '../../../core/util/log.js'
import { EventRecorder } from '../helpers/events.js'
import { FakeNetwork, type FakeHost } from '../helpers/fake-host.js'
import { storedMessage } from '../helpers/store.js'
import { PEER_A, PEER_B } from '../helpers/peer-ids.js'

describe('PushLoop', () => {
  let net: FakeNetwork
  let host: FakeHost
  let store: LevelStore
  let events: EventRecorder<MessengerEvents>
  let loop: PushLoop
  let delivered: string[]
  const conv = dmConversationId(PEER_A, PEER_B)
  const queue = async (text: string): Promise<StoredMessage> =>
    await store.appendOutgoing(conv, PEER_A, [PEER_B], seq => storedMessage({ conv, author: PEER_A, seq, text, to: [PEER_B], outgoing: true }))

  beforeEach(async () => {
    net = new FakeNetwork()
    host = net.host(PEER_A)
    delivered = []
    // bob answers every delivery at once and records its id
    const bob = new PeerChannels({ host: net.host(PEER_B), log: silentLogger }, {
      serve: async (_remote, method, body) => {
        if (method === 'getHave') return {}
        delivered.push((body as { id: string }).id)
        return { status: 'stored' }
      }
    })
    await bob.start()
    store = new LevelStore(new MemoryLevel())
    await store.start()
    events = new EventRecorder()
    const c = { store, host, log: silentLogger, events }
    const channels = new PeerChannels(c, { serve: async () => ({}) })
    const groups = new GroupService({
      ...c, self: PEER_A, selfName: () => 'A', send: async () => { throw new Error('unused') }, syncWith: () => {}, isConnected: () => false
    })
    const delivery = new Delivery(c, { sendWindow: 4 })
    loop = new PushLoop({
      ...c,
      channels,
      delivery,
      sync: new Sync({ ...c, self: PEER_A, groups, delivery, reconciler: { epoch: 'e1', peerReported: async () => [] }, released: () => {} }),
      deposits: new Deposits({ ...c, changed: () => {} }, { depositAfterMs: 0, sendWindow: 4 }),
      forget: () => {}
    }, { retryIntervalMs: 60_000, maxRedialBackoffMs: 4000 })
    loop.start()
    // as the Messenger wires it
    host.addEventListener('peerConnected', (evt) => { loop.peerConnected(evt.detail.peerId) })
  })
  afterEach(async () => { loop.stop(); await store.stop() })

  it('a message queued while a pass runs is delivered by one more pass', async () => {
    net.connect(PEER_A, PEER_B)
    const first = await queue('one')
    loop.schedule(PEER_B)
    const second = await queue('two')
    loop.schedule(PEER_B)
    await waitFor(async () => (await store.outboxPeers()).length === 0)
    assert.deepEqual(delivered, [first.id, second.id])
    assert.deepEqual(events.of('messageStateChanged').map(m => [m.id, m.state]), [[first.id, 'delivered'], [second.id, 'delivered']])
  })

  it('dials an offline peer it owes messages, not again within the backoff; a peer owed nothing is not dialled', async () => {
    await loop.retryAll()
    assert.deepEqual(host.dials, [], 'nothing owed, no dial')
    await queue('for later')
    await loop.retryAll()
    await loop.retryAll()
    await loop.retryAll()
    assert.deepEqual(host.dials, [PEER_B], 'one dial within the first backoff')
  })

  it('delivers what is owed once the dial connects', async () => {
    const m = await queue('for later')
    host.dialConnects = true
    await loop.retryAll()
    await waitFor(async () => (await store.outboxPeers()).length === 0)
    assert.deepEqual(delivered, [m.id])
  })
})

async function waitFor (cond: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 5000
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}
