/**
 * Accounts (node/src/messaging/accounts.ts) under a flood of throw-away account records (review s4 M4):
 * each account is kept under its own key, at most `maxAccounts` of them (the least recently seen go),
 * known ops are not verified again, and the one map of before is moved at load.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { Accounts, ACCOUNTS_INDEX_META, ACCOUNTS_META, ACCOUNT_OPS_META } from '../../../node/src/messaging/accounts.js'
import { LevelStore } from '../../../node/src/store/level-store.js'
import { signAccountOp, signDeviceConsent } from '../../../core/crypto/account.js'
import type { AccountRecord } from '../../../core/protocol/account.js'
import { silentLogger } from '../../../core/util/log.js'
import { newIdentities, newIdentity } from '../helpers/identities.js'

const recordOf = async (): Promise<AccountRecord> => {
  const [acct, dev] = await newIdentities(2)
  return { v: 1, account: acct!.peerId, ops: [signAccountOp(acct!, 1, { type: 'add', device: dev!.peerId, dsig: signDeviceConsent(dev!, acct!.peerId) })] }
}

describe('Accounts: the records of other accounts in the store', () => {
  it('a flood of throw-away accounts keeps at most maxAccounts, and a colleague seen meanwhile stays', async () => {
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    const accounts = new Accounts({ store, identity: await newIdentity(), log: silentLogger, maxAccounts: 10 })
    await accounts.load()
    const colleague = await recordOf()
    assert.equal(await accounts.accept(colleague), true)
    assert.equal(await accounts.accept(colleague), false, 'nothing new: nothing written, nothing verified')
    const flood: AccountRecord[] = []
    for (let i = 0; i < 30; i++) {
      const r = await recordOf()
      flood.push(r)
      await accounts.accept(r)
      await accounts.accept(colleague) // the colleague keeps writing
    }
    const index = await store.getMeta(ACCOUNTS_INDEX_META) as string[]
    assert.equal(index.length, 10)
    assert.ok(index.includes(colleague.account))
    assert.equal(await store.getMeta(ACCOUNT_OPS_META + flood[0]!.account), undefined, 'the oldest throw-away account is gone from the store')
    assert.equal(accounts.state(flood[0]!.account).version, 0)
    assert.equal(accounts.accountOf(colleague.ops[0]!.device as string), colleague.account)
    // after a restart: the same ten
    const again = new Accounts({ store, identity: (accounts as unknown as { c: { identity: Awaited<ReturnType<typeof newIdentity>> } }).c.identity, log: silentLogger, maxAccounts: 10 })
    await again.load()
    assert.equal(again.accountOf(colleague.ops[0]!.device as string), colleague.account)
    assert.equal(again.state(flood[29]!.account).version, 1)
    await store.stop()
  })

  it('the one map of before is moved to a key per account at load', async () => {
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    const r = await recordOf()
    await store.putMeta(ACCOUNTS_META, { [r.account]: r.ops })
    const accounts = new Accounts({ store, identity: await newIdentity(), log: silentLogger })
    await accounts.load()
    assert.equal(accounts.accountOf(r.ops[0]!.device as string), r.account)
    assert.equal(await store.getMeta(ACCOUNTS_META), undefined)
    assert.deepEqual(await store.getMeta(ACCOUNT_OPS_META + r.account), r.ops)
    await store.stop()
  })

  it('a home relay changed 300 times keeps the record small; an op peers would refuse is never signed (review s4 m1)', async () => {
    const store = new LevelStore(new MemoryLevel())
    await store.start()
    const me = await newIdentity()
    const accounts = new Accounts({ store, identity: me, log: silentLogger })
    await accounts.load()
    const relay = (await newIdentity()).peerId
    for (let i = 0; i < 300; i++) await accounts.setHome([{ relay, addrs: [`/ip4/10.0.${i >> 8}.${i & 255}/tcp/4001/p2p/${relay}`] }])
    const record = accounts.ownRecord() as AccountRecord
    assert.equal(record.ops.length, 1)
    assert.equal(accounts.ownState().version, 300)
    assert.equal(accounts.ownState().home[0]?.addrs[0], `/ip4/10.0.1.43/tcp/4001/p2p/${relay}`)
    // a peer that had an older home op learns the newer one
    const peer = new Accounts({ store: new LevelStore(new MemoryLevel()), identity: await newIdentity(), log: silentLogger })
    await (peer as unknown as { c: { store: LevelStore } }).c.store.start()
    await peer.load()
    const older = record.ops[0]!
    await accounts.setHome([])
    assert.equal(await peer.accept({ v: 1, account: me.peerId, ops: [older] }), true)
    assert.equal(await peer.accept(accounts.ownRecord() as AccountRecord), true, 'a newer home op replaces the older one')
    assert.deepEqual(peer.state(me.peerId).home, [])
    await assert.rejects(accounts.setHome([{ relay: 'not-a-peer-id', addrs: [] }]), /account record/)
    await store.stop()
  })
})
