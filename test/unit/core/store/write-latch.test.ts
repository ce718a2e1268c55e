/**
 * The failed-write latch (core/store/write-latch.ts), alone and inside the
 * shared LevelBackedStore base (node store and relay mailbox store).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { WriteLatch, isDiskFull, storeWriteError } from '../../../../core/store/write-latch.js'
import { LevelStore } from '../../../../node/src/store/level-store.js'
import { LevelMailboxStore } from '../../../../relay/src/store/level-mailbox-store.js'
import { DEFAULT_MAILBOX_TTL_MS } from '../../../../relay/src/store/types.js'
import { ParleyError } from '../../../../core/errors.js'
import { dmConversationId } from '../../../../core/protocol/envelope.js'
import { PEER_A, PEER_B } from '../../helpers/peer-ids.js'
import { gatedDb, storedMessage as msg } from '../../helpers/store.js'

const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c
const enospc = (): Error => Object.assign(new Error('IO error: /d/db/000003.log: No space left on device'), { code: 'LEVEL_IO_ERROR' })

/** A memory DB whose next batch fails with ENOSPC when told, counting opens. */
function failingDb (): { db: MemoryLevel, failNext: () => void, opens: () => number, failOpens: (n: number) => void } {
  const db = new MemoryLevel()
  const realBatch = db.batch.bind(db) as (...args: unknown[]) => unknown
  const realOpen = db.open.bind(db) as (...args: unknown[]) => Promise<void>
  let fail = false
  let opens = 0
  let openFailures = 0
  Object.assign(db, {
    batch: async (...args: unknown[]) => {
      if (args.length === 0) return realBatch()
      if (fail) { fail = false; throw enospc() }
      return await realBatch(...args)
    },
    open: async (...args: unknown[]) => {
      // sublevels open their parent passively: not an open of the database
      if ((args[0] as { passive?: boolean } | undefined)?.passive === true) return await realOpen(...args)
      opens++
      if (openFailures > 0) { openFailures--; throw enospc() }
      return await realOpen(...args)
    }
  })
  return { db, failNext: () => { fail = true }, opens: () => opens, failOpens: (n) => { openFailures = n } }
}

describe('write latch', () => {
  it('names a full disk ERR_DISK_FULL (in words), anything else ERR_STORE', () => {
    assert.equal(isDiskFull(enospc()), true)
    assert.equal(isDiskFull(Object.assign(new Error('x'), { code: 'ENOSPC' })), true)
    assert.equal(isDiskFull(new Error('x', { cause: enospc() })), true)
    assert.equal(isDiskFull(new Error('IO error: checksum mismatch')), false)
    const full = storeWriteError(enospc())
    assert.equal(full.code, 'ERR_DISK_FULL')
    assert.match(full.message, /disk .* is full/)
    assert.equal(storeWriteError(new Error('Input/output error')).code, 'ERR_STORE')
  })

  it('refuses writes until the reopen succeeds, waiting longer after each failed attempt', async () => {
    let fails = 2
    let reopens = 0
    let now = 0
    const latch = new WriteLatch(async () => { reopens++; if (fails-- > 0) throw enospc() }, undefined, { backoffMs: 30, now: () => now })
    await latch.ensureWritable()
    latch.trip(storeWriteError(enospc()))
    await assert.rejects(latch.ensureWritable(), code('ERR_DISK_FULL'))
    assert.equal(reopens, 1)
    // within the backoff: refused without another attempt
    await assert.rejects(latch.ensureWritable(), code('ERR_DISK_FULL'))
    assert.equal(reopens, 1)
    now = 40
    await assert.rejects(latch.ensureWritable(), code('ERR_DISK_FULL'))
    assert.equal(reopens, 2)
    // the second wait is longer (60 ms): still refused 40 ms later
    now = 80
    await assert.rejects(latch.ensureWritable(), code('ERR_DISK_FULL'))
    assert.equal(reopens, 2)
    now = 101
    await latch.ensureWritable()
    assert.equal(reopens, 3)
    assert.equal(latch.latched, undefined)
  })

  it('a disk-full latch does not even close the database while the file system is still full', async () => {
    let reopens = 0
    const latch = new WriteLatch(async () => { reopens++ }, '/', { minFreeBytes: Number.MAX_SAFE_INTEGER })
    latch.trip(storeWriteError(enospc()))
    await assert.rejects(latch.ensureWritable(), code('ERR_DISK_FULL'))
    assert.equal(reopens, 0)
  })

  it('node store: after a failed write, the next write reopens the database first; nothing written is lost', async () => {
    const { db, failNext, opens, failOpens } = failingDb()
    let now = 0
    const store = new LevelStore(db, { backoffMs: 20, now: () => now })
    await store.start()
    const conv = dmConversationId(PEER_A, PEER_B)
    assert.equal(await store.storeIncoming(msg({ conv, author: PEER_B, seq: 1 })), 'stored')
    failNext()
    await assert.rejects(store.storeIncoming(msg({ conv, author: PEER_B, seq: 2 })), code('ERR_DISK_FULL'))
    assert.equal(opens(), 1)
    // the disk is still full when the next write tries to reopen: refused, the store stays latched
    failOpens(1)
    await assert.rejects(store.putMeta('k', 1), code('ERR_DISK_FULL'))
    assert.equal(opens(), 2)
    now = 30
    assert.equal(await store.storeIncoming(msg({ conv, author: PEER_B, seq: 2 })), 'stored')
    assert.equal(opens(), 3)
    assert.deepEqual(await store.haveVector(conv), { [PEER_B]: 2 })
    assert.deepEqual((await store.history(conv)).map(m => m.seq), [1, 2])
    await store.stop()
  })

  it('a write prepared while the batch before it fails gets the same typed error', async () => {
    const { db, release, failNext } = gatedDb()
    const store = new LevelStore(db)
    await store.start()
    failNext()
    const conv = dmConversationId(PEER_A, PEER_B)
    const first = store.storeIncoming(msg({ conv, author: PEER_B, seq: 1 }))
    await new Promise(resolve => setImmediate(resolve))
    const second = store.storeIncoming(msg({ conv, author: PEER_B, seq: 2 }))
    release()
    await assert.rejects(first, code('ERR_STORE'))
    await assert.rejects(second, code('ERR_STORE'))
    const stopping = store.stop()
    release()
    await stopping
  })

  it('relay mailbox store: latched the same way, and reopening reloads its cursor from disk', async () => {
    const { db, failNext, opens } = failingDb()
    const store = new LevelMailboxStore(db, { ttlMs: DEFAULT_MAILBOX_TTL_MS, quotaMessages: 100, quotaBytes: 1 << 20 })
    await store.start()
    await store.admit(PEER_B, 'allow-list')
    failNext()
    await assert.rejects(store.admit(PEER_A, 'allow-list'), code('ERR_DISK_FULL'))
    await store.admit(PEER_A, 'allow-list')
    assert.equal(opens(), 2)
    assert.equal(store.isAdmitted(PEER_A), true)
    assert.equal(store.isAdmitted(PEER_B), true)
    await store.stop()
  })
})
