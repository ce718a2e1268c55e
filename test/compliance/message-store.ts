/**
 * The MessageStore compliance suite, as js-libp2p's interface-compliance-tests:
 * written once against the interface (node/src/store/types.ts), run by every
 * implementation with a setup that makes fresh storage for each test. Run by
 * test/unit/store/level-store.compliance.test.ts (LevelStore on memory-level
 * and on LevelDB on disk).
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { dmConversationId, type Hlc } from '../../core/protocol/envelope.js'
import { ParleyError } from '../../core/errors.js'
import { PEER_A, PEER_B, PEER_C } from '../unit/helpers/peer-ids.js'
import { storedMessage, type MsgOpts } from '../unit/helpers/store.js'
import type { MessageStore, StoredMessage } from '../../node/src/store/types.js'

/**
 * Fresh, empty storage for one test. `open` makes a store over it (not
 * started); after that store is stopped, `open` again is a restart over the
 * same data. `destroy` removes the storage.
 */
export type MessageStoreSetup = () => Promise<{ open: () => MessageStore, destroy: () => Promise<void> }>

const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c

const [me, bob, carol] = [PEER_A, PEER_B, PEER_C]
const convBob = dmConversationId(me, bob)
const convCarol = dmConversationId(me, carol)

/** A stored message; outgoing when the author is this device. */
const msg = (o: MsgOpts): StoredMessage => storedMessage({ outgoing: o.author === me, ...o })

export function messageStoreCompliance (name: string, setup: MessageStoreSetup): void { describe(`MessageStore compliance: ${name}`, () => {
  let store: MessageStore
  let storage: Awaited<ReturnType<MessageStoreSetup>>

  beforeEach(async () => {
    storage = await setup()
    store = storage.open()
    await store.start()
  })
  afterEach(async () => { await store.stop(); await storage.destroy() })

  /** appendOutgoing with the default builder; returns the stored message. */
  const send = async (conv: string, to: string[], text?: string, hlc?: Hlc): Promise<StoredMessage> =>
    await store.appendOutgoing(conv, me, to, seq => msg({ conv, author: me, seq, text, hlc, to, outgoing: true }))

  describe('appendOutgoing', () => {
    it('assigns seq 1, 2, 3 per (conv, author)', async () => {
      const seen: number[] = []
      for (let i = 0; i < 3; i++) {
        const m = await store.appendOutgoing(convBob, me, [bob], seq => { seen.push(seq); return msg({ conv: convBob, author: me, seq }) })
        assert.equal(m.seq, i + 1)
      }
      assert.deepEqual(seen, [1, 2, 3])
      // a different conversation has its own counter
      assert.equal((await send(convCarol, [carol])).seq, 1)
      // and so does a different author in the same conversation
      const other = await store.appendOutgoing(convBob, bob, [me], seq => msg({ conv: convBob, author: bob, seq, outgoing: true }))
      assert.equal(other.seq, 1)
      assert.equal((await send(convBob, [bob])).seq, 4)
    })

    it('assigns distinct, gapless seqs to concurrent calls', async () => {
      const all = await Promise.all(Array.from({ length: 10 }, async () => await send(convBob, [bob])))
      assert.deepEqual(all.map(m => m.seq).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    })

    it('continues after incoming messages of the same author', async () => {
      assert.equal(await store.storeIncoming(msg({ conv: convBob, author: me, seq: 1, outgoing: true, state: 'delivered' })), 'stored')
      assert.equal((await send(convBob, [bob])).seq, 2)
    })

    it('writes the message and one outbox entry per recipient', async () => {
      const m = await send(convBob, [bob, carol])
      assert.deepEqual(await store.getMessage(m.id), m)
      assert.deepEqual((await store.outbox(bob)).map(x => x.id), [m.id])
      assert.deepEqual((await store.outbox(carol)).map(x => x.id), [m.id])
      assert.equal(await store.outboxSize(), 2)
    })

    it('rejects a built message that does not use the assigned seq, and writes nothing', async () => {
      await assert.rejects(store.appendOutgoing(convBob, me, [bob], seq => msg({ conv: convBob, author: me, seq: seq + 1 })), code('ERR_INTERNAL'))
      await assert.rejects(store.appendOutgoing(convBob, me, [bob], seq => msg({ conv: convCarol, author: me, seq })), code('ERR_INTERNAL'))
      await assert.rejects(store.appendOutgoing(convBob, me, [bob], seq => msg({ conv: convBob, author: bob, seq })), code('ERR_INTERNAL'))
      assert.equal(await store.outboxSize(), 0)
      assert.equal((await send(convBob, [bob])).seq, 1)
    })

    it('rejects with ERR_ABORTED when the signal is already aborted', async () => {
      await assert.rejects(store.appendOutgoing(convBob, me, [bob], seq => msg({ conv: convBob, author: me, seq }), { signal: AbortSignal.abort() }), code('ERR_ABORTED'))
      assert.equal(await store.outboxSize(), 0)
    })
  })

  describe('outbox', () => {
    it('pages by (seq, id), also across conversations that share sequence numbers', async () => {
      const a = await store.appendOutgoing(convBob, me, [bob], seq => msg({ conv: convBob, author: me, seq }))
      const b = await store.appendOutgoing(convCarol, me, [bob], seq => msg({ conv: convCarol, author: me, seq }))
      assert.equal(a.seq, b.seq)
      const [first] = await store.outbox(bob, 1)
      const rest = await store.outbox(bob, 10, { seq: first!.seq, id: first!.id })
      assert.deepEqual([first!.id, ...rest.map(m => m.id)].sort(), [a.id, b.id].sort())
    })

    it('pages by sequence number, so messages already handed to the relay never hide later ones', async () => {
      const sent: string[] = []
      for (let i = 0; i < 5; i++) sent.push((await send(convBob, [bob])).id)
      await store.markSent(sent.slice(0, 2))
      const first = await store.outbox(bob, 2)
      assert.deepEqual(first.map(m => m.id), sent.slice(0, 2))
      const next = await store.outbox(bob, 2, { seq: first[1]!.seq, id: first[1]!.id })
      assert.deepEqual(next.map(m => m.id), sent.slice(2, 4))
      assert.deepEqual((await store.outbox(bob, 10, { seq: next[1]!.seq, id: next[1]!.id })).map(m => m.id), sent.slice(4))
      assert.equal(first[0]!.state, 'sent')
    })

    it('returns a peer\'s queued messages in seq order, beyond 9 (no string-sort surprises)', async () => {
      const sent: string[] = []
      for (let i = 0; i < 12; i++) sent.push((await send(convBob, [bob])).id)
      await send(convCarol, [carol])
      assert.deepEqual((await store.outbox(bob)).map(m => m.id), sent)
      assert.deepEqual((await store.outbox(bob)).map(m => m.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
      assert.deepEqual((await store.outbox(bob, 3)).map(m => m.seq), [1, 2, 3])
    })

    it('is empty for a peer with nothing queued', async () => {
      await send(convBob, [bob])
      assert.deepEqual(await store.outbox(carol), [])
    })

    it('markDelivered removes entries, sets state delivered, and outboxPeers follows', async () => {
      const m1 = await send(convBob, [bob])
      const m2 = await send(convBob, [bob])
      const m3 = await send(convCarol, [carol])
      assert.deepEqual((await store.outboxPeers()).sort(), [bob, carol].sort())

      const changed = await store.markDelivered([m1.id, m2.id], bob)
      assert.deepEqual(changed.map(m => [m.id, m.state]), [[m1.id, 'delivered'], [m2.id, 'delivered']])
      assert.equal((await store.getMessage(m1.id))?.state, 'delivered')
      assert.equal((await store.getMessage(m2.id))?.state, 'delivered')
      assert.deepEqual(await store.outbox(bob), [])
      assert.deepEqual(await store.outboxPeers(), [carol])
      assert.equal(await store.outboxSize(), 1)

      // already delivered and unknown ids change nothing
      assert.deepEqual(await store.markDelivered([m1.id, 'nope'], bob), [])
      assert.equal((await store.getMessage(m3.id))?.state, 'queued')
    })

    it('markDelivered only clears the given peer\'s entry', async () => {
      const m = await send(convBob, [bob, carol])
      await store.markDelivered([m.id], bob)
      assert.deepEqual(await store.outbox(bob), [])
      assert.deepEqual((await store.outbox(carol)).map(x => x.id), [m.id])
      assert.deepEqual(await store.outboxPeers(), [carol])
    })

    it('markDelivered does not downgrade a read message', async () => {
      const m = await send(convBob, [bob])
      await store.markRead([m.id], bob)
      assert.deepEqual(await store.markDelivered([m.id], bob), [])
      assert.equal((await store.getMessage(m.id))?.state, 'read')
      assert.deepEqual(await store.outbox(bob), [])
    })

    it('outboxPeers lists each peer once, however many messages it has queued', async () => {
      for (let i = 0; i < 5; i++) await send(convBob, [bob])
      for (let i = 0; i < 3; i++) await send(convCarol, [carol])
      const peers = await store.outboxPeers()
      assert.deepEqual(peers, [bob, carol].sort())
    })

    it('markRead marks outgoing messages read once and ignores incoming ones', async () => {
      const m = await send(convBob, [bob])
      const incoming = msg({ conv: convBob, author: bob, seq: 1 })
      await store.storeIncoming(incoming)
      assert.deepEqual((await store.markRead([m.id, incoming.id, 'unknown'], bob)).map(x => [x.id, x.state]), [[m.id, 'read']])
      assert.deepEqual(await store.markRead([m.id], bob), [])
      assert.equal((await store.getMessage(incoming.id))?.state, 'received')
    })

    it('markRead from a non-recipient changes nothing; a group message is read only once no one is waiting', async () => {
      const d = await send(convBob, [bob])
      assert.deepEqual(await store.markRead([d.id], carol), [])
      const g = await send(convBob, [bob, carol])
      // noted as read by bob (message info shows it), but not read by the group while carol has not got it
      assert.deepEqual((await store.markRead([g.id], bob)).map(x => [x.state, x.readBy]), [['queued', [bob]]], 'carol has not got it yet')
      assert.deepEqual(await store.markRead([g.id], bob), [], 'bob again changes nothing')
      assert.deepEqual((await store.outbox(bob)).map(x => x.id), [d.id], 'a reader has it: its entry is cleared')
      assert.deepEqual((await store.markDelivered([g.id], carol)).map(x => x.state), ['delivered'])
      assert.deepEqual((await store.markRead([g.id], carol)).map(x => x.state), ['read'])
    })

    it('a group message whose last waiting recipient refuses it is delivered to the others, not stuck queued', async () => {
      const g = await send(convBob, [bob, carol])
      assert.deepEqual(await store.markDelivered([g.id], bob), [])
      assert.equal((await store.markFailed(g.id, carol, 'ERR_NOT_A_MEMBER'))?.state, 'delivered')
      assert.deepEqual(await store.outboxPeers(), [])
      // and the other order
      const h = await send(convBob, [bob, carol])
      assert.equal(await store.markFailed(h.id, carol, 'ERR_NOT_A_MEMBER'), undefined)
      assert.equal((await store.getMessage(h.id))?.state, 'queued', 'bob has not got it yet')
      assert.deepEqual((await store.markDelivered([h.id], bob)).map(x => x.state), ['delivered'])
      // refused by every recipient: failed, with the last code
      const k = await send(convBob, [bob, carol])
      assert.equal(await store.markFailed(k.id, bob, 'ERR_NOT_A_MEMBER'), undefined)
      const failed = await store.markFailed(k.id, carol, 'ERR_NOT_A_MEMBER')
      assert.equal(failed?.state, 'failed')
      assert.equal(failed?.error, 'ERR_NOT_A_MEMBER')
    })
  })

  describe('who has read it, the route it took, and recall', () => {
    it('a group message keeps who read it, also after it is read by all', async () => {
      const g = await send(convBob, [bob, carol])
      await store.markDelivered([g.id], bob)
      assert.deepEqual((await store.markRead([g.id], carol)).map(x => x.readBy), [[carol]])
      const read = await store.markRead([g.id], bob)
      assert.deepEqual(read.map(x => [x.state, x.readBy]), [['read', [carol, bob]]])
      assert.deepEqual((await store.getMessage(g.id))?.readBy, [carol, bob])
      // a 1:1 message needs no list: its state says it
      const d = await send(convBob, [bob])
      assert.equal((await store.markRead([d.id], bob))[0]?.readBy, undefined)
    })

    it('markDelivered notes the route per recipient, once', async () => {
      const g = await send(convBob, [bob, carol])
      await store.markDelivered([g.id], bob, new Map([[g.id, 'circuit']]))
      await store.markDelivered([g.id], carol, new Map([[g.id, 'lan']]))
      // a later duplicate confirmation does not rewrite how it got there
      await store.markDelivered([g.id], bob, new Map([[g.id, 'mailbox']]))
      assert.deepEqual((await store.getMessage(g.id))?.routes, { [bob]: 'circuit', [carol]: 'lan' })
    })

    const recall = (target: StoredMessage, seq: number, author = target.author): StoredMessage =>
      ({ ...msg({ conv: target.conv, author, seq, text: '' }), change: { type: 'recall', id: target.id } })
    const edit = (target: StoredMessage, seq: number, text: string): StoredMessage =>
      ({ ...msg({ conv: target.conv, author: target.author, seq, text }), change: { type: 'edit', id: target.id } })

    it('a recall erases the text of the message and of its edits from the store; search no longer finds it', async () => {
      const m = msg({ conv: convBob, author: bob, seq: 1, text: 'the secret plan' })
      await store.storeIncoming(m)
      await store.storeIncoming(edit(m, 2, 'the secret plan, v2'))
      assert.equal((await store.history(convBob, { search: 'secret' })).length, 2)
      await store.storeIncoming(recall(m, 3))
      const stored = await store.getMessage(m.id)
      assert.equal(stored?.text, '')
      assert.equal(stored?.recalled, true)
      assert.deepEqual(await store.history(convBob, { search: 'secret' }), [])
      assert.ok((await store.history(convBob)).every(x => !x.text.includes('secret')))
      // an edit arriving after the recall keeps no text either
      await store.storeIncoming(edit(m, 4, 'secret again'))
      assert.deepEqual(await store.history(convBob, { search: 'secret' }), [])
    })

    it('a recall that arrives before its message erases it when it comes; another author cannot recall it', async () => {
      const m = msg({ conv: convBob, author: bob, seq: 1, text: 'out of order' })
      await store.storeIncoming(recall(m, 2))
      await store.storeIncoming(m)
      assert.equal((await store.getMessage(m.id))?.text, '')
      const mine = await send(convBob, [bob], 'mine to keep')
      await store.storeIncoming(recall(mine, 3, bob))
      assert.equal((await store.getMessage(mine.id))?.text, 'mine to keep')
      assert.equal((await store.getMessage(mine.id))?.recalled, undefined)
    })
  })

  describe('storeIncoming', () => {
    it('returns stored, then duplicate for the same id', async () => {
      const m = msg({ conv: convBob, author: bob, seq: 1 })
      assert.equal(await store.storeIncoming(m), 'stored')
      assert.equal(await store.storeIncoming(m), 'duplicate')
      assert.deepEqual(await store.getMessage(m.id), m)
    })

    it('returns conflict for a different id at an already-taken (conv, author, seq) and keeps the first', async () => {
      const first = msg({ conv: convBob, author: bob, seq: 1, text: 'first' })
      const second = msg({ conv: convBob, author: bob, seq: 1, text: 'second' })
      assert.equal(await store.storeIncoming(first), 'stored')
      assert.equal(await store.storeIncoming(second), 'conflict')
      assert.equal(await store.getMessage(second.id), undefined)
      assert.deepEqual((await store.history(convBob)).map(m => m.text), ['first'])
      assert.equal((await store.listConversations())[0]?.unread, 1)
    })

    it('returns id-conflict for another author\'s message under an id already taken, and keeps the first', async () => {
      const first = msg({ conv: convBob, author: bob, seq: 1, text: 'first' })
      assert.equal(await store.storeIncoming(first), 'stored')
      assert.equal(await store.storeIncoming({ ...msg({ conv: convCarol, author: carol, seq: 1, text: 'squat' }), id: first.id }), 'id-conflict')
      assert.equal((await store.getMessage(first.id))?.text, 'first')
    })

    it('treats the same seq from another author or conversation as distinct', async () => {
      assert.equal(await store.storeIncoming(msg({ conv: convBob, author: bob, seq: 1 })), 'stored')
      assert.equal(await store.storeIncoming(msg({ conv: convBob, author: carol, seq: 1 })), 'stored')
      assert.equal(await store.storeIncoming(msg({ conv: convCarol, author: bob, seq: 1 })), 'stored')
    })

    it('rejects with ERR_ABORTED when the signal is already aborted', async () => {
      const m = msg({ conv: convBob, author: bob, seq: 1 })
      await assert.rejects(store.storeIncoming(m, { signal: AbortSignal.abort() }), code('ERR_ABORTED'))
      assert.equal(await store.getMessage(m.id), undefined)
    })
  })

  describe('haveVector and envelopesAfter', () => {
    it('haveVector reports the highest contiguous seq: 1, 3, then 2 gives 1 then 3', async () => {
      assert.deepEqual(await store.haveVector(convBob), {})
      await store.storeIncoming(msg({ conv: convBob, author: bob, seq: 1 }))
      await store.storeIncoming(msg({ conv: convBob, author: bob, seq: 3 }))
      assert.deepEqual(await store.haveVector(convBob), { [bob]: 1 })
      await store.storeIncoming(msg({ conv: convBob, author: bob, seq: 2 }))
      assert.deepEqual(await store.haveVector(convBob), { [bob]: 3 })
    })

    it('haveVector starts at 0 when seq 1 is missing and covers every author of the conversation only', async () => {
      await store.storeIncoming(msg({ conv: convBob, author: bob, seq: 2 }))
      await send(convBob, [bob])
      await send(convBob, [bob])
      await store.storeIncoming(msg({ conv: convCarol, author: carol, seq: 1 }))
      assert.deepEqual(await store.haveVector(convBob), { [bob]: 0, [me]: 2 })
    })

    it('haveVector fills a longer gap filled in reverse order', async () => {
      for (const seq of [1, 5, 4, 3]) await store.storeIncoming(msg({ conv: convBob, author: bob, seq }))
      assert.deepEqual(await store.haveVector(convBob), { [bob]: 1 })
      await store.storeIncoming(msg({ conv: convBob, author: bob, seq: 2 }))
      assert.deepEqual(await store.haveVector(convBob), { [bob]: 5 })
      await store.storeIncoming(msg({ conv: convBob, author: bob, seq: 6 }))
      assert.deepEqual(await store.haveVector(convBob), { [bob]: 6 })
    })

    it('envelopesAfter returns the author\'s envelopes with seq > n in seq order', async () => {
      for (const seq of [3, 1, 12, 2, 10]) await store.storeIncoming(msg({ conv: convBob, author: bob, seq }))
      await store.storeIncoming(msg({ conv: convBob, author: carol, seq: 5 }))
      assert.deepEqual((await store.envelopesAfter(convBob, bob, 1)).map(e => e.seq), [2, 3, 10, 12])
      assert.deepEqual((await store.envelopesAfter(convBob, bob, 0)).map(e => e.seq), [1, 2, 3, 10, 12])
      assert.deepEqual((await store.envelopesAfter(convBob, bob, 12)), [])
      assert.deepEqual((await store.envelopesAfter(convBob, bob, 0, 2)).map(e => e.seq), [1, 2])
      assert.deepEqual((await store.envelopesAfter(convBob, carol, 0)).map(e => e.seq), [5])
      assert.deepEqual((await store.envelopesAfter(convCarol, bob, 0)), [])
    })
  })

  describe('history', () => {
    it('is ordered by hlc, then id, whatever the arrival order', async () => {
      const a = msg({ id: 'b-second-at-same-hlc', conv: convBob, author: bob, seq: 1, hlc: { w: 500, c: 1 } })
      const b = msg({ id: 'a-first-at-same-hlc', conv: convBob, author: carol, seq: 1, hlc: { w: 500, c: 1 } })
      const c = msg({ conv: convBob, author: bob, seq: 2, hlc: { w: 500, c: 0 } })
      const d = msg({ conv: convBob, author: bob, seq: 3, hlc: { w: 100, c: 9 } })
      const e = msg({ conv: convBob, author: carol, seq: 2, hlc: { w: 10_000, c: 0 } })
      for (const m of [a, b, c, d, e]) await store.storeIncoming(m)
      assert.deepEqual((await store.history(convBob)).map(m => m.id), [d.id, c.id, b.id, a.id, e.id])
    })

    it('returns only the requested conversation', async () => {
      await store.storeIncoming(msg({ conv: convBob, author: bob, seq: 1, text: 'bob' }))
      await store.storeIncoming(msg({ conv: convCarol, author: carol, seq: 1, text: 'carol' }))
      assert.deepEqual((await store.history(convBob)).map(m => m.text), ['bob'])
      assert.deepEqual(await store.history(dmConversationId(bob, carol)), [])
    })

    it('respects limit by returning the newest N, oldest first', async () => {
      for (let seq = 1; seq <= 10; seq++) await store.storeIncoming(msg({ conv: convBob, author: bob, seq }))
      assert.deepEqual((await store.history(convBob, { limit: 3 })).map(m => m.seq), [8, 9, 10])
      assert.equal((await store.history(convBob)).length, 10)
    })

    it('filters by search, case-insensitively, and applies limit to the matches', async () => {
      const texts = ['Lunch at noon', 'no', 'LUNCH tomorrow?', 'dinner', 'lunchbox', 'brunch']
      for (const [i, text] of texts.entries()) await store.storeIncoming(msg({ conv: convBob, author: bob, seq: i + 1, text }))
      assert.deepEqual((await store.history(convBob, { search: 'lunch' })).map(m => m.text), ['Lunch at noon', 'LUNCH tomorrow?', 'lunchbox'])
      assert.deepEqual((await store.history(convBob, { search: 'LuNcH', limit: 2 })).map(m => m.text), ['LUNCH tomorrow?', 'lunchbox'])
      assert.deepEqual(await store.history(convBob, { search: 'pizza' }), [])
    })
  })

  describe('conversations', () => {
    it('counts unread incoming messages per conversation, not outgoing ones', async () => {
      await send(convBob, [bob], 'hi bob', { w: 100, c: 0 })
      await store.storeIncoming(msg({ conv: convBob, author: bob, seq: 1, hlc: { w: 200, c: 0 }, text: 'hi' }))
      await store.storeIncoming(msg({ conv: convBob, author: bob, seq: 2, hlc: { w: 300, c: 0 }, text: 'there' }))
      await store.storeIncoming(msg({ conv: convCarol, author: carol, seq: 1, hlc: { w: 250, c: 0 }, text: 'carol' }))
      const list = await store.listConversations()
      assert.deepEqual(list.map(c => [c.conv, c.unread, c.lastText]), [[convBob, 2, 'there'], [convCarol, 1, 'carol']])
      assert.deepEqual(list[0]?.lastHlc, { w: 300, c: 0 })
    })

    it('keeps the newest text as lastText when an older message arrives late', async () => {
      await store.storeIncoming(msg({ conv: convBob, author: bob, seq: 2, hlc: { w: 300, c: 0 }, text: 'newer' }))
      await store.storeIncoming(msg({ conv: convBob, author: bob, seq: 1, hlc: { w: 200, c: 0 }, text: 'older' }))
      const [c] = await store.listConversations()
      assert.deepEqual([c?.lastText, c?.lastHlc, c?.unread], ['newer', { w: 300, c: 0 }, 2])
    })

    it('sorts conversations newest first', async () => {
      await store.storeIncoming(msg({ conv: convBob, author: bob, seq: 1, hlc: { w: 100, c: 5 } }))
      await store.storeIncoming(msg({ conv: convCarol, author: carol, seq: 1, hlc: { w: 100, c: 6 } }))
      assert.deepEqual((await store.listConversations()).map(c => c.conv), [convCarol, convBob])
    })

    it('markSeen resets unread, marks received messages seen, and returns them', async () => {
      const m1 = msg({ conv: convBob, author: bob, seq: 1 })
      const m2 = msg({ conv: convBob, author: bob, seq: 2 })
      await store.storeIncoming(m1)
      await store.storeIncoming(m2)
      await store.storeIncoming(msg({ conv: convCarol, author: carol, seq: 1 }))
      const out = await send(convBob, [bob])

      const changed = await store.markSeen(convBob)
      assert.deepEqual(changed.map(m => [m.id, m.state]), [[m1.id, 'seen'], [m2.id, 'seen']])
      assert.equal((await store.getMessage(out.id))?.state, 'queued')
      const unread = Object.fromEntries((await store.listConversations()).map(c => [c.conv, c.unread]))
      assert.deepEqual(unread, { [convBob]: 0, [convCarol]: 1 })

      assert.deepEqual(await store.markSeen(convBob), [])
      await store.storeIncoming(msg({ conv: convBob, author: bob, seq: 3 }))
      assert.equal((await store.listConversations()).find(c => c.conv === convBob)?.unread, 1)
    })

    it('markSeen of an unknown conversation changes nothing', async () => {
      assert.deepEqual(await store.markSeen(convBob), [])
      assert.deepEqual(await store.listConversations(), [])
    })
  })

  describe('meta and peers', () => {
    it('stores meta values and answers undefined for missing keys', async () => {
      assert.equal(await store.getMeta('missing'), undefined)
      await store.putMeta('clock', { w: 5, c: 1 })
      assert.deepEqual(await store.getMeta('clock'), { w: 5, c: 1 })
    })

    it('stores and lists peers', async () => {
      assert.equal(await store.getPeer(bob), undefined)
      await store.putPeer({ peerId: bob, lastSeen: 5 })
      await store.putPeer({ peerId: bob, lastSeen: 6 })
      await store.putPeer({ peerId: carol })
      assert.deepEqual(await store.getPeer(bob), { peerId: bob, lastSeen: 6 })
      assert.deepEqual((await store.listPeers()).map(p => p.peerId).sort(), [bob, carol].sort())
    })
  })

  describe('lifecycle', () => {
    it('start twice is one start; stop twice is one stop', async () => {
      await store.start()
      await store.putMeta('k', 1)
      await store.stop()
      await store.stop()
      store = storage.open()
      await store.start()
      assert.equal(await store.getMeta('k'), 1)
    })

    it('stop without start does nothing: the store starts afterwards as usual', async () => {
      const other = await setup()
      const s = other.open()
      await s.stop()
      await s.start()
      await s.putMeta('k', 2)
      assert.equal(await s.getMeta('k'), 2)
      await s.stop()
      await other.destroy()
    })

    it('keeps everything across a restart: sequence numbers go on, nothing is reused', async () => {
      const first = await send(convBob, [bob], 'before')
      await store.markDelivered([first.id], bob)
      await store.stop()
      store = storage.open()
      await store.start()
      const second = await send(convBob, [bob], 'after')
      assert.equal(second.seq, first.seq + 1)
      assert.deepEqual((await store.history(convBob)).map(m => [m.text, m.state]), [['before', 'delivered'], ['after', 'queued']])
      assert.deepEqual(await store.outboxPeers(), [bob])
    })
  })
}) }
