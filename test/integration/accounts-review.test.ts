/**
 * Accounts (issue 11): what review s4 found, in-process on loopback. A new device that dies after the
 * first device answered and comes back after the code's time still ends linked (M1); revoking a device
 * does not rewrite the group history it wrote while current, also after a restart (M3);
 * the home relay an account record names is used for routing (M2); records beside
 * envelopes are taken only from their own account's devices (M4).
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { connect, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import { newIdentity } from '../unit/helpers/identities.js'
import { Libp2pHost } from '../../node/src/host/libp2p-host.js'
import { createIdentityBytes, loadIdentity } from '../../core/keys.js'
import { RpcChannel, remoteCode } from '../../core/rpc/channel.js'
import { MSG_PROTOCOL, PEER_RPC_METHODS } from '../../core/protocol/peer-rpc.js'
import { newMessageId, sealEnvelope } from '../../core/crypto/envelope.js'
import { signAccountOp, signDeviceConsent } from '../../core/crypto/account.js'
import { dmConversationId } from '../../core/protocol/envelope.js'
import { silentLogger } from '../../core/util/log.js'
import { LINK_PENDING_META, type LinkPending } from '../../node/src/messaging/linking.js'

interface LinkingInside { complete: (r: unknown) => Promise<unknown>, c: { store: { getMeta: (k: string) => Promise<unknown>, putMeta: (k: string, v: unknown) => Promise<void> } } }

describe('accounts: review s4', () => {
  let dir: string
  const nodes: ParleyNode[] = []
  const named: Record<string, ParleyNode> = {}
  const restart = async (n: ParleyNode, name: string): Promise<ParleyNode> => {
    await n.stop()
    nodes.splice(nodes.indexOf(n), 1)
    return await node(name)
  }
  const node = async (name: string): Promise<ParleyNode> => {
    const n = loopbackNode(join(dir, name), { name })
    await n.start()
    nodes.push(n)
    named[name] = n
    return n
  }
  before(async () => { dir = await tmpDir('parley-accounts-review-') })
  after(async () => {
    for (const n of nodes) await n.stop().catch(() => {})
    await removeDir(dir)
  })

  it('M1: the new device dies after the answer and restarts past the code\'s time: it still ends linked', async () => {
    const desk = await node('desk')
    let laptop = await node('laptop')
    await connect(laptop, desk)
    const { code } = desk.messenger.linking.createCode()
    // the "kill -9" right after the answer: the join is never written on the laptop
    const inside = laptop.messenger.linking as unknown as LinkingInside
    inside.complete = async () => { throw new Error('killed after the answer') }
    await assert.rejects(laptop.messenger.linking.join(code, 'laptop'), /killed/)
    assert.ok(desk.messenger.accounts.ownState().devices.includes(laptop.peerId), 'the desk added the laptop before it answered')
    assert.equal(laptop.messenger.account, laptop.peerId)
    // the restart comes after the code's time
    const pending = await inside.c.store.getMeta(LINK_PENDING_META) as LinkPending
    await inside.c.store.putMeta(LINK_PENDING_META, { ...pending, expiresAt: Date.now() - 1 })
    laptop = await restart(laptop, 'laptop')
    await connect(laptop, desk)
    await until(() => laptop.messenger.account === desk.peerId, 'the laptop joins the account that lists it', 20_000)
    await until(() => laptop.messenger.linking.pendingLink === undefined, 'nothing left pending')
  })

  it('M3: a group the laptop created stays the same at Ben after the laptop is revoked and Ben restarts', async () => {
    const desk = named.desk as ParleyNode
    const laptop = named.laptop as ParleyNode
    assert.equal(laptop.messenger.account, desk.peerId, 'linked by the test before')
    let ben = await node('ben')
    await connect(ben, desk); await connect(ben, laptop)
    const g = await laptop.messenger.createGroup('Lunch', [ben.peerId])
    const members = [...g.members].sort()
    await until(() => ben.messenger.group(g.conv) !== null, 'Ben gets the group')
    assert.deepEqual([...(ben.messenger.group(g.conv)?.members ?? [])].sort(), members)
    await desk.messenger.accounts.change({ type: 'revoke', device: laptop.peerId })
    await until(() => ben.messenger.accounts.accountOf(laptop.peerId) === null, 'Ben learns the revocation')
    assert.deepEqual([...(ben.messenger.group(g.conv)?.members ?? [])].sort(), members, 'live: unchanged')
    ben = await restart(ben, 'ben')
    const after = ben.messenger.group(g.conv)
    assert.ok(after !== null, 'the group is still there after the restart')
    assert.deepEqual([...after.members].sort(), members)
    assert.equal(after.admin, desk.peerId)
    // what the revoked device wrote stays the account's; what it sends now is refused (accountOf: null)
    assert.equal(ben.messenger.accounts.accountOfAccepted(laptop.peerId), desk.peerId)
  })

  it('M2: the home relay in Ana\'s signed record is where Ben\'s relay client routes her devices\' mail', async () => {
    const desk = named.desk as ParleyNode
    const ben = named.ben as ParleyNode
    const home = (await newIdentity()).peerId
    if (!ben.host.isConnected(desk.peerId)) await connect(ben, desk)
    await desk.messenger.accounts.setHome([{ relay: home, addrs: [`/ip4/10.1.0.1/tcp/4001/p2p/${home}`] }])
    // the record rides beside Ana's next envelope
    const sent = await desk.messenger.sendMessage(ben.peerId, 'my home relay')
    await desk.messenger.waitForState(sent.id, 'delivered', { signal: AbortSignal.timeout(10_000) })
    await until(() => ben.messenger.accounts.state(desk.peerId).home[0]?.relay === home, 'Ben learns Ana\'s home')
    const homeOf = (ben.relay as unknown as { c: { homeOf: (d: string) => string | undefined } }).c.homeOf
    assert.equal(homeOf(desk.peerId), home)
    assert.equal(homeOf(ben.peerId), undefined, 'no home in Ben\'s own record')
  })

  it('M4: a record beside an envelope that is not the author\'s account is refused and never stored', async () => {
    const ben = named.ben as ParleyNode
    const mallory = loadIdentity(await createIdentityBytes())
    const host = new Libp2pHost({ identity: mallory, log: silentLogger }, { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
    await host.start()
    try {
      await host.dial(ben.host.addresses().find(a => a.includes('/127.0.0.1/')) as string)
      const ch = new RpcChannel(await host.openStream(ben.peerId, MSG_PROTOCOL), undefined, silentLogger, { methods: PEER_RPC_METHODS })
      const conv = dmConversationId(mallory.peerId, ben.peerId)
      const strangers: string[] = []
      for (let i = 0; i < 20; i++) {
        const [acct, dev] = [loadIdentity(await createIdentityBytes()), loadIdentity(await createIdentityBytes())]
        strangers.push(acct.peerId)
        const env = sealEnvelope(mallory, { id: newMessageId(), conv, seq: i + 1, hlc: { w: Date.now(), c: 0 }, recipients: [ben.peerId], body: { text: `flood ${i}` } })
        const acctRecord = { v: 1, account: acct.peerId, ops: [signAccountOp(acct, 1, { type: 'add', device: dev.peerId, dsig: signDeviceConsent(dev, acct.peerId) })] }
        await assert.rejects(ch.call('deliver', { ...env, acct: acctRecord }), (e: unknown) => remoteCode(e) === 'ERR_INVALID_ENVELOPE')
      }
      assert.ok(strangers.every(a => ben.messenger.accounts.state(a).version === 0), 'none of the throw-away accounts kept')
      await ch.close()
    } finally { await host.stop() }
  })
})
