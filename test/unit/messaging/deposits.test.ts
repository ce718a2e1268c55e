/**
 * Deposits (node/src/messaging/deposits.ts) against a LevelStore on a memory
 * DB and a fake relay: what is deposited for whom, once per recipient, and
 * the backoff for peers whose copies the relay refuses.
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { Deposits, type DepositRelay } from '../../../node/src/messaging/deposits.js'
import { LevelStore } from '../../../node/src/store/level-store.js'
import { dmConversationId, type Envelope } from '../../../core/protocol/envelope.js'
import type { DepositAnswer } from '../../../core/protocol/relay-rpc.js'
import { RemoteError } from '../../../core/errors.js'
import { silentLogger } from '../../../core/util/log.js'
import { PEER_A, PEER_B, PEER_C } from '../helpers/peer-ids.js'
import { storedMessage as msg } from '../helpers/store.js'
import type { StoredMessage } from '../../../node/src/store/types.js'

describe('Deposits', () => {
  let store: LevelStore
  let calls: Array<{ to: string[], id: string }>
  let answer: (to: string[]) => DepositAnswer
  const relay: DepositRelay = {
    canDeposit: true,
    deposit: async (to: string[], env: Envelope): Promise<DepositAnswer> => { calls.push({ to: [...to], id: env.id }); return answer(to) }
  }
  const changed: StoredMessage[] = []
  const deposits = (): Deposits => new Deposits({ store, relay, log: silentLogger, changed: (m) => { changed.push(m) } }, { depositAfterMs: 0, sendWindow: 8 })
  const send = async (to: string[]): Promise<StoredMessage> =>
    await store.appendOutgoing(dmConversationId(PEER_A, PEER_B), PEER_A, to, seq => msg({ conv: dmConversationId(PEER_A, PEER_B), author: PEER_A, seq, to, outgoing: true }))

  beforeEach(async () => {
    store = new LevelStore(new MemoryLevel())
    await store.start()
    calls = []
    answer = (to) => ({ status: 'stored', stored: to.length, unknown: [], full: [] })
  })
  afterEach(async () => { await store.stop() })

  it('deposits once for all unreachable recipients, marks the message sent, and never again for them', async () => {
    const d = deposits()
    const m = await send([PEER_B, PEER_C])
    await d.run([PEER_B, PEER_C], Date.now())
    assert.deepEqual(calls, [{ to: [PEER_B, PEER_C], id: m.id }])
    assert.equal((await store.getMessage(m.id))?.state, 'sent')
    await d.run([PEER_B, PEER_C], Date.now() + 60_000)
    assert.equal(calls.length, 1, 'the relay holds both copies')
  })

  it('a recipient the relay keeps no copy for is tried again only after a backoff, and a new message does not cut it short', async () => {
    answer = (to) => ({ status: 'stored', stored: to.length - 1, unknown: [PEER_C], full: [] })
    const d = deposits()
    const m = await send([PEER_B, PEER_C])
    const t0 = Date.now()
    await d.run([PEER_B, PEER_C], t0)
    assert.deepEqual(calls.map(c => c.to), [[PEER_B, PEER_C]])
    assert.deepEqual([...await store.depositedFor(PEER_B, [m])], [m.id])
    assert.deepEqual([...await store.depositedFor(PEER_C, [m])], [])
    d.poke(PEER_C)
    await d.run([PEER_B, PEER_C], t0 + 5_000)
    assert.equal(calls.length, 1, 'C is in backoff (10 s)')
    await d.run([PEER_B, PEER_C], t0 + 10_001)
    assert.deepEqual(calls.map(c => c.to), [[PEER_B, PEER_C], [PEER_C]], 'only C, whose copy is still missing')
  })

  it('a relay that refuses the whole deposit leaves the message queued, and backs off before it tries again', async () => {
    const deposit = relay.deposit
    relay.deposit = async (to: string[], env: Envelope): Promise<DepositAnswer> => {
      calls.push({ to, id: env.id })
      throw new RemoteError('ERR_QUOTA_EXCEEDED', 'full')
    }
    try {
      const d = deposits()
      const m = await send([PEER_B])
      const t0 = Date.now()
      await d.run([PEER_B], t0)
      assert.equal(calls.length, 1)
      assert.equal((await store.getMessage(m.id))?.state, 'queued')
      await d.run([PEER_B], t0 + 5_000)
      assert.equal(calls.length, 1, 'B is in backoff (10 s) after the refusal')
      await d.run([PEER_B], t0 + 10_001)
      assert.equal(calls.length, 2, 'tried again once the backoff is over')
    } finally {
      relay.deposit = deposit
    }
  })

  it('a flush before stopping deposits what is not due yet, after the pass already running, and keeps a refused peer in its backoff', async () => {
    const d = new Deposits({ store, relay, log: silentLogger, changed: () => {} }, { depositAfterMs: 60_000, sendWindow: 8 })
    const m = await send([PEER_B])
    // stored at 0 (the helper's storedAt): not due before 60 s
    await d.run([PEER_B], 1000)
    assert.equal(calls.length, 0, 'not due for a minute')
    await d.flush([PEER_B], 2000)
    assert.deepEqual(calls, [{ to: [PEER_B], id: m.id }])
    assert.equal((await store.getMessage(m.id))?.state, 'sent')
    // a pass in flight: the flush waits for it rather than deposit the same message beside it
    const m2 = await send([PEER_B])
    const slow = d.run([PEER_B], 120_000)
    await d.flush([PEER_B], 120_000)
    await slow
    assert.deepEqual(calls.map(c => c.id), [m.id, m2.id])
    // refused: the flush does not cut the backoff short
    answer = (to) => ({ status: 'stored', stored: 0, unknown: to, full: [] })
    const m3 = await send([PEER_B])
    await d.flush([PEER_B], 130_000)
    assert.equal(calls.length, 3)
    await d.flush([PEER_B], 131_000)
    assert.equal(calls.length, 3, 'B is in backoff after the refusal')
    assert.equal((await store.getMessage(m3.id))?.state, 'queued')
  })
})
