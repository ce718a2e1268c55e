/**
 * The account records a relay sends beside a forwarded batch (federation.ts accountsOf): an item never
 * leaves without its author's record (the other relay would refuse it), and records + envelopes + `to`
 * stay under the frame.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Federation, type FederationComponents } from '../../../relay/src/federation/federation.js'
import { signAccountOp } from '../../../core/crypto/account.js'
import { createIdentityBytes, loadIdentity } from '../../../core/keys.js'
import { createLogger } from '../../../core/util/log.js'
import { DEFAULT_MAX_FRAME_BYTES } from '../../../core/protocol/frames.js'
import type { AccountRecord } from '../../../core/protocol/account.js'
import type { FedQueueItem } from '../../../relay/src/federation/types.js'

describe('federation: account records beside a batch', () => {
  it('200 authors with 2 KB records: the batch is cut before the first author whose record does not fit', async () => {
    const self = (await loadIdentity(await createIdentityBytes())).peerId
    const meta = new Map<string, unknown>()
    const items: FedQueueItem[] = []
    // a home naming every instance with its addresses: ~2 KB per record
    const addrs = Array.from({ length: 16 }, (_, k) => `/ip4/10.0.${k}.1/tcp/4100/p2p/${self}`)
    for (let k = 0; k < 200; k++) {
      const u = await loadIdentity(await createIdentityBytes())
      meta.set(`acct:${u.peerId}`, [signAccountOp(u, 1, { type: 'home', home: [{ relay: self, addrs }] })])
      const envelope = { author: u.peerId, id: `m${k}` } as unknown as FedQueueItem['envelope']
      items.push({ seq: k + 1, to: ['12D3KooW' + 'B'.repeat(44)], envelope, bytes: 3000, queuedAt: Date.now() })
    }
    const store = { getMeta: async (key: string) => meta.get(key), putMeta: async () => {}, listInstances: async () => [] }
    const fed = new Federation({ store, self: () => self, host: { addresses: () => [] }, log: createLogger('t', 'error'), allowed: () => true } as unknown as FederationComponents)
    const { accounts, ready } = await (fed as unknown as { accountsOf: (i: FedQueueItem[]) => Promise<{ accounts: AccountRecord[], ready: number }> }).accountsOf(items)
    assert.ok(ready > 0 && ready < 200, `cut at ${ready}`)
    const sent = items.slice(0, ready)
    assert.deepEqual(sent.map(i => i.envelope.author), accounts.map(a => a.account), 'each item goes with its author\'s record')
    const body = JSON.stringify({ batch: `1-${ready}`, items: sent.map(i => ({ seq: i.seq, to: i.to, envelope: 'x'.repeat(i.bytes) })), accounts })
    assert.ok(body.length < DEFAULT_MAX_FRAME_BYTES, `${body.length} bytes fit a frame`)
  })
})
