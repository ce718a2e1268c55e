/**
 * LevelMailboxStore (relay/src/store/level-mailbox-store.ts): the MailboxStore
 * compliance suite on memory-level and on LevelDB on disk, then what is
 * LevelDB's own: the envelopes are stored as sealed.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { MemoryLevel } from 'memory-level'
import { LevelMailboxStore } from '../../../relay/src/store/level-mailbox-store.js'
import { sealEnvelope, newMessageId } from '../../../core/crypto/envelope.js'
import { dmConversationId } from '../../../core/protocol/envelope.js'
import { mailboxStoreCompliance } from '../../compliance/mailbox-store.js'
import { newIdentities } from '../helpers/identities.js'

mailboxStoreCompliance('LevelMailboxStore on memory-level', async () => {
  const db = new MemoryLevel()
  return { open: (limits) => new LevelMailboxStore(db, limits), destroy: async () => {} }
})

mailboxStoreCompliance('LevelMailboxStore on LevelDB on disk', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-mailbox-'))
  return { open: (limits) => new LevelMailboxStore(new Level(dir), limits), destroy: async () => { await rm(dir, { recursive: true, force: true }) } }
})

describe('LevelMailboxStore', () => {
  it('stores envelopes as sealed: the plaintext is nowhere in the database', async () => {
    const [alice, bob] = await newIdentities(2)
    const env = (text: string) => sealEnvelope(alice!, { id: newMessageId(), conv: dmConversationId(alice!.peerId, bob!.peerId), seq: 1, hlc: { w: Date.now(), c: 0 }, recipients: [bob!.peerId], body: { text } })
    const db = new MemoryLevel()
    const s = new LevelMailboxStore(db, { ttlMs: 60_000, quotaMessages: 100, quotaBytes: 1 << 20 })
    await s.start()
    await s.deposit(bob!.peerId, alice!.peerId, env('canary-in-the-mailbox'), 100)
    for await (const [, v] of db.iterator({ valueEncoding: 'utf8' })) assert.ok(!String(v).includes('canary-in-the-mailbox'))
    await s.stop()
  })
})
