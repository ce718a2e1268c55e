import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { LevelMailboxStore } from '../../../relay/src/store/level-mailbox-store.js'
import type { MailboxLimits } from '../../../relay/src/store/types.js'
import { resolveRelayConfig } from '../../../relay/src/config.js'
import { sealEnvelope, newMessageId } from '../../../core/crypto/envelope.js'
import { dmConversationId, type Envelope } from '../../../core/protocol/envelope.js'
import { ParleyError } from '../../../core/errors.js'
import { newIdentities } from '../helpers/identities.js'
import type { DeviceIdentity } from '../../../core/keys.js'

const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c

describe('per-sender share of a mailbox', () => {
  let store: LevelMailboxStore
  let flood: DeviceIdentity, carol: DeviceIdentity, bob: DeviceIdentity, dave: DeviceIdentity
  const seqs = new Map<string, number>()
  const env = (from: DeviceIdentity, to: DeviceIdentity[]): Envelope => {
    const seq = (seqs.get(from.peerId) ?? 0) + 1
    seqs.set(from.peerId, seq)
    const conv = to.length === 1 ? dmConversationId(from.peerId, (to[0] as DeviceIdentity).peerId) : `g:${newMessageId()}`
    return sealEnvelope(from, { id: newMessageId(), conv, seq, hlc: { w: Date.now(), c: 0 }, recipients: to.map(t => t.peerId), body: { text: 'x' } })
  }
  const open = async (limits: Partial<MailboxLimits> = {}): Promise<LevelMailboxStore> => {
    const s = new LevelMailboxStore(new MemoryLevel() as never, { ttlMs: 60_000, quotaMessages: 8, quotaBytes: 1 << 20, senderShare: 0.25, ...limits })
    await s.start()
    return s
  }

  beforeEach(async () => { [flood, carol, bob, dave] = await newIdentities(4) as [DeviceIdentity, DeviceIdentity, DeviceIdentity, DeviceIdentity]; store = await open() })
  afterEach(async () => { await store.stop() })

  it('one sender fills only its share; another sender still gets through', async () => {
    // 8 messages quota, a quarter each: 2 per sender
    assert.equal(await store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100), 1)
    assert.equal(await store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100), 1)
    await assert.rejects(store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100), (err) => code('ERR_SENDER_SHARE_FULL')(err) && /your share of the mailbox/.test((err as Error).message))
    assert.equal(await store.deposit(bob.peerId, carol.peerId, env(carol, [bob]), 100), 1)
    assert.equal(await store.queued(bob.peerId), 3)
  })

  it('mail stored before per-sender shares counts against them after the upgrade', async () => {
    await store.stop()
    const db = new MemoryLevel()
    const limits = { ttlMs: 60_000, quotaMessages: 8, quotaBytes: 1 << 20, senderShare: 0.25 }
    store = new LevelMailboxStore(db as never, limits)
    await store.start()
    await store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100)
    await store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100)
    await store.stop()
    // a data dir from before the upgrade: no sender-usage entries, no flag
    await db.open()
    await db.sublevel('senderusage').clear()
    await db.sublevel('meta', { valueEncoding: 'json' }).del('senderUsage')
    await db.close()
    store = new LevelMailboxStore(db as never, limits)
    await store.start()
    await assert.rejects(store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100), code('ERR_SENDER_SHARE_FULL'))
    assert.equal(await store.deposit(bob.peerId, carol.peerId, env(carol, [bob]), 100), 1)
    // acking the old mail gives the share back
    assert.equal(await store.ack(bob.peerId, 3), 3)
    assert.equal(await store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100), 1)
  })

  it('the share counts bytes too', async () => {
    await store.stop()
    store = await open({ quotaBytes: 1000 })
    assert.equal(await store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 200), 1)
    await assert.rejects(store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100), code('ERR_SENDER_SHARE_FULL'))
  })

  it('a fan-out names the recipients whose share is full; the others get their copy', async () => {
    await store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100)
    await store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100)
    const r = await store.depositAll([bob.peerId, dave.peerId], flood.peerId, env(flood, [bob, dave]), 100)
    assert.deepEqual(r, { stored: 1, full: [bob.peerId], shareFull: [bob.peerId] })
  })

  it('a mailbox full of several senders answers ERR_QUOTA_EXCEEDED, not the share', async () => {
    await store.stop()
    store = await open({ quotaMessages: 4, senderShare: 0.5 })
    for (const from of [flood, flood, carol, carol]) await store.deposit(bob.peerId, from.peerId, env(from, [bob]), 10)
    await assert.rejects(store.deposit(bob.peerId, dave.peerId, env(dave, [bob]), 10), code('ERR_QUOTA_EXCEEDED'))
    const r = await store.depositAll([bob.peerId, carol.peerId], dave.peerId, env(dave, [bob, carol]), 10)
    assert.deepEqual(r, { stored: 1, full: [bob.peerId], shareFull: [] })
  })

  it('the share frees up when the recipient acks, and when mail expires', async () => {
    await store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100)
    await store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100)
    const page = await store.fetch(bob.peerId, 0, 10)
    await store.ack(bob.peerId, (page.items[0] as { cursor: number }).cursor)
    assert.equal(await store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100), 1)
    await assert.rejects(store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100), code('ERR_SENDER_SHARE_FULL'))
    assert.equal(await store.sweep(Date.now() + 120_000), 2)
    assert.equal(await store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100), 1)
  })

  it('topSenders names the flooder first, with its refusals', async () => {
    await store.deposit(bob.peerId, carol.peerId, env(carol, [bob]), 100)
    for (let i = 0; i < 5; i++) await store.deposit(bob.peerId, flood.peerId, env(flood, [bob]), 100).catch(() => 0)
    const [top, second] = await store.topSenders()
    assert.deepEqual(top, { recipient: bob.peerId, sender: flood.peerId, messages: 2, bytes: 200, shareUsed: 1, refused: 3 })
    assert.deepEqual(second, { recipient: bob.peerId, sender: carol.peerId, messages: 1, bytes: 100, shareUsed: 0.5, refused: 0 })
  })

  it('the relay config has a sensible default share and refuses nonsense', () => {
    assert.equal(resolveRelayConfig({ dataDir: '/x' }).mailbox.senderShare, 0.25)
    for (const senderShare of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => resolveRelayConfig({ dataDir: '/x', mailbox: { senderShare } }), code('ERR_INVALID_ARGUMENT'))
    }
  })
})
