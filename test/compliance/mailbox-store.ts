/**
 * The MailboxStore compliance suite (relay/src/store/types.ts), written once
 * and run by every implementation with a setup that makes fresh storage: the
 * LevelDB store today (test/unit/relay/level-mailbox-store.compliance.test.ts),
 * the shared PostgreSQL store when it comes.
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import type { MailboxLimits, MailboxStore } from '../../relay/src/store/types.js'
import { sealEnvelope, newMessageId, signSlotTaken } from '../../core/crypto/envelope.js'
import { dmConversationId, type Envelope } from '../../core/protocol/envelope.js'
import { ParleyError } from '../../core/errors.js'
import { signAccountOp, signDeviceConsent } from '../../core/crypto/account.js'
import { newIdentities } from '../unit/helpers/identities.js'
import type { DeviceIdentity } from '../../core/keys.js'
import { DEFAULT_FED_POLICY, type FedPeer, type FederationStore } from '../../relay/src/federation/types.js'
import * as acctAdm from '../../relay/src/store/account-admission.js'

/**
 * Fresh, empty storage. `open` makes a store over it (not started) with these
 * limits; after that store is stopped, `open` again is a restart over the same
 * data. `destroy` removes the storage.
 */
export type MailboxStoreSetup = () => Promise<{ open: (limits: MailboxLimits) => MailboxStore, destroy: () => Promise<void> }>

const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c

export function mailboxStoreCompliance (name: string, setup: MailboxStoreSetup): void { describe(`MailboxStore compliance: ${name}`, () => {
  let store: MailboxStore
  const storages: Array<Awaited<ReturnType<MailboxStoreSetup>>> = []
  let alice: DeviceIdentity, bob: DeviceIdentity
  let seq = 0
  const env = (text = 'x'): Envelope => sealEnvelope(alice, { id: newMessageId(), conv: dmConversationId(alice.peerId, bob.peerId), seq: ++seq, hlc: { w: Date.now(), c: 0 }, recipients: [bob.peerId], body: { text } })
  const limits = (l: Partial<MailboxLimits> = {}): MailboxLimits => ({ ttlMs: 60_000, quotaMessages: 100, quotaBytes: 1 << 20, ...l })
  /** a started store on fresh storage */
  const open = async (l: Partial<MailboxLimits> = {}): Promise<MailboxStore> => {
    const storage = await setup()
    storages.push(storage)
    const s = storage.open(limits(l))
    await s.start()
    return s
  }

  beforeEach(async () => { [alice, bob] = await newIdentities(2) as [DeviceIdentity, DeviceIdentity]; store = await open() })
  afterEach(async () => {
    await store.stop()
    for (const s of storages.splice(0)) await s.destroy()
  })

  it('deposits, dedupes by envelope id, fetches after a cursor and deletes on ack', async () => {
    const e1 = env(); const e2 = env(); const e3 = env()
    const t0 = Date.now()
    assert.equal(await store.deposit(bob.peerId, alice.peerId, e1, 100), 1)
    assert.equal(await store.deposit(bob.peerId, alice.peerId, e1, 100), 0)
    await store.deposit(bob.peerId, alice.peerId, e2, 100)
    await store.deposit(bob.peerId, alice.peerId, e3, 100)
    const page = await store.fetch(bob.peerId, 0, 2)
    assert.deepEqual(page.items.map(i => i.envelope.id), [e1.id, e2.id])
    // each with its deposit time (the relay's mail-wait histogram)
    assert.ok(page.items.every(i => typeof i.depositedAt === 'number' && i.depositedAt >= t0 - 5 && i.depositedAt <= Date.now()), 'deposit times')
    assert.equal(page.more, true)
    const rest = await store.fetch(bob.peerId, page.items[1]!.cursor, 10)
    assert.deepEqual(rest.items.map(i => i.envelope.id), [e3.id])
    assert.equal(rest.more, false)
    assert.equal(await store.ack(bob.peerId, page.items[1]!.cursor), 2)
    assert.equal(await store.queued(bob.peerId), 1)
    assert.deepEqual((await store.fetch(bob.peerId, 0, 10)).items.map(i => i.envelope.id), [e3.id])
    // other recipients' mail is separate
    assert.deepEqual((await store.fetch(alice.peerId, 0, 10)).items, [])
  })

  it('acks exactly the given cursors, leaving a kept earlier item in place', async () => {
    const e1 = env(); const e2 = env(); const e3 = env()
    for (const e of [e1, e2, e3]) await store.deposit(bob.peerId, alice.peerId, e, 100)
    const [c1, c2, c3] = (await store.fetch(bob.peerId, 0, 10)).items.map(i => i.cursor) as [number, number, number]
    assert.equal(await store.ackCursors(bob.peerId, [c2, c3, c3]), 2)
    assert.equal(await store.ackCursors(bob.peerId, [c3]), 0, 'already gone: ignored')
    assert.deepEqual((await store.fetch(bob.peerId, 0, 10)).items.map(i => i.envelope.id), [e1.id])
    assert.equal(await store.queued(bob.peerId), 1)
    // and another recipient's cursor deletes nothing of bob's
    assert.equal(await store.ackCursors(alice.peerId, [c1]), 0)
    assert.equal(await store.queued(bob.peerId), 1)
  })

  it('fans one deposit out to several recipients in one write', async () => {
    const e = env()
    assert.equal(await store.deposit([bob.peerId, alice.peerId], alice.peerId, e, 100), 2)
    assert.equal(await store.deposit([bob.peerId, alice.peerId], alice.peerId, e, 100), 0)
    assert.equal(await store.queued(bob.peerId), 1)
    assert.equal(await store.queued(alice.peerId), 1)
  })

  it('refuses deposits beyond the per-recipient quota with ERR_QUOTA_EXCEEDED', async () => {
    await store.stop()
    store = await open({ quotaMessages: 2, quotaBytes: 250, senderShare: 1 })
    await store.deposit(bob.peerId, alice.peerId, env(), 100)
    await store.deposit(bob.peerId, alice.peerId, env(), 100)
    await assert.rejects(store.deposit(bob.peerId, alice.peerId, env(), 10), code('ERR_QUOTA_EXCEEDED'))
    await store.ack(bob.peerId, Number.MAX_SAFE_INTEGER)
    await assert.rejects(store.deposit(bob.peerId, alice.peerId, env(), 300), code('ERR_QUOTA_EXCEEDED'))
    assert.equal(await store.deposit(bob.peerId, alice.peerId, env(), 200), 1)
  })

  it('sweeps mail older than the TTL and hides it from fetch', async () => {
    await store.deposit(bob.peerId, alice.peerId, env(), 100)
    assert.equal(await store.sweep(Date.now() + 30_000), 0)
    assert.equal(await store.sweep(Date.now() + 61_000), 1)
    assert.equal(await store.queued(bob.peerId), 0)
    assert.deepEqual((await store.totals()).messages, 0)
  })

  it('two acks racing over the same rows free their quota once', async () => {
    for (let i = 0; i < 6; i++) await store.deposit(bob.peerId, alice.peerId, env(), 100)
    const third = (await store.fetch(bob.peerId, 0, 10)).items[2]!.cursor
    const [a, b] = await Promise.all([store.ack(bob.peerId, third), store.ack(bob.peerId, third)])
    assert.equal(a + b, 3, 'three rows deleted in all')
    assert.equal(await store.queued(bob.peerId), 3)
    assert.equal((await store.fetch(bob.peerId, 0, 10)).items.length, 3)
    // and the sweep racing an ack likewise
    const [swept, acked] = await Promise.all([store.sweep(Date.now() + 61_000), store.ack(bob.peerId, Number.MAX_SAFE_INTEGER)])
    assert.equal(swept + acked, 3)
    assert.equal(await store.queued(bob.peerId), 0)
    assert.deepEqual(await store.totals(), { messages: 0, bytes: 0, recipients: 0 })
  })

  it('fetch skips expired rows not swept yet and returns the live mail after them', async () => {
    await store.stop()
    store = await open({ ttlMs: 50 })
    for (let i = 0; i < 3; i++) await store.deposit(bob.peerId, alice.peerId, env(), 100)
    await new Promise(resolve => setTimeout(resolve, 80))
    const live = env('live')
    await store.deposit(bob.peerId, alice.peerId, live, 100)
    const page = await store.fetch(bob.peerId, 0, 2)
    assert.deepEqual(page.items.map(i => i.envelope.id), [live.id])
    assert.equal(page.more, false)
  })

  it('names the recipients whose mailbox was full; the others get their copy', async () => {
    await store.stop()
    store = await open({ quotaMessages: 1, senderShare: 1 })
    await store.deposit(bob.peerId, alice.peerId, env(), 100)
    const e = env()
    assert.deepEqual(await store.depositAll([bob.peerId, alice.peerId], alice.peerId, e, 100), { stored: 1, full: [bob.peerId], shareFull: [] })
    assert.equal(await store.queued(alice.peerId), 1)
  })

  it('one sender fills only its share of a mailbox (ERR_SENDER_SHARE_FULL, shareFull); others get through, also after a restart', async () => {
    const [carol] = await newIdentities(1) as [DeviceIdentity]
    const fromCarol = (): Envelope => sealEnvelope(carol, { id: newMessageId(), conv: dmConversationId(carol.peerId, bob.peerId), seq: ++seq, hlc: { w: Date.now(), c: 0 }, recipients: [bob.peerId], body: { text: 'c' } })
    await store.stop()
    const storage = await setup()
    storages.push(storage)
    // 8 messages, a quarter each: 2 per sender
    const l = limits({ quotaMessages: 8, senderShare: 0.25 })
    store = storage.open(l)
    await store.start()
    for (let i = 0; i < 2; i++) assert.equal(await store.deposit(bob.peerId, alice.peerId, env(), 100), 1)
    await assert.rejects(store.deposit(bob.peerId, alice.peerId, env(), 100), code('ERR_SENDER_SHARE_FULL'))
    const fanout = await store.depositAll([bob.peerId, carol.peerId], alice.peerId, env(), 100)
    assert.deepEqual(fanout, { stored: 1, full: [bob.peerId], shareFull: [bob.peerId] })
    assert.equal(await store.deposit(bob.peerId, carol.peerId, fromCarol(), 100), 1)
    // the shares are kept across a restart
    await store.stop()
    store = storage.open(l)
    await store.start()
    await assert.rejects(store.deposit(bob.peerId, alice.peerId, env(), 100), code('ERR_SENDER_SHARE_FULL'))
    assert.equal(await store.deposit(bob.peerId, carol.peerId, fromCarol(), 100), 1)
    // acked mail gives the share back
    const first = (await store.fetch(bob.peerId, 0, 1)).items[0]!
    assert.equal(await store.ackCursors(bob.peerId, [first.cursor]), 1)
    assert.equal(await store.deposit(bob.peerId, alice.peerId, env(), 100), 1)
  })

  it('dedupes per author: another sender reusing a message id does not pre-empt the real copy', async () => {
    const real = env('real')
    const carol = (await newIdentities(1))[0] as DeviceIdentity
    const impostor = sealEnvelope(carol, { id: real.id, conv: dmConversationId(carol.peerId, bob.peerId), seq: 1, hlc: { w: Date.now(), c: 0 }, recipients: [bob.peerId], body: { text: 'squat' } })
    assert.equal(await store.deposit(bob.peerId, carol.peerId, impostor, 100), 1)
    assert.equal(await store.deposit(bob.peerId, alice.peerId, real, 100), 1)
    assert.equal(await store.deposit(bob.peerId, alice.peerId, real, 100), 0)
    assert.equal(await store.queued(bob.peerId), 2)
  })

  it('a copy its author moved to a higher number replaces the one waiting (the move); the same or an older copy is a duplicate', async () => {
    const carol = (await newIdentities(1))[0] as DeviceIdentity
    const c = dmConversationId(alice.peerId, bob.peerId)
    const seal = (n: number): Envelope => sealEnvelope(alice, { id: first.id, conv: c, seq: n, hlc: first.hlc, recipients: [bob.peerId, carol.peerId], body: { text: 'moving' } })
    const first = env('moving')
    const other = env('stays')
    assert.equal(await store.deposit([bob.peerId, carol.peerId], alice.peerId, first, 100), 2)
    assert.equal(await store.deposit(bob.peerId, alice.peerId, other, 100), 1)
    // carol fetched and acked the first copy already: the moved one is new for her too
    const carols = (await store.fetch(carol.peerId, 0, 10)).items
    assert.equal(await store.ackCursors(carol.peerId, carols.map(i => i.cursor)), 1)
    const moved = seal(first.seq + 5)
    assert.equal(await store.deposit([bob.peerId, carol.peerId], alice.peerId, moved, 120), 2)
    assert.equal(await store.deposit([bob.peerId, carol.peerId], alice.peerId, first, 100), 0, 'the old copy, late')
    assert.equal(await store.deposit([bob.peerId, carol.peerId], alice.peerId, moved, 120), 0, 'the moved copy again')
    assert.equal(await store.queued(bob.peerId), 2, 'replaced, not added')
    const bobs = (await store.fetch(bob.peerId, 0, 10)).items
    assert.deepEqual(bobs.map(i => [i.envelope.id, i.envelope.seq]), [[other.id, other.seq], [first.id, moved.seq]], 'at a new cursor, after what was there')
    assert.deepEqual((await store.fetch(carol.peerId, 0, 10)).items.map(i => i.envelope.seq), [moved.seq])
    // the room of the replaced copy is given back (acking what is left empties the mailbox and this sender's share)
    assert.equal(await store.ackCursors(bob.peerId, bobs.map(i => i.cursor)), 2)
    assert.equal(await store.queued(bob.peerId), 0)
    assert.deepEqual((await store.topSenders()).filter(u => u.recipient === bob.peerId && u.messages > 0), [])
  })

  it('invites admit once per use, and expire', async () => {
    const once = await store.createInvite({ maxUses: 1 })
    assert.equal(store.isAdmitted(alice.peerId), false)
    await store.redeem(once.token, alice.peerId)
    assert.equal(store.isAdmitted(alice.peerId), true)
    await store.redeem(once.token, alice.peerId) // same peer again: no-op
    await assert.rejects(store.redeem(once.token, bob.peerId), code('ERR_INVITE_INVALID'))
    await assert.rejects(store.redeem('no-such-token-here', bob.peerId), code('ERR_INVITE_INVALID'))
    const expired = await store.createInvite({ ttlMs: 1 })
    await new Promise(resolve => setTimeout(resolve, 5))
    await assert.rejects(store.redeem(expired.token, bob.peerId), code('ERR_INVITE_INVALID'))
    await assert.rejects(store.createInvite({ maxUses: 0 }), code('ERR_INVALID_ARGUMENT'))
    assert.equal(await store.removeUser(alice.peerId), true)
    assert.equal(store.isAdmitted(alice.peerId), false)
  })

  it('invites in bulk; who redeemed each is recorded; a revoked invite admits no one', async () => {
    const [a, b] = await store.createInvites([{ maxUses: 2, note: 'one' }, { note: 'two' }])
    assert.equal((await store.listInvites()).length, 2)
    await store.redeem(a!.token, alice.peerId)
    const listed = (await store.listInvites()).find(i => i.token === a!.token)
    assert.deepEqual(listed?.redeemedBy?.map(r => r.peerId), [alice.peerId])
    assert.equal(store.admittedCount(), 1)
    const revoked = await store.revokeInvite(a!.token)
    assert.ok(revoked?.revokedAt !== undefined)
    await assert.rejects(store.redeem(a!.token, bob.peerId), code('ERR_INVITE_INVALID'))
    assert.equal(await store.revokeInvite('no-such-token-here'), undefined)
    assert.equal((await store.listInvites()).find(i => i.token === b!.token)?.uses, 0)
  })

  it('new limits apply to the next deposit without a restart; usage is reported per recipient', async () => {
    await store.deposit(bob.peerId, alice.peerId, env(), 100)
    store.setLimits(limits({ quotaMessages: 1 }))
    await assert.rejects(store.deposit(bob.peerId, alice.peerId, env(), 100), code('ERR_QUOTA_EXCEEDED'))
    store.setLimits(limits({ quotaMessages: 5, senderShare: 1 }))
    await store.deposit(bob.peerId, alice.peerId, env(), 50)
    assert.deepEqual(await store.usageByRecipient(), new Map([[bob.peerId, { count: 2, bytes: 150 }]]))
  })

  it('start twice is one start, stop twice one stop; stop without start does nothing', async () => {
    await store.start()
    await store.stop()
    await store.stop()
    const storage = await setup()
    storages.push(storage)
    const unstarted = storage.open(limits())
    await unstarted.stop()
    await unstarted.start()
    assert.equal(await unstarted.queued(bob.peerId), 0)
    await unstarted.stop()
    store = await open()
  })

  it('keeps mail, users and the cursor across a restart: cursors are never reused', async () => {
    await store.stop()
    const storage = await setup()
    storages.push(storage)
    store = storage.open(limits())
    await store.start()
    await store.admit(alice.peerId, 'allow-list')
    await store.deposit(bob.peerId, alice.peerId, env(), 100)
    const [first] = (await store.fetch(bob.peerId, 0, 10)).items
    await store.ack(bob.peerId, first!.cursor)
    await store.stop()
    store = storage.open(limits())
    await store.start()
    assert.equal(store.isAdmitted(alice.peerId), true)
    const e = env()
    await store.deposit(bob.peerId, alice.peerId, e, 100)
    const [second] = (await store.fetch(bob.peerId, 0, 10)).items
    assert.equal(second?.envelope.id, e.id)
    assert.ok(second!.cursor > first!.cursor, 'a new cursor after the restart')
    assert.equal(await store.deposit(bob.peerId, alice.peerId, e, 100), 0, 'still deduped after the restart')
  })
  it('keeps account ops, the device-to-account map and deny marks across a restart; a revoked mark is for good (issue 11)', async () => {
    await store.stop()
    const storage = await setup()
    storages.push(storage)
    store = storage.open(limits())
    await store.start()
    assert.deepEqual(await acctAdm.getAccountOps(store, alice.peerId), [])
    assert.equal(await acctAdm.accountOfDevice(store, bob.peerId), undefined)
    const ops = [signAccountOp(alice, 1, { type: 'add', device: bob.peerId, dsig: signDeviceConsent(bob, alice.peerId) })]
    await acctAdm.putAccountOps(store, alice.peerId, ops, [alice.peerId, bob.peerId])
    await acctAdm.deny(store, [bob.peerId], 'revoked')
    await acctAdm.deny(store, [alice.peerId], 'removed')
    await store.stop()
    store = storage.open(limits())
    await store.start()
    assert.deepEqual(await acctAdm.getAccountOps(store, alice.peerId), ops)
    assert.equal(await acctAdm.accountOfDevice(store, bob.peerId), alice.peerId)
    await acctAdm.deny(store, [bob.peerId], 'removed')
    await acctAdm.undeny(store, bob.peerId)
    assert.equal(await acctAdm.denied(store, bob.peerId), 'revoked')
    await acctAdm.undeny(store, alice.peerId)
    assert.equal(await acctAdm.denied(store, alice.peerId), undefined)
  })
  // ---- federation (relay/src/federation/types.ts) -----------------------------------

  describe('federation: queues, receipts, pairing invites, listings', () => {
    const fed = (): MailboxStore & FederationStore => store as MailboxStore & FederationStore
    const relayA = '12D3KooWFedRelayAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1'
    const relayB = '12D3KooWFedRelayBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB1'
    const peer = (peerId: string, pairedAt = Date.now()): FedPeer => ({ peerId, name: peerId.slice(-4), addrs: [], pairedAt, policy: { ...DEFAULT_FED_POLICY } })
    const quota = { messages: 3, bytes: 1000 }

    it('queues only for a paired relay, dedupes while queued, drains in order and deletes what was acknowledged', async () => {
      const s = fed()
      await assert.rejects(s.enqueueFed(relayA, [bob.peerId], env(), 10, quota), code('ERR_FED_NOT_PAIRED'))
      await s.putFedPeer(peer(relayA))
      const e1 = env(); const e2 = env(); const e3 = env()
      assert.equal(await s.enqueueFed(relayA, [bob.peerId], e1, 100, quota), 'queued')
      assert.equal(await s.enqueueFed(relayA, [bob.peerId], e1, 100, quota), 'duplicate')
      await s.enqueueFed(relayA, [bob.peerId], e2, 100, quota)
      await s.enqueueFed(relayA, [bob.peerId], e3, 100, quota)
      await assert.rejects(s.enqueueFed(relayA, [bob.peerId], env(), 100, quota), code('ERR_QUOTA_EXCEEDED'))
      assert.deepEqual([...(await s.fedQueueStats()).entries()].map(([k, v]) => [k, v.depth, v.bytes]), [[relayA, 3, 300]])
      // a failed send keeps everything
      await assert.rejects(s.drainFed(relayA, 10, 1 << 20, async () => { throw new Error('link down') }), /link down/)
      let seqs: number[] = []
      // the receiver took only the first two
      assert.equal(await s.drainFed(relayA, 10, 1 << 20, async (items) => {
        seqs = items.map(i => i.seq)
        assert.deepEqual(items.map(i => i.envelope.id), [e1.id, e2.id, e3.id])
        return seqs[1]!
      }), 2)
      assert.ok(seqs[0]! < seqs[1]! && seqs[1]! < seqs[2]!, 'increasing seqs')
      assert.ok(seqs[0]! > Date.now() * 1000 - 60_000_000, 'above the pairing time')
      const rest: string[] = []
      assert.equal(await s.drainFed(relayA, 10, 1 << 20, async (items) => { rest.push(...items.map(i => i.envelope.id)); return items[items.length - 1]!.seq }), 1)
      assert.deepEqual(rest, [e3.id])
      assert.equal(await s.drainFed(relayA, 10, 1 << 20, async () => { throw new Error('not called on an empty queue') }), 0)
      assert.equal((await s.fedQueueStats()).size, 0)
      // room again
      assert.equal(await s.enqueueFed(relayA, [bob.peerId], env(), 100, quota), 'queued')
    })

    it('one drainer at a time per queue; a second is told no (null) while the first sends', async () => {
      const s = fed()
      await s.putFedPeer(peer(relayA))
      await s.enqueueFed(relayA, [bob.peerId], env(), 100, quota)
      let release!: () => void
      const gate = new Promise<void>((resolve) => { release = resolve })
      const first = s.drainFed(relayA, 10, 1 << 20, async (items) => { await gate; return items[0]!.seq })
      await new Promise(resolve => setTimeout(resolve, 200))
      assert.equal(await s.drainFed(relayA, 10, 1 << 20, async (items) => items[0]!.seq), null)
      release()
      assert.equal(await first, 1)
    })

    it('expires old items, unpairs with the queue dropped, and a new pairing queues above the old seqs', async () => {
      const s = fed()
      const pairedAt = Date.now() - 10_000
      await s.putFedPeer(peer(relayA, pairedAt))
      await s.enqueueFed(relayA, [bob.peerId], env(), 100, quota)
      await new Promise(resolve => setTimeout(resolve, 20))
      const cut = Date.now()
      await new Promise(resolve => setTimeout(resolve, 20))
      await s.enqueueFed(relayA, [bob.peerId], env(), 100, quota)
      let oldSeq = 0
      assert.equal((await s.expireFed(relayA, cut)).length, 1)
      await s.drainFed(relayA, 10, 1 << 20, async (items) => { oldSeq = items[0]!.seq; return 0 })
      // the dropped item's bounce is kept in the same write as the unpairing (its sender is told)
      const dropped: string[] = []
      assert.equal(await s.removeFedPeer(relayA, (items) => items.map(i => {
        dropped.push(i.envelope.id)
        return { device: i.envelope.author, notice: { bounce: { ids: [i.envelope.id], peer: i.to[0]!, code: 'ERR_FED_NOT_PAIRED' } } }
      })), 1)
      assert.equal(dropped.length, 1)
      assert.deepEqual((await s.takeFedNotices(alice.peerId, 0, 10)).flatMap(n => 'bounce' in n ? [[n.bounce.ids[0], n.bounce.code]] : []),
        [[dropped[0], 'ERR_FED_NOT_PAIRED']])
      assert.equal(await s.removeFedPeer(relayA), -1)
      assert.deepEqual(await s.listFedPeers(), [])
      await s.putFedPeer(peer(relayA))
      await s.enqueueFed(relayA, [bob.peerId], env(), 100, quota)
      await s.drainFed(relayA, 10, 1 << 20, async (items) => { assert.ok(items[0]!.seq > oldSeq, 'above every seq of the earlier pairing'); return items[0]!.seq })
    })

    it('notices: numbered per device above every earlier one, acked up to n, capped; bounces kept in the expiry write', async () => {
      const s = fed()
      const bounce = (id: string): { bounce: { ids: string[], peer: string, code: string } } => ({ bounce: { ids: [id], peer: bob.peerId, code: 'ERR_FED_EXPIRED' } })
      assert.deepEqual(await s.addFedNotices([{ device: alice.peerId, notice: bounce('a1') }, { device: bob.peerId, notice: bounce('b1') },
        { device: alice.peerId, notice: bounce('a2') }], 3), [alice.peerId, bob.peerId])
      const a = await s.takeFedNotices(alice.peerId, 0, 10)
      assert.deepEqual(a.map(n => 'bounce' in n ? n.bounce.ids[0] : ''), ['a1', 'a2'])
      assert.ok(a[0]!.n < a[1]!.n)
      // acked up to the first: only the second is left; a later one is numbered above it
      assert.deepEqual((await s.takeFedNotices(alice.peerId, a[0]!.n, 10)).map(n => n.n), [a[1]!.n])
      await s.addFedNotices([{ device: alice.peerId, notice: bounce('a3') }], 3)
      const left = await s.takeFedNotices(alice.peerId, 0, 10)
      assert.deepEqual(left.map(n => 'bounce' in n ? n.bounce.ids[0] : ''), ['a2', 'a3'])
      assert.ok(left[1]!.n > a[1]!.n)
      // at most `max` per device: the oldest go
      await s.addFedNotices([{ device: alice.peerId, notice: bounce('a4') }, { device: alice.peerId, notice: bounce('a5') }], 3)
      assert.deepEqual((await s.takeFedNotices(alice.peerId, 0, 10)).map(n => 'bounce' in n ? n.bounce.ids[0] : ''), ['a3', 'a4', 'a5'])
      assert.equal((await s.takeFedNotices(bob.peerId, 0, 10)).length, 1)
      // expiry and its bounces: one write
      await s.putFedPeer(peer(relayA))
      const e = env()
      await s.enqueueFed(relayA, [bob.peerId], e, 100, quota)
      const gone = await s.expireFed(relayA, Date.now() + 1000, (old) => old.map(i => ({ device: relayB, notice: bounce(i.envelope.id) })))
      assert.equal(gone.length, 1)
      assert.deepEqual((await s.takeFedNotices(relayB, 0, 10)).map(n => 'bounce' in n ? n.bounce.ids[0] : ''), [e.id])
      assert.deepEqual(await s.takeFedNotices(relayB, Number.MAX_SAFE_INTEGER, 10), [])
    })

    it('receives a batch for its own users once: a replay stores nothing; not ours and forged authors are named back', async () => {
      const s = fed()
      await s.admit(bob.peerId, 'allow-list')
      const e1 = env('one'); const e2 = env('two')
      const items = [{ seq: 5, to: [bob.peerId], envelope: e1, bytes: 100 }, { seq: 6, to: [bob.peerId, relayB], envelope: e2, bytes: 100 }]
      const r = await s.receiveFed(relayA, items)
      assert.deepEqual(r, { lastSeq: 6, stored: 2, unknown: [[6, relayB]], full: false })
      assert.deepEqual((await s.fetch(bob.peerId, 0, 10)).items.map(i => [i.from, i.envelope.id]), [[alice.peerId, e1.id], [alice.peerId, e2.id]])
      // written with the mail: replies to its author go back to that relay (from any instance on a shared store)
      assert.equal(await s.fedRouteOf(alice.peerId), relayA)
      assert.equal(await s.fedRouteOf(bob.peerId), undefined)
      // the same batch again (its receipt was lost), after Bo took his mail: nothing stored twice
      await s.ack(bob.peerId, Number.MAX_SAFE_INTEGER)
      assert.deepEqual(await s.receiveFed(relayA, items), { lastSeq: 6, stored: 0, unknown: [], full: false })
      assert.equal(await s.queued(bob.peerId), 0)
      // marks are per sending relay
      assert.equal((await s.receiveFed(relayB, [{ seq: 1, to: [bob.peerId], envelope: env(), bytes: 100 }])).stored, 1)
      assert.equal(await s.fedRouteOf(alice.peerId), relayB, 'the relay the author\'s mail came from last')
      // an author who is one of our own users cannot come in from another relay
      await s.admit(alice.peerId, 'allow-list')
      const forged = await s.receiveFed(relayA, [{ seq: 7, to: [bob.peerId], envelope: env(), bytes: 100 }])
      assert.deepEqual(forged, { lastSeq: 7, stored: 0, unknown: [[7, bob.peerId]], full: false })
      assert.equal(await s.fedRouteOf(alice.peerId), relayB, 'no route to another relay for one of our own users')
    })

    it('an envelope given back to its author of ours with a slot notice is kept for it, charged to the device that gave it back (issue 9)', async () => {
      const s = fed()
      await s.admit(alice.peerId, 'allow-list')
      const back = signSlotTaken(bob, env('given back'))
      const r = await s.receiveFed(relayA, [{ seq: 30, to: [alice.peerId], envelope: back, bytes: 100 }])
      assert.equal(r.stored, 1)
      assert.deepEqual((await s.fetch(alice.peerId, 0, 10)).items.map(i => [i.from, i.envelope.id]), [[bob.peerId, back.id]])
      assert.equal(await s.fedRouteOf(alice.peerId), undefined, 'no route learned for our own user')
    })

    it('a full mailbox stops the batch there: nothing after it is taken, and the mark says so (in order)', async () => {
      await store.stop()
      store = await open({ quotaMessages: 2, senderShare: 1 })
      const s = fed()
      await s.admit(bob.peerId, 'allow-list')
      const batch = [1, 2, 3, 4].map(seq => ({ seq, to: [bob.peerId], envelope: env(), bytes: 10 }))
      assert.deepEqual(await s.receiveFed(relayA, batch), { lastSeq: 2, stored: 2, unknown: [], full: true })
      await s.ack(bob.peerId, Number.MAX_SAFE_INTEGER)
      assert.deepEqual(await s.receiveFed(relayA, batch), { lastSeq: 4, stored: 2, unknown: [], full: false })
      assert.deepEqual((await s.fetch(bob.peerId, 0, 10)).items.map(i => i.envelope.id), [batch[2]!.envelope.id, batch[3]!.envelope.id])
    })

    it('keeps pairings, queues and the inbound mark across a restart', async () => {
      await store.stop()
      const storage = await setup()
      storages.push(storage)
      store = storage.open(limits())
      await store.start()
      await fed().putFedPeer(peer(relayA))
      await fed().enqueueFed(relayA, [bob.peerId], env(), 100, quota)
      await fed().admit(bob.peerId, 'allow-list')
      await fed().receiveFed(relayB, [{ seq: 9, to: [bob.peerId], envelope: env(), bytes: 100 }])
      await store.stop()
      store = storage.open(limits())
      await store.start()
      assert.deepEqual((await fed().listFedPeers()).map(p => p.peerId), [relayA])
      assert.equal((await fed().fedQueueStats()).get(relayA)?.depth, 1)
      assert.equal((await fed().receiveFed(relayB, [{ seq: 9, to: [bob.peerId], envelope: env(), bytes: 100 }])).stored, 0, 'the mark survived')
      assert.equal(await fed().fedRouteOf(alice.peerId), relayB, 'the route survived')
    })

    it('pairing invites are one-time: the same relay may use one again, another relay and late use are refused', async () => {
      const s = fed()
      const now = Date.now()
      await s.putFedInvite({ id: 'abcdefgh', secretHash: 'h1', createdAt: now, expiresAt: now + 60_000 })
      await s.putFedInvite({ id: 'ijklmnop', secretHash: 'h2', createdAt: now, expiresAt: now - 1 })
      assert.equal((await s.useFedInvite('h1', relayA, now)).usedBy, relayA)
      assert.equal((await s.useFedInvite('h1', relayA, now)).usedBy, relayA)
      await assert.rejects(s.useFedInvite('h1', relayB, now), code('ERR_FED_PAIRING'))
      await assert.rejects(s.useFedInvite('h2', relayB, now), code('ERR_FED_PAIRING'))
      await assert.rejects(s.useFedInvite('nope', relayB, now), code('ERR_FED_PAIRING'))
      assert.equal((await s.listFedInvites()).length, 2)
    })

    it('keeps the users\' directory listings', async () => {
      const s = fed()
      await s.putListing(bob.peerId, { peerId: bob.peerId, name: 'Bo', department: 'Sales', updatedAt: 1 })
      await s.putListing(alice.peerId, { peerId: alice.peerId, name: 'Ana', updatedAt: 2 })
      assert.deepEqual((await s.listListings()).map(l => l.name).sort(), ['Ana', 'Bo'])
      await s.putListing(bob.peerId, null)
      assert.deepEqual((await s.listListings()).map(l => l.name), ['Ana'])
    })

    it('registers the relay\'s instances: a refresh replaces, every one is listed (issue 14)', async () => {
      const s = fed()
      await s.putInstance({ peerId: relayB, addrs: ['/ip4/127.0.0.1/tcp/2'], seenAt: 1 })
      await s.putInstance({ peerId: relayA, addrs: ['/ip4/127.0.0.1/tcp/1'], seenAt: 1 })
      await s.putInstance({ peerId: relayA, addrs: ['/ip4/127.0.0.1/tcp/3'], seenAt: 2 })
      const got = await s.listInstances()
      assert.deepEqual(got.map(i => [i.peerId, i.addrs, i.seenAt]), [[relayA, ['/ip4/127.0.0.1/tcp/3'], 2], [relayB, ['/ip4/127.0.0.1/tcp/2'], 1]])
    })
  })
}) }
