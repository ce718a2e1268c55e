/**
 * Group commit (core/store/group-commit.ts), exercised through LevelStore
 * on a memory DB whose batches the test releases one at a time.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { LevelStore } from '../../../../node/src/store/level-store.js'
import { dmConversationId } from '../../../../core/protocol/envelope.js'
import { ParleyError } from '../../../../core/errors.js'
import { MemoryLevel } from 'memory-level'
import { GroupCommit, jsonSublevel } from '../../../../core/store/group-commit.js'
import { PEER_A, PEER_B } from '../../helpers/peer-ids.js'
import { gatedDb, settled, storedMessage as msg } from '../../helpers/store.js'

const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c

const bob = PEER_B
const convBob = dmConversationId(PEER_A, bob)

describe('group commit', () => {
  it('a write resolves only after its batch is written, and is readable while staged', async () => {
    const { db, release } = gatedDb()
    const store = new LevelStore(db)
    await store.start()
    const write = store.putMeta('k', 'v')
    assert.equal(await settled(write), false)
    assert.equal(await store.getMeta('k'), 'v')
    release()
    await write
    assert.equal(await store.getMeta('k'), 'v')
    const stopping = store.stop()
    release()
    await stopping
  })

  it('writes staged while a batch is in flight go out together in the next batch', async () => {
    const { db, batches, release } = gatedDb()
    const store = new LevelStore(db)
    await store.start()
    const first = store.storeIncoming(msg({ conv: convBob, author: bob, seq: 1 }))
    await new Promise(resolve => setImmediate(resolve))
    const rest = [2, 3, 4].map(async seq => await store.storeIncoming(msg({ conv: convBob, author: bob, seq })))
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(batches(), 1)
    release()
    await first
    await new Promise(resolve => setImmediate(resolve))
    release()
    assert.deepEqual(await Promise.all(rest), ['stored', 'stored', 'stored'])
    assert.equal(batches(), 2)
    assert.deepEqual(await store.haveVector(convBob), { [bob]: 4 })
    const stopping = store.stop()
    release()
    await stopping
  })

  it('dedupes concurrent deliveries of the same message and of the same seq', async () => {
    const { db, release } = gatedDb()
    const store = new LevelStore(db)
    await store.start()
    const m = msg({ conv: convBob, author: bob, seq: 1 })
    const other = msg({ conv: convBob, author: bob, seq: 1 })
    const results = [store.storeIncoming(m), store.storeIncoming(m), store.storeIncoming(other)]
    await new Promise(resolve => setImmediate(resolve))
    release()
    await new Promise(resolve => setImmediate(resolve))
    release()
    assert.deepEqual(await Promise.all(results), ['stored', 'duplicate', 'conflict'])
    assert.equal((await store.listConversations())[0]?.unread, 1)
    const stopping = store.stop()
    release()
    await stopping
  })

  it('a failed batch rejects its writers with ERR_STORE and its staged values disappear', async () => {
    const { db, release, failNext } = gatedDb()
    const store = new LevelStore(db)
    await store.start()
    failNext()
    const write = store.putMeta('k', 'v')
    const failure = assert.rejects(write, code('ERR_STORE'))
    release()
    await failure
    assert.equal(await store.getMeta('k'), undefined)
    // the store keeps working
    const again = store.putMeta('k', 'w')
    release()
    await again
    assert.equal(await store.getMeta('k'), 'w')
    const stopping = store.stop()
    release()
    await stopping
  })

  it('writes prepared on top of a failed batch fail too, leaving no sequence gap', async () => {
    const { db, release, failNext } = gatedDb()
    const store = new LevelStore(db)
    await store.start()
    failNext()
    const build = (seq: number) => msg({ conv: convBob, author: PEER_A, seq, outgoing: true, state: 'queued' })
    const first = store.appendOutgoing(convBob, PEER_A, [bob], build)
    await new Promise(resolve => setImmediate(resolve))
    const second = store.appendOutgoing(convBob, PEER_A, [bob], build)
    await new Promise(resolve => setImmediate(resolve))
    release()
    await assert.rejects(first, code('ERR_STORE'))
    await assert.rejects(second, code('ERR_STORE'))
    const third = store.appendOutgoing(convBob, PEER_A, [bob], build)
    await new Promise(resolve => setImmediate(resolve))
    release()
    assert.equal((await third).seq, 1, 'numbering restarts from what is on disk')
    assert.deepEqual(await store.haveVector(convBob), { [PEER_A]: 1 })
    const stopping = store.stop()
    release()
    await stopping
  })

  it('a write still being prepared when a batch fails is not staged on the failed values', async () => {
    const { db, release, failNext } = gatedDb()
    await db.open()
    const gc = new GroupCommit(db)
    const counter = jsonSublevel<number>(db, 'n')
    failNext()
    const first = gc.write(async (tx) => { tx.put(counter, 'k', 1) })
    await new Promise(resolve => setImmediate(resolve))
    // prepared while the first batch is in flight: it reads the staged 1 and writes 2 on top of it
    let readWhilePreparing: number | undefined
    let finishPreparing!: () => void
    const preparing = new Promise<void>(resolve => { finishPreparing = resolve })
    const second = gc.write(async (tx) => {
      readWhilePreparing = await tx.get(counter, 'k')
      await preparing
      tx.put(counter, 'k', (readWhilePreparing ?? 0) + 1)
    })
    await new Promise(resolve => setImmediate(resolve))
    release()
    await assert.rejects(first, code('ERR_STORE'))
    finishPreparing()
    await assert.rejects(second, code('ERR_STORE'))
    assert.equal(readWhilePreparing, 1)
    await gc.drain()
    assert.equal(await gc.read(counter, 'k'), undefined, 'nothing built on the failed write reaches the disk')
    const third = gc.write(async (tx) => { tx.put(counter, 'k', ((await tx.get(counter, 'k')) ?? 0) + 1) })
    await new Promise(resolve => setImmediate(resolve))
    release()
    await third
    assert.equal(await counter.get('k'), 1)
    await db.close()
  })
  it('a cached sublevel is read once, written through after its batch, and forgotten after a failed one', async () => {
    const { db, release, failNext } = gatedDb()
    await db.open()
    const gc = new GroupCommit(db)
    const sub = jsonSublevel<number>(db, 'c')
    gc.cache(sub)
    await sub.put('k', 1)
    let gets = 0
    const realGet = sub.get.bind(sub)
    Object.assign(sub, { get: async (k: string) => { gets++; return await realGet(k) } })
    assert.equal(await gc.read(sub, 'k'), 1)
    assert.equal(await gc.read(sub, 'k'), 1)
    assert.equal(await gc.read(sub, 'none'), undefined)
    assert.equal(await gc.read(sub, 'none'), undefined)
    assert.equal(gets, 2, 'each key read from disk once, a missing one too')
    const w = gc.write(async (tx) => { tx.put(sub, 'k', 2); tx.put(sub, 'none', 3) })
    await new Promise(resolve => setImmediate(resolve))
    release()
    await w
    assert.equal(await gc.read(sub, 'k'), 2)
    assert.equal(await gc.read(sub, 'none'), 3)
    assert.equal(gets, 2, 'written through: no read after the write')
    // a failed batch: nothing of it is cached, and what was cached is read again from disk
    failNext()
    const bad = gc.write(async (tx) => { tx.put(sub, 'k', 9) })
    await new Promise(resolve => setImmediate(resolve))
    release()
    await assert.rejects(bad)
    assert.equal(await gc.read(sub, 'k'), 2)
    assert.equal(gets, 3)
  })

  it('a read that spans a batch does not cache the value it read before the batch', async () => {
    const { db, release } = gatedDb()
    await db.open()
    const gc = new GroupCommit(db)
    const sub = jsonSublevel<number>(db, 'c')
    gc.cache(sub)
    await sub.put('k', 1)
    const realGet = sub.get.bind(sub)
    let resume: (() => void) | undefined
    const held = new Promise<void>(resolve => { resume = resolve })
    let first = true
    // the first read gets its value from disk, then waits while a batch writes a new one
    Object.assign(sub, { get: async (k: string) => { const v = await realGet(k); if (first) { first = false; await held } return v } })
    const slowRead = gc.read(sub, 'k')
    await new Promise(resolve => setImmediate(resolve))
    const w = gc.write(async (tx) => { tx.put(sub, 'k', 2) })
    await new Promise(resolve => setImmediate(resolve))
    release()
    await w
    resume?.()
    assert.equal(await slowRead, 1)
    assert.equal(await gc.read(sub, 'k'), 2, 'not the stale value of the read that spanned the batch')
  })

  it('past 50,000 keys the cache empties and every value read is still right', async () => {
    const db = new MemoryLevel()
    await db.open()
    const gc = new GroupCommit(db)
    const sub = jsonSublevel<number>(db, 'c')
    gc.cache(sub)
    const n = 50_010
    const writes: Array<Promise<void>> = []
    for (let i = 0; i < n; i += 1000) {
      writes.push(gc.write(async (tx) => { for (let j = i; j < Math.min(n, i + 1000); j++) tx.put(sub, `k${j}`, j) }))
    }
    await Promise.all(writes)
    for (let i = 0; i < n; i += 997) assert.equal(await gc.read(sub, `k${i}`), i)
    await gc.write(async (tx) => { tx.put(sub, 'k5', -5) })
    assert.equal(await gc.read(sub, 'k5'), -5)
  })
})
