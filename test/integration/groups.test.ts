/**
 * Groups on loopback with a relay: creation, fan-out, a member offline during
 * 200 messages from 3 senders, catch-up, identical histories, removal.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { connect, filesContaining, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { audit } from '../helpers/audit.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import { Libp2pHost } from '../../node/src/host/libp2p-host.js'
import { createIdentityBytes, loadIdentity } from '../../core/keys.js'
import { RpcChannel, remoteCode } from '../../core/rpc/channel.js'
import type { GroupOp } from '../../core/protocol/envelope.js'
import { MSG_PROTOCOL, PEER_RPC_METHODS } from '../../core/protocol/peer-rpc.js'
import { newMessageId, sealEnvelope } from '../../core/crypto/envelope.js'
import { silentLogger } from '../../core/util/log.js'

describe('groups', () => {
  let dir: string
  let relay: RelayServer
  let relayAddr: string
  const n: Record<'a' | 'b' | 'c' | 'd', ParleyNode> = {} as never
  let conv: string
  let dPort: number

  const make = (name: string, port = 0): ParleyNode => loopbackNode(join(dir, name), {
    name, relay: relayAddr, host: { listen: [`/ip4/127.0.0.1/tcp/${port}`] }, messenger: { depositAfterMs: 200 }, relayClient: { mailboxPollMs: 300 }
  })

  before(async () => {
    dir = await tmpDir('parley-groups-')
    relay = new RelayServer({ dataDir: join(dir, 'relay'), listen: ['/ip4/127.0.0.1/tcp/0'] }, createLogger('relay', 'error'))
    await relay.start()
    relayAddr = relay.addresses()[0] as string
    // below Linux's ephemeral range (32768+), so no outgoing connection holds it
    dPort = 10000 + Math.floor(Math.random() * 22000)
    for (const k of ['a', 'b', 'c', 'd'] as const) {
      n[k] = make(k.toUpperCase(), k === 'd' ? dPort : 0)
      await n[k].start()
      await relay.mailbox.admit(n[k].peerId, 'allow-list')
    }
    const all = Object.values(n)
    for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++) await connect(all[i]!, all[j]!)
  })
  after(async () => {
    for (const node of Object.values(n)) await node?.stop()
    await relay?.stop()
    await removeDir(dir)
  })

  it('creates a group that every member sees with the same members', async () => {
    const g = await n.a.messenger.createGroup('Team', [n.b.peerId, n.c.peerId, n.d.peerId])
    conv = g.conv
    for (const node of Object.values(n)) {
      const seen = await until(() => node.messenger.group(conv), 'group known')
      assert.equal(seen.name, 'Team')
      assert.deepEqual([...seen.members].sort(), Object.values(n).map(x => x.peerId).sort())
      assert.equal(seen.admin, n.a.peerId)
    }
  })

  it('a member offline during 200 messages from 3 senders catches up; all 4 histories are identical', async () => {
    await n.d.stop()
    const senders = [n.a, n.b, n.c]
    const sent: Record<string, string[]> = { [n.a.peerId]: [], [n.b.peerId]: [], [n.c.peerId]: [] }
    for (let i = 0; i < 200; i++) {
      const s = senders[i % 3]!
      const text = `m${i} from ${s.peerId.slice(-4)}`
      await s.messenger.sendMessage(conv, text)
      sent[s.peerId]!.push(text)
    }
    // the online members have everything
    for (const node of [n.a, n.b, n.c]) await until(async () => (await node.messenger.history(conv, { limit: 10_000 })).length >= 201, 'online members have all', 30_000, 100)
    // offline member's copies wait at the relay (fan-out) and in the senders' outboxes
    await until(async () => (await relay.stats()).mailbox.messages >= 200, 'fan-out to the relay for D', 30_000, 100)
    n.d = make('D', dPort)
    await n.d.start()
    await until(async () => (await n.d.messenger.history(conv, { limit: 10_000 })).length >= 201, 'D caught up', 60_000, 200)
    const histories = await Promise.all(Object.values(n).map(async node => (await node.messenger.history(conv, { limit: 10_000 })).map(m => m.id)))
    for (const h of histories.slice(1)) assert.deepEqual(h, histories[0], 'identical order everywhere')
    const dHist = await n.d.messenger.history(conv, { limit: 10_000 })
    for (const [author, texts] of Object.entries(sent)) {
      const r = audit(texts, dHist, author)
      assert.deepEqual([r.lost, r.duplicated, r.orderViolations], [0, 0, 0], `from ${author.slice(-4)}`)
    }
    // every message ends up delivered (each recipient confirmed it itself)
    for (const s of senders) await until(async () => (await s.messenger.history(conv, { limit: 10_000 })).filter(m => m.outgoing && m.op === undefined).every(m => m.state === 'delivered' || m.state === 'read'), 'all delivered', 60_000, 200)
  })

  it('a removed member cannot read what is sent after the removal', async () => {
    await n.a.messenger.removeMember(conv, n.d.peerId)
    await until(() => n.d.messenger.group(conv)?.members.includes(n.d.peerId) === false, 'D learns it was removed')
    for (const node of [n.a, n.b, n.c]) await until(() => node.messenger.group(conv)?.members.length === 3, 'members know')
    const secret = await n.b.messenger.sendMessage(conv, 'after D left: secret plan')
    assert.ok(!secret.envelope.keys.some(k => k.to === n.d.peerId), 'not sealed for D')
    await until(async () => (await n.c.messenger.history(conv, { limit: 10_000 })).some(m => m.id === secret.id), 'C has it')
    await new Promise(resolve => setTimeout(resolve, 1000))
    assert.ok(!(await n.d.messenger.history(conv, { limit: 10_000 })).some(m => m.id === secret.id), 'D never stored it')
    await assert.rejects(n.d.messenger.sendMessage(conv, 'still here?'), { code: 'ERR_NOT_A_MEMBER' })
    // only the creator changes membership
    await assert.rejects(n.b.messenger.removeMember(conv, n.c.peerId), { code: 'ERR_NOT_A_MEMBER' })
  })

  it('a member added later learns the group from the add op and can take part', async () => {
    const e = make('E')
    await e.start()
    await relay.mailbox.admit(e.peerId, 'allow-list')
    for (const k of ['a', 'b', 'c'] as const) await connect(n[k], e)
    await n.a.messenger.addMember(conv, e.peerId)
    const seen = await until(() => e.messenger.group(conv), 'E knows the group')
    assert.equal(seen.name, 'Team')
    assert.deepEqual([...seen.members].sort(), [n.a.peerId, n.b.peerId, n.c.peerId, e.peerId].sort())
    const hi = await e.messenger.sendMessage(conv, 'hello from the new member')
    for (const k of ['a', 'b', 'c'] as const) await until(async () => (await n[k].messenger.history(conv, { limit: 10_000 })).some(m => m.id === hi.id), 'everyone has it')
    // a member that had not yet folded in the add answered "not yet", never a refusal for good
    const state = await until(async () => {
      const m = (await e.messenger.history(conv, { limit: 10_000 })).find(x => x.id === hi.id)
      return m?.state === 'delivered' || m?.state === 'failed' ? m.state : undefined
    }, 'settled')
    assert.equal(state, 'delivered')
    await e.stop()
  })

  it('a non-member cannot write into the group, neither ops nor text', async () => {
    const evil = loadIdentity(await createIdentityBytes())
    const host = new Libp2pHost({ identity: evil, log: silentLogger }, { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
    await host.start()
    try {
      await host.dial(n.a.host.addresses()[0] as string)
      const ch = new RpcChannel(await host.openStream(n.a.peerId, MSG_PROTOCOL), undefined, silentLogger, { methods: PEER_RPC_METHODS })
      const seal = (seq: number, body: { text: string, op?: GroupOp }, kind: 'text' | 'groupOp') =>
        sealEnvelope(evil, { id: newMessageId(), conv, seq, hlc: { w: Date.now(), c: 0 }, recipients: [n.a.peerId], body, kind })
      // changes only the admin may make, and a second create, can never be valid: refused for good;
      // text from an author never seen as a member may be behind an add still on its way: "not yet"
      // (retried by the sender, never stored)
      const sent = [
        [seal(1, { text: 'A removed B', op: { type: 'remove', member: n.b.peerId } }, 'groupOp'), 'ERR_NOT_A_MEMBER'],
        [seal(2, { text: 'x', op: { type: 'rename', name: 'Owned' } }, 'groupOp'), 'ERR_NOT_A_MEMBER'],
        [seal(3, { text: 'x', op: { type: 'create', name: 'Team', members: [n.a.peerId] } }, 'groupOp'), 'ERR_NOT_A_MEMBER'],
        [seal(4, { text: 'let me in' }, 'text'), 'ERR_UNKNOWN_GROUP']
      ] as const
      for (const [env, expected] of sent) {
        await assert.rejects(ch.call('deliver', env), (err) => { assert.equal(remoteCode(err), expected); return true })
      }
      assert.equal(n.a.messenger.group(conv)?.name, 'Team')
      assert.ok(n.a.messenger.group(conv)?.members.includes(n.b.peerId))
      const ids = new Set(sent.map(([env]) => env.id))
      assert.deepEqual((await n.a.messenger.history(conv, { limit: 10_000 })).filter(m => ids.has(m.id)), [], 'nothing of it is stored')
    } finally {
      await host.stop()
    }
  })

  it('leaving while a member is offline: the leave still reaches them when they are back', async () => {
    const g = await n.a.messenger.createGroup('Leavers', [n.b.peerId, n.c.peerId])
    for (const k of ['b', 'c'] as const) await until(() => n[k].messenger.group(g.conv), 'group known')
    await n.c.stop()
    await n.b.messenger.leaveGroup(g.conv)
    const leaveOp = async () => (await n.b.messenger.history(g.conv, { limit: 100 })).find(m => m.outgoing && m.op?.type === 'leave')
    await until(leaveOp, 'leave stored')
    await new Promise(resolve => setTimeout(resolve, 500))
    assert.notEqual((await leaveOp())?.state, 'failed', 'our own leave is not failed by our own removal check')
    n.c = make('C')
    await n.c.start()
    for (const k of ['a', 'b'] as const) await connect(n[k], n.c)
    await until(() => n.c.messenger.group(g.conv)?.members.includes(n.b.peerId) === false, 'C learns that B left', 20_000)
  })

  it('the relay holds ciphertext only', async () => {
    const canary = `group-canary-${Math.random().toString(36).slice(2)}`
    await n.c.stop()
    const m = await n.a.messenger.sendMessage(conv, canary)
    // the canary itself is at the relay (for C, who is offline) before the files are searched
    await n.a.messenger.waitForState(m.id, 'sent', { signal: AbortSignal.timeout(30_000) })
    assert.ok((await relay.stats()).mailbox.messages > 0)
    assert.deepEqual(await filesContaining(join(dir, 'relay'), canary), [], 'no plaintext at the relay')
  })
})
