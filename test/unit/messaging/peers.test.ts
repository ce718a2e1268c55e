/**
 * Peers (node/src/messaging/peers.ts) on a typed fake host: signed profiles
 * (only the peer's own, only newer ones), our own profile, and the warning
 * when a second key uses a name another key had first.
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { Peers } from '../../../node/src/messaging/peers.js'
import { PeerChannels } from '../../../node/src/messaging/peer-channels.js'
import type { MessengerEvents } from '../../../node/src/messaging/types.js'
import { LevelStore } from '../../../node/src/store/level-store.js'
import { signProfile } from '../../../core/crypto/envelope.js'
import { ParleyError } from '../../../core/errors.js'
import { silentLogger } from '../../../core/util/log.js'
import type { DeviceIdentity } from '../../../core/keys.js'
import { EventRecorder } from '../helpers/events.js'
import { FakeNetwork } from '../helpers/fake-host.js'
import { newIdentities } from '../helpers/identities.js'

describe('Peers', () => {
  let me: DeviceIdentity, bob: DeviceIdentity, mallory: DeviceIdentity
  let store: LevelStore
  let events: EventRecorder<MessengerEvents>
  let peers: Peers

  beforeEach(async () => {
    [me, bob, mallory] = await newIdentities(3) as [DeviceIdentity, DeviceIdentity, DeviceIdentity]
    store = new LevelStore(new MemoryLevel())
    await store.start()
    events = new EventRecorder()
    const host = new FakeNetwork().host(me.peerId)
    const channels = new PeerChannels({ host, log: silentLogger }, { serve: async () => ({}) })
    peers = new Peers({ store, host, identity: me, log: silentLogger, events, channels }, { name: 'Me' })
    await peers.loadProfile()
  })
  afterEach(async () => { await store.stop() })

  it('publishes our signed profile with the configured name', async () => {
    const profile = await peers.handlers.getProfile(bob.peerId, {})
    assert.equal(profile?.peerId, me.peerId)
    assert.equal(profile?.name, 'Me')
    assert.equal(peers.name, 'Me')
  })

  it('keeps a peer\'s own profile when newer, and refuses one about someone else', async () => {
    await peers.handlers.announceProfile(bob.peerId, signProfile(bob, 'Bob', 2000))
    await peers.handlers.announceProfile(bob.peerId, signProfile(bob, 'Old Bob', 1000))
    assert.equal((await store.getPeer(bob.peerId))?.profile?.name, 'Bob')
    await assert.rejects(peers.handlers.announceProfile(mallory.peerId, signProfile(bob, 'Bob', 3000)),
      (err: unknown) => err instanceof ParleyError && err.code === 'ERR_INVALID_ENVELOPE')
    assert.deepEqual(events.of('peerUpdated').map(v => v.name), ['Bob'])
  })

  it('warns about a second key using a name that another key had first', async () => {
    await store.putPeer({ peerId: bob.peerId, firstSeen: 1 })
    await peers.handlers.announceProfile(bob.peerId, signProfile(bob, 'Bob', 2000))
    await store.putPeer({ peerId: mallory.peerId, firstSeen: 2 })
    await peers.handlers.announceProfile(mallory.peerId, signProfile(mallory, 'bob', 2000))
    const views = await peers.listPeers()
    assert.equal(views.find(v => v.peerId === bob.peerId)?.keyWarning, null)
    assert.match(views.find(v => v.peerId === mallory.peerId)?.keyWarning ?? '', /compare safety numbers/)
    assert.notEqual(views[0]?.safetyNumber, views[1]?.safetyNumber)
  })

  it('keeps a stored name from before the NFKC rule: normalised and signed again, not reset', async () => {
    // a data dir from before the upgrade: the profile signed with fullwidth parentheses
    await store.putMeta('profile', signProfile(me, '张伟（销售）', 1000))
    const host = new FakeNetwork().host(me.peerId)
    const channels = new PeerChannels({ host, log: silentLogger }, { serve: async () => ({}) })
    const logged: string[] = []
    const log = { ...silentLogger, info: (m: string) => { logged.push(m) } }
    const again = new Peers({ store, host, identity: me, log, events, channels })
    await again.loadProfile()
    assert.equal(again.name, '张伟(销售)')
    const profile = await again.handlers.getProfile(bob.peerId, {})
    assert.equal(profile?.name, '张伟(销售)')
    assert.ok((profile?.updatedAt ?? 0) > 1000)
    assert.deepEqual((await store.getMeta('profile') as { name: string }).name, '张伟(销售)')
    assert.match(logged.join('\n'), /normalised/)
  })

  it('profiles from discovery records arriving together (joining an office) are listed once per batch, not once per profile', async () => {
    const colleagues = await newIdentities(40)
    let listings = 0
    const list = store.listPeers.bind(store)
    store.listPeers = async () => { listings++; return await list() }
    for (const [i, c] of colleagues.entries()) peers.discovered(c.peerId, JSON.stringify(signProfile(c, `Colleague ${i}`, 1000)))
    const deadline = Date.now() + 10_000
    while (events.of('peerUpdated').length < colleagues.length && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
    const names = new Set(events.of('peerUpdated').map(v => v.name))
    assert.equal(names.size, colleagues.length, 'every colleague reported, by name')
    // one listing per profile before (40 listings of up to 40 peers: O(N²) when 500 colleagues answer at once)
    assert.ok(listings <= 5, `listings of every peer: ${listings}`)
  })

  it('a batch whose listing failed is reported once more with the next batch', async () => {
    const list = store.listPeers.bind(store)
    let failures = 1
    store.listPeers = async () => { if (failures-- > 0) throw new Error('store busy'); return await list() }
    peers.discovered(bob.peerId, JSON.stringify(signProfile(bob, 'Bob', 1000)))
    const deadline = Date.now() + 10_000
    while (events.of('peerUpdated').length === 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
    assert.deepEqual(events.of('peerUpdated').map(v => v.name), ['Bob'])
  })

  it('accepts a peer\'s profile signed before the NFKC rule and shows its NFKC name', async () => {
    await peers.handlers.announceProfile(bob.peerId, signProfile(bob, '张伟（销售）', 2000))
    assert.equal((await store.getPeer(bob.peerId))?.profile?.name, '张伟（销售）')
    assert.equal((await peers.listPeers()).find(v => v.peerId === bob.peerId)?.name, '张伟(销售)')
    assert.equal(events.of('peerUpdated').at(-1)?.name, '张伟(销售)')
  })
})
