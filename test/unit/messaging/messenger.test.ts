/**
 * The Messenger composed of its parts, two or three of them on a typed fake
 * network (no libp2p, no sockets): delivery and its states, the retry pass
 * and sync after a reconnect, profiles, receipts, typing and groups.
 */
import { describe, it, beforeEach, afterEach, mock } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { Messenger } from '../../../node/src/messaging/messenger.js'
import { LevelStore } from '../../../node/src/store/level-store.js'
import { HybridClock } from '../../../node/src/clock/hlc.js'
import type { StoredMessage } from '../../../node/src/store/types.js'
import { silentLogger } from '../../../core/util/log.js'
import type { DeviceIdentity } from '../../../core/keys.js'
import { newIdentities } from '../helpers/identities.js'
import { FakeNetwork, type FakeHost } from '../helpers/fake-host.js'

interface Peer { id: DeviceIdentity, host: FakeHost, store: LevelStore, m: Messenger }

const until = async (cond: () => boolean | Promise<boolean>, what: string): Promise<void> => {
  const end = Date.now() + 5000
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

describe('Messenger on a fake network', () => {
  let net: FakeNetwork
  let alice: Peer, bob: Peer, carol: Peer
  // the retry timer is unref'd: keep the event loop alive while a test waits on it
  let keepAlive: NodeJS.Timeout

  const peer = async (id: DeviceIdentity, name: string): Promise<Peer> => {
    const host = net.host(id.peerId)
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    const m = new Messenger({ store, host, identity: id, clock: new HybridClock(), log: silentLogger }, { name, retryIntervalMs: 50 })
    await m.start()
    return { id, host, store, m }
  }

  beforeEach(async () => {
    keepAlive = setInterval(() => {}, 1000)
    net = new FakeNetwork()
    const [a, b, c] = await newIdentities(3) as [DeviceIdentity, DeviceIdentity, DeviceIdentity]
    alice = await peer(a, 'Alice')
    bob = await peer(b, 'Bob')
    carol = await peer(c, 'Carol')
  })
  afterEach(async () => {
    for (const p of [alice, bob, carol]) { await p.m.stop(); await p.store.stop() }
    clearInterval(keepAlive)
  })

  it('delivers to a connected peer: stored there, delivered here, in order', async () => {
    net.connect(alice.id.peerId, bob.id.peerId)
    const sent: StoredMessage[] = []
    for (let i = 0; i < 5; i++) sent.push(await alice.m.sendMessage(bob.id.peerId, `m${i}`))
    const last = await alice.m.waitForState(sent[4]!.id, 'delivered')
    assert.equal(last.state, 'delivered')
    assert.deepEqual((await bob.m.history(alice.id.peerId)).map(m => m.text), ['m0', 'm1', 'm2', 'm3', 'm4'])
  })

  it('retries an offline peer by dialling it, and delivers once it is back', async () => {
    const msg = await alice.m.sendMessage(bob.id.peerId, 'while you were out')
    await until(() => alice.host.dials.includes(bob.id.peerId), 'a dial to bob')
    // the dial backoff: not a dial on every retry pass
    const dials = alice.host.dials.length
    await new Promise(resolve => setTimeout(resolve, 200))
    assert.ok(alice.host.dials.length <= dials + 1, `dialled ${alice.host.dials.length - dials} more times within the first backoff`)
    alice.host.dialConnects = true
    await alice.m.waitForState(msg.id, 'delivered')
    assert.deepEqual((await bob.m.history(alice.id.peerId)).map(m => m.text), ['while you were out'])
  })

  it('learns the peer\'s signed name on connect, and a new name at once', async () => {
    net.connect(alice.id.peerId, bob.id.peerId)
    const name = async (): Promise<string | null | undefined> => (await alice.m.listPeers()).find(p => p.peerId === bob.id.peerId)?.name
    await until(async () => await name() === 'Bob', 'bob\'s name')
    await bob.m.setName('Robert')
    await until(async () => await name() === 'Robert', 'bob\'s new name')
    const view = (await alice.m.listPeers()).find(p => p.peerId === bob.id.peerId)
    assert.equal(view?.online, true)
    assert.match(view?.safetyNumber ?? '', /^(\d{5} ){11}\d{5}$/)
  })

  it('read receipts and typing reach the author', async () => {
    net.connect(alice.id.peerId, bob.id.peerId)
    const msg = await alice.m.sendMessage(bob.id.peerId, 'read me')
    await alice.m.waitForState(msg.id, 'delivered')
    const typing: Array<{ peerId: string, conv: string }> = []
    alice.m.addEventListener('peerTyping', (evt) => { typing.push(evt.detail) })
    assert.equal(await bob.m.sendTyping(alice.id.peerId), true)
    assert.deepEqual(typing, [{ peerId: bob.id.peerId, conv: alice.m.convOf(bob.id.peerId) }])
    assert.equal(await bob.m.markSeen(alice.id.peerId), 1)
    assert.equal((await alice.m.waitForState(msg.id, 'read')).state, 'read')
  })

  it('a group reaches every member; a member who connects later is synced', async () => {
    net.connect(alice.id.peerId, bob.id.peerId)
    const g = await alice.m.createGroup('team', [bob.id.peerId, carol.id.peerId])
    await alice.m.sendMessage(g.conv, 'hello team')
    await until(async () => (await bob.m.history(g.conv)).length === 2, 'bob has the group')
    assert.equal(bob.m.group(g.conv)?.name, 'team')
    // carol was offline: her copy comes by sync from bob, whom she meets first
    net.connect(carol.id.peerId, bob.id.peerId)
    await until(async () => (await carol.m.history(g.conv)).length === 2, 'carol synced from bob')
    assert.deepEqual((await carol.m.history(g.conv)).map(m => m.text), ['Alice created "team"', 'hello team'])
  })

  it('a member removed meanwhile: what it wrote after the removal fails once it learns of it', async () => {
    net.connect(alice.id.peerId, bob.id.peerId)
    const g = await alice.m.createGroup('team', [bob.id.peerId])
    await until(() => bob.m.group(g.conv) !== null, 'bob knows the group')
    net.disconnect(alice.id.peerId, bob.id.peerId)
    await alice.m.removeMember(g.conv, bob.id.peerId)
    await new Promise(resolve => setTimeout(resolve, 5))
    // written after the removal, before bob heard of it
    const late = await bob.m.sendMessage(g.conv, 'sent while away')
    net.connect(alice.id.peerId, bob.id.peerId)
    await until(async () => (await bob.store.getMessage(late.id))?.state === 'failed', 'bob\'s late message failed')
    assert.equal((await bob.store.getMessage(late.id))?.error, 'ERR_NOT_A_MEMBER')
  })
})

describe('Messenger start-up', () => {
  it('starts the retry passes only after the clock, groups, profile and stream handler are in place', async () => {
    const [id] = await newIdentities(1) as [DeviceIdentity]
    const host = new FakeNetwork().host(id.peerId)
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    let open!: () => void
    const gate = new Promise<void>(resolve => { open = resolve })
    const listConversations = store.listConversations.bind(store)
    store.listConversations = async () => { await gate; return await listConversations() }
    let passes = 0
    const outboxPeers = store.outboxPeers.bind(store)
    store.outboxPeers = async () => { passes++; return await outboxPeers() }
    const m = new Messenger({ store, host, identity: id, clock: new HybridClock(), log: silentLogger }, { retryIntervalMs: 5 })
    // the retry interval on a mock clock: a second's worth of ticks while start-up waits for the store
    mock.timers.enable({ apis: ['setInterval'] })
    try {
      const started = m.start()
      mock.timers.tick(1000)
      assert.equal(passes, 0, 'no retry pass while start-up is still loading')
      open()
      await started
      mock.timers.tick(5)
      assert.equal(passes, 1, 'a retry pass once started')
    } finally {
      await m.stop()
      mock.timers.reset()
      await store.stop()
    }
  })
})
