/**
 * The relay's composition root (relay/src/relay-server.ts) on loopback, in
 * process: what it keeps across a stop() and start().
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { sealEnvelope, newMessageId } from '../../core/crypto/envelope.js'
import { dmConversationId } from '../../core/protocol/envelope.js'
import { createLogger } from '../../core/util/log.js'
import type { DeviceIdentity } from '../../core/keys.js'
import { newIdentities } from '../unit/helpers/identities.js'

describe('RelayServer', () => {
  it('keeps its counters across an in-process stop() and start()', async () => {
    const dir = await tmpDir()
    const relay = new RelayServer({
      dataDir: join(dir, 'relay'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      sweepIntervalMs: 20
    }, createLogger('relay', 'error'))
    try {
      await relay.start()
      // below the shortest retention an admin may set (1 minute), straight on the store, so the sweep runs at once
      relay.mailbox.setLimits({ ttlMs: 20, quotaMessages: 100, quotaBytes: 1 << 20 })
      const [alice, bob] = await newIdentities(2) as [DeviceIdentity, DeviceIdentity]
      await relay.admit(bob.peerId)
      const env = sealEnvelope(alice, {
        id: newMessageId(), conv: dmConversationId(alice.peerId, bob.peerId), seq: 1, hlc: { w: Date.now(), c: 0 }, recipients: [bob.peerId], body: { text: 'x' }
      })
      assert.equal(await relay.mailbox.deposit(bob.peerId, alice.peerId, env, 100), 1)
      await until(async () => (await relay.stats()).counters.expired === 1, 'the sweep to expire the copy')
      await relay.stop()
      await relay.start()
      assert.equal((await relay.stats()).counters.expired, 1)
    } finally {
      await relay.stop()
      await removeDir(dir)
    }
  })
})
