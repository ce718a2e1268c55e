/**
 * RelayClient's mailbox drain against an in-memory mailbox over a fake stream:
 * what is acked, what is kept at the relay, and that a kept item does not
 * hold up the items after it.
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { RelayClient, type AcceptMail } from '../../../node/src/messaging/relay-client.js'
import { RpcChannel } from '../../../core/rpc/channel.js'
import { LevelMailboxStore } from '../../../relay/src/store/level-mailbox-store.js'
import type { MailboxStore } from '../../../relay/src/store/types.js'
import { sealEnvelope, newMessageId } from '../../../core/crypto/envelope.js'
import { dmConversationId, type Envelope } from '../../../core/protocol/envelope.js'
import { RELAY_PROTOCOL, RELAY_RPC_METHODS, parseAckMail, parseFetch } from '../../../core/protocol/relay-rpc.js'
import { ParleyError } from '../../../core/errors.js'
import { silentLogger, type Logger } from '../../../core/util/log.js'
import { newIdentities } from '../helpers/identities.js'
import { FakeNetwork } from '../helpers/fake-host.js'
import type { DeviceIdentity } from '../../../core/keys.js'

const RELAY = '12D3KooWRelayRelayRelayRelayRelayRelayRelayRelayRe'

async function until (cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/** A promise settled from outside. */
function deferred<T> (): { promise: Promise<T>, resolve: (v: T) => void, reject: (e: unknown) => void } {
  let resolve!: (v: T) => void; let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

describe('RelayClient mailbox drain', () => {
  let alice: DeviceIdentity, bob: DeviceIdentity
  let mailbox: MailboxStore
  let acks: unknown[]
  let deposits: unknown[] = []
  /** refusals the relay answers the next deposits with, in turn (then it stores) */
  let depositRefusals: ParleyError[] = []
  let seq = 0
  /** fetch calls answered so far; acks the relay refuses (counted down) */
  let fetches = 0
  let failAcks = 0
  let log: Logger = silentLogger
  const env = (text: string): Envelope => sealEnvelope(alice, { id: newMessageId(), conv: dmConversationId(alice.peerId, bob.peerId), seq: ++seq, hlc: { w: Date.now(), c: 0 }, recipients: [bob.peerId], body: { text } })

  /** A client for bob whose relay end answers from `mailbox`; `accept` decides per envelope. */
  const client = (accept: AcceptMail, keptMailMaxMs?: number, homeOf?: (device: string) => string | undefined,
    slotTaken?: (refused: Envelope[]) => Promise<Envelope[]>): RelayClient => {
    const net = new FakeNetwork()
    const host = net.host(bob.peerId)
    void net.host(RELAY).handle(RELAY_PROTOCOL, (theirs) => {
      void new RpcChannel(theirs, async (method, body) => {
        switch (method) {
          case 'relayStatus': return { admitted: true, queued: await mailbox.queued(bob.peerId) }
          case 'fetch': { fetches++; const { after, limit } = parseFetch(body); return await mailbox.fetch(bob.peerId, after, limit) }
          case 'ackMail': {
            const ack = parseAckMail(body)
            if (failAcks > 0) { failAcks--; throw new ParleyError('ERR_STORE', 'relay store failed') }
            acks.push(ack)
            return { deleted: 'upTo' in ack ? await mailbox.ack(bob.peerId, ack.upTo) : await mailbox.ackCursors(bob.peerId, ack.cursors) }
          }
          case 'deposit': {
            const refusal = depositRefusals.shift()
            if (refusal !== undefined) throw refusal
            deposits.push(body); return { status: 'stored', stored: 1, unknown: [], full: [], shareFull: [] }
          }
          default: throw new ParleyError('ERR_NOT_FOUND', method)
        }
      }, silentLogger, { methods: RELAY_RPC_METHODS })
    })
    net.connect(bob.peerId, RELAY)
    return new RelayClient({ host, log, accept, saveInvite: async () => {}, ...(homeOf !== undefined ? { homeOf } : {}), ...(slotTaken !== undefined ? { slotTaken } : {}) }, { fetchBatch: 2, mailboxPollMs: 60_000, ...(keptMailMaxMs !== undefined ? { keptMailMaxMs } : {}) })
  }

  beforeEach(async () => {
    [alice, bob] = await newIdentities(2) as [DeviceIdentity, DeviceIdentity]
    mailbox = new LevelMailboxStore(new MemoryLevel(), { ttlMs: 60_000, quotaMessages: 100, quotaBytes: 1 << 20 })
    await mailbox.start()
    acks = []
    deposits = []
    depositRefusals = []
    fetches = 0
    failAcks = 0
    log = silentLogger
  })
  afterEach(async () => { await mailbox.stop() })

  it('a retryable item stays at the relay and does not hold up the items after it', async () => {
    const texts = ['one', 'not yet', 'three', 'four', 'five']
    const envs = texts.map(env)
    for (const e of envs) await mailbox.deposit(bob.peerId, alice.peerId, e, 100)
    const stored: string[] = []
    let ready = false
    const c = client(async (e) => {
      const text = texts[envs.findIndex(x => x.id === e.id)]!
      if (text === 'not yet' && !ready) throw new ParleyError('ERR_UNKNOWN_GROUP', 'group not known yet')
      return { durable: Promise.resolve().then(() => { stored.push(text); return 'stored' as const }) }
    })
    const waiting: number[] = []
    c.addEventListener('relayChanged', (evt) => { waiting.push(evt.detail.waiting) })
    c.configure('/ip4/127.0.0.1/tcp/1/p2p/' + RELAY, null)
    c.start()
    await new Promise(resolve => setTimeout(resolve, 50))
    // progress: 5 waiting at first, counted down batch by batch, 1 left (the kept item)
    assert.deepEqual(waiting, [5, 4, 2, 1])
    assert.equal(c.status().waiting, 1)
    // the first drain ran on start: everything but the kept item is stored and acked
    assert.deepEqual(stored, ['one', 'three', 'four', 'five'])
    assert.deepEqual((await mailbox.fetch(bob.peerId, 0, 10)).items.map(i => i.envelope.id), [envs[1]!.id])
    assert.deepEqual(acks, [{ cursors: [1] }, { cursors: [3, 4] }, { cursors: [5] }], 'exact cursors once an item is kept')
    // tried again only after a backoff: a drain right now leaves it alone
    ready = true
    assert.equal(await c.drain(), 0)
    assert.deepEqual(stored, ['one', 'three', 'four', 'five'])
    // once the backoff (2 s) has passed, the next drain picks it up
    await new Promise(resolve => setTimeout(resolve, 2100))
    assert.equal(await c.drain(), 1)
    assert.equal(c.status().waiting, 0)
    assert.deepEqual(stored, ['one', 'three', 'four', 'five', 'not yet'])
    assert.equal(await mailbox.queued(bob.peerId), 0)
    await c.stop()
  })

  it('an item refused for good is acked (dropped) so it cannot block the mailbox', async () => {
    const e1 = env('bad'); const e2 = env('good')
    for (const e of [e1, e2]) await mailbox.deposit(bob.peerId, alice.peerId, e, 100)
    const c = client(async (e) => {
      if (e.id === e1.id) throw new ParleyError('ERR_BAD_SIGNATURE', 'forged')
      return { durable: Promise.resolve('stored' as const) }
    })
    c.configure('/ip4/127.0.0.1/tcp/1/p2p/' + RELAY, null)
    c.start()
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.equal(await mailbox.queued(bob.peerId), 0)
    assert.deepEqual(acks, [{ upTo: 2 }], 'one range ack while nothing was kept')
    await c.stop()
  })

  it('mail refused with ERR_SEQ_CONFLICT whose slot notice the relay did not take for a passing reason stays there; the notice is given later (issue 9, review s5 M1)', async () => {
    const e1 = env('conflict'); const e2 = env('good')
    for (const e of [e1, e2]) await mailbox.deposit(bob.peerId, alice.peerId, e, 100)
    const notice = env('given back')
    const asked: string[][] = []
    const c = client(async (e) => {
      if (e.id === e1.id) throw new ParleyError('ERR_SEQ_CONFLICT', 'another message holds this number')
      return { durable: Promise.resolve('stored' as const) }
    }, undefined, undefined, async (refused) => {
      if (refused.length === 0) return []
      asked.push(refused.map(r => r.id)); return [notice]
    })
    // the author's mailbox at the relay is full now
    depositRefusals = [new ParleyError('ERR_QUOTA_EXCEEDED', 'mailbox full')]
    c.configure('/ip4/127.0.0.1/tcp/1/p2p/' + RELAY, null)
    c.start()
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.deepEqual(asked, [[e1.id]])
    assert.equal(deposits.length, 0, 'the notice was refused')
    assert.deepEqual(acks, [{ cursors: [2] }], 'the refused mail is not acked')
    assert.deepEqual((await mailbox.fetch(bob.peerId, 0, 10)).items.map(i => i.envelope.id), [e1.id])
    assert.equal(c.status().waiting, 1)
    // after the backoff (2 s) it is refused again and the notice is given this time; then it is acked
    await new Promise(resolve => setTimeout(resolve, 2100))
    assert.equal(await c.drain(), 1)
    assert.deepEqual(asked, [[e1.id], [e1.id]])
    assert.deepEqual(deposits.map(d => (d as { envelope: Envelope }).envelope.id), [notice.id])
    assert.equal(await mailbox.queued(bob.peerId), 0)
    assert.equal(c.status().waiting, 0)
    await c.stop()
  })

  it('a slot notice the relay refuses for good (an old relay) is let go: the refused mail is acked', async () => {
    const e1 = env('conflict')
    await mailbox.deposit(bob.peerId, alice.peerId, e1, 100)
    const c = client(async () => { throw new ParleyError('ERR_SEQ_CONFLICT', 'another message holds this number') },
      undefined, undefined, async (refused) => refused.length === 0 ? [] : [env('given back')])
    depositRefusals = [new ParleyError('ERR_INVALID_ENVELOPE', 'only the author may deposit an envelope')]
    c.configure('/ip4/127.0.0.1/tcp/1/p2p/' + RELAY, null)
    c.start()
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.equal(await mailbox.queued(bob.peerId), 0)
    assert.deepEqual(acks, [{ upTo: 1 }])
    await c.stop()
  })

  it('an item kept longer than keptMailMaxMs is dropped at the relay (its sender still holds it)', async () => {
    const e1 = env('never')
    await mailbox.deposit(bob.peerId, alice.peerId, e1, 100)
    const c = client(async () => { throw new ParleyError('ERR_UNKNOWN_GROUP', 'group not known yet') }, 0)
    c.configure('/ip4/127.0.0.1/tcp/1/p2p/' + RELAY, null)
    c.start()
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.equal(await mailbox.queued(bob.peerId), 0)
    await c.stop()
  })

  it('an item whose write fails stays at the relay', async () => {
    const e1 = env('a'); const e2 = env('b')
    for (const e of [e1, e2]) await mailbox.deposit(bob.peerId, alice.peerId, e, 100)
    const c = client(async (e) => ({ durable: e.id === e1.id ? Promise.reject(new ParleyError('ERR_STORE', 'disk full')) : Promise.resolve('stored' as const) }))
    c.configure('/ip4/127.0.0.1/tcp/1/p2p/' + RELAY, null)
    c.start()
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.deepEqual((await mailbox.fetch(bob.peerId, 0, 10)).items.map(i => i.envelope.id), [e1.id])
    await c.stop()
  })

  it('window: a write of batch 1 that fails late while batch 2 is stored acks only what is durable, in order', async () => {
    const envs = ['a', 'b', 'c', 'd', 'e', 'f'].map(env)
    for (const e of envs) await mailbox.deposit(bob.peerId, alice.peerId, e, 100)
    const late = deferred<'stored'>()
    const accepted: string[] = []
    const c = client(async (e) => {
      accepted.push(e.id)
      return { durable: e.id === envs[1]!.id ? late.promise : Promise.resolve('stored' as const) }
    })
    c.configure('/ip4/127.0.0.1/tcp/1/p2p/' + RELAY, null)
    c.start()
    // batch 2 (c, d) is handed over and stored while b's write is still under way; batch 3 waits for the window
    await until(() => accepted.length === 4, 'batch 2 handed over')
    // a moment for batch 3 to be (wrongly) handed over too: the window must hold it back
    await new Promise(resolve => setTimeout(resolve, 30))
    assert.deepEqual(accepted, envs.slice(0, 4).map(e => e.id), 'at most 2 batches unsettled')
    assert.deepEqual(acks, [], 'nothing acked before batch 1 settled')
    late.reject(new ParleyError('ERR_STORE', 'disk full'))
    await until(() => acks.length === 3, 'three acks')
    // exact cursors from the batch that kept an item on: the failed one (cursor 2) is never covered
    assert.deepEqual(acks, [{ cursors: [1] }, { cursors: [3, 4] }, { cursors: [5, 6] }])
    assert.deepEqual((await mailbox.fetch(bob.peerId, 0, 10)).items.map(i => i.envelope.id), [envs[1]!.id])
    await until(() => c.status().waiting === 1, 'one waiting')
    await c.stop()
  })

  it('window: an ack that fails while batch 2 is written ends the drain only after those writes; the next drain acks all', async () => {
    const envs = ['a', 'b', 'c', 'd', 'e', 'f'].map(env)
    for (const e of envs) await mailbox.deposit(bob.peerId, alice.peerId, e, 100)
    failAcks = 1
    const paused: string[] = []
    log = { ...silentLogger, debug: (msg) => { paused.push(msg) } }
    const held = deferred<undefined>()
    const written = new Set<string>()
    const accepted: string[] = []
    const c = client(async (e) => {
      accepted.push(e.id)
      const batch2 = e.id === envs[2]!.id || e.id === envs[3]!.id
      const write = batch2 ? held.promise : Promise.resolve(undefined)
      return { durable: write.then(() => { const dup = written.has(e.id); written.add(e.id); return dup ? 'duplicate' as const : 'stored' as const }) }
    })
    c.configure('/ip4/127.0.0.1/tcp/1/p2p/' + RELAY, null)
    c.start()
    await until(() => paused.includes('mailbox drain paused') && accepted.length === 4, 'the failed ack of batch 1')
    // batch 2's writes are still under way: the drain has not returned, so a new one does not start beside them
    const fetched = fetches
    assert.equal(await c.drain(), 0)
    assert.equal(fetches, fetched, 'no second drain while the first one\'s writes run')
    held.resolve(undefined)
    // once they settled the drain is over; nothing after the failed ack was acked, everything is still queued
    await until(() => written.size === 4, 'batch 2 written')
    let n = 0
    await until(() => { if (n === 0) void c.drain().then(v => { n = v }); return n > 0 }, 'a drain after the first one')
    assert.equal(n, 6)
    assert.deepEqual(acks, [{ upTo: 2 }, { upTo: 4 }, { upTo: 6 }])
    assert.equal(await mailbox.queued(bob.peerId), 0)
    await c.stop()
  })

  it('a deposit names the home relay a recipient\'s account record names (not our own relay); what federation learned comes first', async () => {
    const OTHER = '12D3KooWOtherOtherOtherOtherOtherOtherOtherOtherOt'
    const FED = '12D3KooWFederationFederationFederationFederationF'
    const c = client(async () => ({ durable: Promise.resolve('stored' as const) }), undefined, (d) => d === alice.peerId ? OTHER : RELAY)
    c.configure('/ip4/127.0.0.1/tcp/1/p2p/' + RELAY, null)
    c.start()
    try {
      const e = env('to alice')
      await c.deposit([alice.peerId, bob.peerId], e)
      assert.deepEqual((deposits[0] as { home?: unknown }).home, { [alice.peerId]: OTHER })
      c.setHome(alice.peerId, FED)
      await c.deposit([alice.peerId], e)
      assert.deepEqual((deposits[1] as { home?: unknown }).home, { [alice.peerId]: FED })
    } finally {
      await c.stop()
    }
  })
})
