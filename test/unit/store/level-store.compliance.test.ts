/**
 * LevelStore (node/src/store/level-store.ts): the MessageStore compliance
 * suite on memory-level and on LevelDB on disk (classic-level), then what is
 * LevelDB's own: closing the database, waiting for staged writes, open errors.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { MemoryLevel } from 'memory-level'
import { LevelStore } from '../../../node/src/store/level-store.js'
import { ParleyError } from '../../../core/errors.js'
import { messageStoreCompliance } from '../../compliance/message-store.js'
import { gatedDb, settled, storedMessage } from '../helpers/store.js'
import { PEER_A, PEER_B } from '../helpers/peer-ids.js'
import { dmConversationId } from '../../../core/protocol/envelope.js'
import type { StoredMessage } from '../../../node/src/store/types.js'

const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c

messageStoreCompliance('LevelStore on memory-level', async () => {
  const db = new MemoryLevel()
  return { open: () => new LevelStore(db), destroy: async () => {} }
})

messageStoreCompliance('LevelStore on LevelDB on disk', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-msgstore-'))
  return { open: () => new LevelStore(new Level(dir)), destroy: async () => { await rm(dir, { recursive: true, force: true }) } }
})

describe('LevelStore lifecycle', () => {
  // abstract-level opens a database (and each sublevel) on its own when it is
  // constructed, so these tests look at behaviour and close() calls, not open() calls
  function countingDb (): { db: MemoryLevel, closes: () => number } {
    const db = new MemoryLevel()
    let n = 0
    const close = db.close.bind(db)
    db.close = async () => { n++; await close() }
    return { db, closes: () => n }
  }

  it('start twice works and stop twice closes the database once', async () => {
    const { db, closes } = countingDb()
    const store = new LevelStore(db)
    await store.start()
    await store.start()
    await store.putMeta('k', 1)
    assert.equal(await store.getMeta('k'), 1)
    await store.stop()
    await store.stop()
    assert.equal(closes(), 1)
    assert.equal(db.status, 'closed')
  })

  it('stop without start does nothing', async () => {
    const { db, closes } = countingDb()
    await new LevelStore(db).stop()
    assert.equal(closes(), 0)
    assert.notEqual(db.status, 'closed')
    await db.close()
  })

  it('stop waits for staged writes to be written before closing', async () => {
    const { db, release } = gatedDb()
    const store = new LevelStore(db)
    await store.start()
    const write = store.putMeta('k', 'v')
    const stopping = store.stop()
    assert.equal(await settled(stopping), false)
    assert.notEqual(db.status, 'closed')
    release()
    await write
    await stopping
    assert.equal(db.status, 'closed')
  })

  it('start reports a database that cannot open as ERR_STORE', async () => {
    const db = new MemoryLevel()
    db.open = async () => { throw new Error('disk on fire') }
    await assert.rejects(new LevelStore(db).start(), code('ERR_STORE'))
  })

  it('start reports a locked database as ERR_DATA_DIR_LOCKED', async () => {
    const db = new MemoryLevel()
    db.open = async () => { throw Object.assign(new Error('Database failed to open'), { code: 'LEVEL_DATABASE_NOT_OPEN', cause: Object.assign(new Error('lock held'), { code: 'LEVEL_LOCKED' }) }) }
    await assert.rejects(new LevelStore(db).start(), code('ERR_DATA_DIR_LOCKED'))
  })

  it('a recall that came before its message still erases it after a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-recall-'))
    try {
      const conv = dmConversationId(PEER_A, PEER_B)
      const target = storedMessage({ conv, author: PEER_B, seq: 1, text: 'secret' })
      const recall: StoredMessage = { ...storedMessage({ conv, author: PEER_B, seq: 2, text: '' }), change: { type: 'recall', id: target.id } }
      let store = new LevelStore(new Level(dir))
      await store.start()
      await store.storeIncoming(recall)
      await store.stop()
      store = new LevelStore(new Level(dir))
      await store.start()
      try {
        await store.storeIncoming(target)
        const stored = await store.getMessage(target.id)
        assert.equal(stored?.text, '')
        assert.equal(stored?.recalled, true)
      } finally {
        await store.stop()
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
