/**
 * Accounts with several devices (issue 11), in-process on loopback: Ana links
 * a second device; Ben's message reaches both; Ana answers from the second
 * device and Ben and Ana's first device show one conversation in the same
 * order; a group; revoking the second device; a forged certificate; a v0.1
 * data dir migrated at start.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { cp, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { PARLEY_BIN } from '../helpers/proc.js'
import { parseLinkCode } from '../../core/protocol/account.js'
import { connect, loopbackNode, removeDir, speakV01, tmpDir, until } from '../helpers/nodes.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { AccountView, MessageView } from '../../node/src/api/contract.js'
import { Libp2pHost } from '../../node/src/host/libp2p-host.js'
import { createIdentityBytes, loadIdentity } from '../../core/keys.js'
import { RpcChannel, remoteCode } from '../../core/rpc/channel.js'
import { MSG_PROTOCOL, PEER_RPC_METHODS } from '../../core/protocol/peer-rpc.js'
import { newMessageId, sealEnvelope } from '../../core/crypto/envelope.js'
import { signAccountOp, signDeviceConsent } from '../../core/crypto/account.js'
import { dmConversationId } from '../../core/protocol/envelope.js'
import { silentLogger } from '../../core/util/log.js'
import { ParleyError } from '../../core/errors.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'

describe('accounts with several devices', () => {
  let dir: string
  const n: Record<'ana1' | 'ana2' | 'ben', ParleyNode> = {} as never

  before(async () => {
    dir = await tmpDir('parley-accounts-')
    for (const k of ['ana1', 'ana2', 'ben'] as const) {
      n[k] = loopbackNode(join(dir, k), { name: k === 'ben' ? 'Ben' : 'Ana' })
      await n[k].start()
    }
    await connect(n.ana1, n.ana2)
    await connect(n.ana1, n.ben)
    await connect(n.ana2, n.ben)
  })
  after(async () => {
    for (const node of Object.values(n)) await node?.stop()
    await removeDir(dir)
  })

  it('links a second device with a one-time code', async () => {
    // a first start is a one-device account: the device's peer ID is the account ID
    assert.equal(n.ana1.messenger.account, n.ana1.peerId)
    const { code } = n.ana1.messenger.linking.createCode()
    const joined = await n.ana2.messenger.linking.join(code, 'laptop')
    assert.equal(joined.account, n.ana1.peerId)
    assert.equal(n.ana2.messenger.account, n.ana1.peerId)
    assert.deepEqual(n.ana1.messenger.accounts.ownState().devices, [n.ana1.peerId, n.ana2.peerId])
    assert.equal(n.ana1.messenger.accounts.ownState().labels[n.ana2.peerId], 'laptop')
    // used once: a second device cannot use the same code
    const third = loopbackNode(join(dir, 'third'))
    await third.start()
    try {
      await connect(third, n.ana1)
      await assert.rejects(third.messenger.linking.join(code), (e: unknown) => e instanceof ParleyError && e.code === 'ERR_INVITE_INVALID')
      assert.equal(third.messenger.account, third.peerId)
      assert.equal(third.messenger.linking.pendingLink, undefined)
      // a code expires: past its time it is refused as well, and nothing is left pending
      const short = n.ana1.messenger.linking.createCode(1)
      await until(() => Date.now() > short.expiresAt, 'the code\'s time is over')
      await assert.rejects(third.messenger.linking.join(short.code), (e: unknown) => e instanceof ParleyError && e.code === 'ERR_INVITE_INVALID')
      assert.equal(third.messenger.account, third.peerId)
      assert.equal(third.messenger.linking.pendingLink, undefined)
    } finally { await third.stop() }
    // Ben learns the new device from the account's record (announced on change)
    await until(() => n.ben.messenger.accounts.devicesOf(n.ana1.peerId).includes(n.ana2.peerId), 'Ben knows Ana\'s second device')
    const peers = await n.ben.messenger.listPeers()
    const ana = peers.filter(p => p.name === 'Ana')
    assert.equal(ana.length, 1, 'one entry per person')
    assert.equal(ana[0]?.peerId, n.ana1.peerId)
    assert.equal(ana[0]?.keyWarning, null, 'a second device of the same account is no impostor')
    assert.deepEqual(ana[0]?.devices.map(d => d.peerId).sort(), [n.ana1.peerId, n.ana2.peerId].sort())
  })

  it('Ben\'s message reaches both of Ana\'s devices, and reads delivered', async () => {
    const m = await n.ben.messenger.sendMessage(n.ana1.peerId, 'lunch at 12?')
    assert.deepEqual(m.envelope.keys.map(k => k.to).sort(), [n.ana1.peerId, n.ana2.peerId, n.ben.peerId].sort())
    await n.ben.messenger.waitForState(m.id, 'delivered', { signal: AbortSignal.timeout(10_000) })
    for (const d of [n.ana1, n.ana2]) {
      await until(async () => (await d.messenger.history(n.ben.peerId)).some(x => x.id === m.id), 'message on both devices')
    }
    // addressing Ana by her second device names the same person: the same conversation
    assert.equal(n.ben.messenger.convOf(n.ana2.peerId), dmConversationId(n.ana1.peerId, n.ben.peerId))
  })

  it('Ana answers from her second device: Ben and her first device show one conversation in the same order', async () => {
    const r = await n.ana2.messenger.sendMessage(n.ben.peerId, 'yes, see you there')
    assert.equal(r.conv, dmConversationId(n.ana1.peerId, n.ben.peerId))
    await n.ana2.messenger.waitForState(r.id, 'delivered', { signal: AbortSignal.timeout(10_000) })
    const m2 = await n.ben.messenger.sendMessage(n.ana2.peerId, 'great')
    const ids = async (node: ParleyNode, peer: string): Promise<string[]> => (await node.messenger.history(peer)).map(x => x.id)
    await until(async () => (await ids(n.ana1, n.ben.peerId)).length === 3 && (await ids(n.ana2, n.ben.peerId)).length === 3, 'three messages everywhere')
    const onBen = await ids(n.ben, n.ana1.peerId)
    assert.equal(onBen.length, 3)
    assert.deepEqual(await ids(n.ana1, n.ben.peerId), onBen)
    assert.deepEqual(await ids(n.ana2, n.ben.peerId), onBen)
    assert.equal(onBen[2], m2.id)
    // on Ana's first device her second device's message is hers
    const mine = (await n.ana1.messenger.history(n.ben.peerId)).find(x => x.id === r.id)
    assert.equal(mine?.outgoing, true)
    // one conversation on Ben's side, none with the second device apart
    assert.equal((await n.ben.messageStore.listConversations()).length, 1)
  })

  it('a group of accounts: every device of a member gets its messages', async () => {
    const g = await n.ben.messenger.createGroup('Lunch', [n.ana1.peerId])
    assert.deepEqual([...g.members].sort(), [n.ana1.peerId, n.ben.peerId].sort())
    await until(() => n.ana2.messenger.group(g.conv), 'group known on Ana\'s second device')
    const m = await n.ana2.messenger.sendMessage(g.conv, 'from the laptop')
    await until(async () => (await n.ben.messenger.history(g.conv)).some(x => x.id === m.id), 'group message at Ben')
    await until(async () => (await n.ana1.messenger.history(g.conv)).some(x => x.id === m.id), 'group message on Ana\'s first device')
  })

  it('edits and recalls are the person\'s: from any of their devices, never from someone else', async () => {
    const mine = (await n.ana2.messenger.history(n.ben.peerId)).find(x => x.text === 'yes, see you there')
    assert.ok(mine !== undefined)
    // written on the laptop, edited on the desktop
    await post(n.ana1, { to: n.ben.peerId, text: 'yes, see you at 12', change: { type: 'edit', id: mine.id } })
    const text = async (node: ParleyNode, peer: string): Promise<string | undefined> => (await shown(node, peer)).find(x => x.id === mine.id)?.text
    for (const [node, peer] of [[n.ben, n.ana1.peerId], [n.ana2, n.ben.peerId], [n.ana1, n.ben.peerId]] as const) {
      await until(async () => await text(node, peer) === 'yes, see you at 12', 'the edit shown everywhere')
    }
    const forged = await call<{ code: string }>(n.ben, 'POST', '/messages', { to: n.ana1.peerId, text: 'not yours', change: { type: 'edit', id: mine.id } })
    assert.equal(forged.status, 400)
    // and recalled from the laptop again
    await post(n.ana2, { to: n.ben.peerId, text: '', change: { type: 'recall', id: mine.id } })
    await until(async () => (await shown(n.ben, n.ana1.peerId)).find(x => x.id === mine.id)?.recalled === true, 'recalled at Ben')
    await until(async () => (await shown(n.ana1, n.ben.peerId)).find(x => x.id === mine.id)?.recalled === true, 'recalled on the desktop')
  })

  it('a forged device certificate is refused', async () => {
    const mallory = loadIdentity(await createIdentityBytes())
    // Mallory signs an add op in Ana's name (with her own key) for her device
    const forgedOp = { ...signAccountOp(mallory, 9, { type: 'add', device: mallory.peerId, dsig: signDeviceConsent(mallory, n.ana1.peerId) }), account: n.ana1.peerId }
    const host = new Libp2pHost({ identity: mallory, log: silentLogger }, { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
    await host.start()
    try {
      const addr = n.ben.host.addresses().find(a => a.includes('/127.0.0.1/')) as string
      await host.dial(addr)
      const ch = new RpcChannel(await host.openStream(n.ben.peerId, MSG_PROTOCOL), undefined, silentLogger, { methods: PEER_RPC_METHODS })
      const conv = dmConversationId(n.ana1.peerId, n.ben.peerId)
      const env = sealEnvelope(mallory, { id: newMessageId(), conv, seq: 1, hlc: { w: Date.now(), c: 0 }, recipients: [n.ben.peerId], body: { text: 'I am Ana, really' } })
      const forged = { ...env, acct: { v: 1, account: n.ana1.peerId, ops: [forgedOp] } }
      await assert.rejects(ch.call('deliver', forged), (e: unknown) => remoteCode(e) === 'ERR_INVALID_ENVELOPE')
      // without a certificate the device is nobody in this conversation
      await assert.rejects(ch.call('deliver', env), (e: unknown) => remoteCode(e) === 'ERR_INVALID_ENVELOPE')
      assert.ok(!(await n.ben.messenger.history(n.ana1.peerId)).some(m => m.text === 'I am Ana, really'))
      assert.ok(!n.ben.messenger.accounts.devicesOf(n.ana1.peerId).includes(mallory.peerId))
      await ch.close()
    } finally { await host.stop() }
  })

  it('revoking the second device: it can read nothing sent afterwards', async () => {
    await n.ana1.messenger.accounts.change({ type: 'revoke', device: n.ana2.peerId })
    await until(() => !n.ben.messenger.accounts.devicesOf(n.ana1.peerId).includes(n.ana2.peerId), 'Ben learns the revocation')
    const m = await n.ben.messenger.sendMessage(n.ana1.peerId, 'after the revocation')
    assert.ok(!m.envelope.keys.some(k => k.to === n.ana2.peerId), 'nobody seals to a revoked device')
    await n.ben.messenger.waitForState(m.id, 'delivered', { signal: AbortSignal.timeout(10_000) })
    const own = await n.ana1.messenger.sendMessage(n.ben.peerId, 'from my desktop')
    assert.ok(!own.envelope.keys.some(k => k.to === n.ana2.peerId))
    await new Promise(resolve => setTimeout(resolve, 1000))
    const onAna2 = (await n.ana2.messenger.history(n.ben.peerId)).map(x => x.id)
    assert.ok(!onAna2.includes(m.id) && !onAna2.includes(own.id))
    // and what the revoked device still sends is refused
    const late = await n.ana2.messenger.sendMessage(n.ben.peerId, 'still me?')
    await until(async () => (await n.ana2.messageStore.getMessage(late.id))?.state === 'failed', 'refused by Ben', 10_000)
    assert.ok(!(await n.ben.messenger.history(n.ana1.peerId)).some(x => x.id === late.id))
  })
})

describe('v0.1 data dir migration', () => {
  let dir: string
  before(async () => { dir = await tmpDir('parley-migrate-') })
  after(async () => { await removeDir(dir) })

  it('data dirs written by Parley 0.1.0 become one-device accounts with every message, group and contact', async () => {
    // test/fixtures/v0.1-datadir: written by the v0.1 code itself (its README says how); copied, never changed
    const x = JSON.parse(await readFile(join(V01, 'expected.json'), 'utf8')) as V01Expected
    await cp(V01, join(dir, 'v01'), { recursive: true })
    const a = loopbackNode(join(dir, 'v01/ana'))
    const b = loopbackNode(join(dir, 'v01/ben'))
    await a.start(); await b.start()
    try {
      for (const [node, id] of [[a, x.ana], [b, x.ben]] as const) {
        assert.equal(node.peerId, id, 'the same device key')
        assert.equal(node.messenger.account, id, 'its peer ID is its account ID')
        assert.equal(node.messenger.accounts.migrated, true)
        assert.deepEqual(node.messenger.accounts.ownState().devices, [id])
      }
      // before any connection: what the data dir held
      const dm = await a.messenger.history(x.ben)
      assert.deepEqual(dm.map(m => m.id), x.dmIds)
      assert.deepEqual(dm.map(m => m.text), x.dmTexts)
      assert.equal(dm[0]?.conv, x.dm)
      assert.equal(a.messenger.convOf(x.ben), x.dm, 'the conversation id is unchanged')
      assert.deepEqual((await b.messenger.history(x.ana)).map(m => m.id), x.dmIds)
      for (const node of [a, b]) {
        const g = node.messenger.group(x.group)
        assert.equal(g?.name, x.groupName)
        assert.deepEqual([...(g?.members ?? [])].sort(), [x.ana, x.ben].sort())
        assert.deepEqual((await node.messenger.history(x.group)).map(m => m.id), x.groupIds)
      }
      assert.ok((await a.messenger.listPeers()).some(p => p.peerId === x.ben && p.name === 'Ben'), 'the contact and its name')
      assert.equal(a.messenger.name, 'Ana')
      // and both go on where they were: a new message each way, and in the old group
      await connect(a, b)
      const m1 = await a.messenger.sendMessage(x.ben, 'after accounts')
      await a.messenger.waitForState(m1.id, 'delivered', { signal: AbortSignal.timeout(10_000) })
      assert.equal(m1.conv, x.dm)
      const m2 = await b.messenger.sendMessage(x.group, '新消息')
      await b.messenger.waitForState(m2.id, 'delivered', { signal: AbortSignal.timeout(10_000) })
      await until(async () => (await a.messenger.history(x.group)).some(m => m.id === m2.id), 'group message at Ana')
      const peer = (await b.messenger.listPeers()).find(p => p.peerId === x.ana)
      assert.equal(peer?.needsUpdate, false, 'both run this version now')
      assert.equal(peer?.keyWarning, null)
    } finally { await a.stop(); await b.stop() }
  })
})

describe('the CLI: parley link, parley devices, revoke', () => {
  let dir: string
  const n: Record<'ana1' | 'ana2' | 'ben' | 'old', ParleyNode> = {} as never
  const parley = async (node: 'ana1' | 'ana2' | 'ben', ...args: string[]): Promise<string> =>
    (await promisify(execFile)(process.execPath, [PARLEY_BIN, ...args, '--data', join(dir, node)], { encoding: 'utf8' })).stdout

  before(async () => {
    dir = await tmpDir('parley-accounts-cli-')
    for (const k of ['ana1', 'ana2', 'ben', 'old'] as const) {
      n[k] = loopbackNode(join(dir, k), { name: k === 'ben' ? 'Ben' : k === 'old' ? 'Olga' : 'Ana' })
      await n[k].start()
    }
    // Olga's Parley answers as 0.1.0 did (no accounts)
    speakV01(n.old)
    await connect(n.ana1, n.ana2); await connect(n.ana1, n.ben); await connect(n.ana2, n.ben); await connect(n.ben, n.old)
  })
  after(async () => {
    for (const node of Object.values(n)) await node?.stop()
    await removeDir(dir)
  })

  it('links with the code parley link prints (text and QR code), lists and revokes by the end of an ID', async () => {
    const made = await parley('ana1', 'link')
    assert.match(made, /[▀▄█]/, 'a QR code drawn in the terminal')
    const code = /^ {2}(\S+)$/m.exec(made)?.[1] ?? ''
    assert.equal(parseLinkCode(code)?.device, n.ana1.peerId)
    const joined = await parley('ana2', 'link', code, '--label', 'laptop')
    assert.match(joined, new RegExp(`part of account ${n.ana1.peerId} \\(2 devices\\)`))
    assert.match(joined, /messages from before the link stay on your other devices/)
    const listed = await parley('ana1', 'devices')
    assert.match(listed, new RegExp(`${n.ana2.peerId} laptop`))
    assert.match(listed, /this device \(account key\)/)
    const json = JSON.parse(await parley('ana1', 'devices', '--json')) as AccountView
    assert.deepEqual(json.devices.map(d => d.peerId), [n.ana1.peerId, n.ana2.peerId])
    // Ben's list: one Ana, with two devices
    await until(() => n.ben.messenger.accounts.devicesOf(n.ana1.peerId).includes(n.ana2.peerId), 'Ben knows the laptop', 30_000)
    await until(async () => (await n.ben.messenger.listPeers()).find(p => p.peerId === n.old.peerId)?.needsUpdate === true, 'Olga\'s old profile seen', 30_000)
    const peers = await parley('ben', 'peers')
    assert.match(peers, /Ana .*, 2 devices/)
    // a colleague on Parley 0.1: a clear state, not a silent failure
    assert.match(peers, /Olga .*needs an update \(older Parley\)/)
    assert.doesNotMatch(peers, /Ana .*needs an update/)
    // only the first device links: the laptop says so in words
    const refused = await parley('ana2', 'link').then(() => '', (e: { stderr: string }) => e.stderr)
    assert.match(refused, /only the account's first device can link/)
    assert.match(await parley('ana1', 'devices', 'revoke', n.ana2.peerId.slice(-8)), /revoked; the account has 1 device\(s\) now/)
    assert.match(await parley('ana1', 'devices'), new RegExp(`✕ ${n.ana2.peerId} revoked`))
  })
})

describe('accounts through the relay', () => {
  let dir: string
  let relay: RelayServer
  const n: Record<'ana1' | 'ana2' | 'ben', ParleyNode> = {} as never

  before(async () => {
    dir = await tmpDir('parley-accounts-relay-')
    relay = new RelayServer({ dataDir: join(dir, 'relay'), listen: ['/ip4/127.0.0.1/tcp/0'] }, createLogger('relay', 'error'))
    await relay.start()
    const relayAddr = relay.addresses()[0] as string
    for (const k of ['ana1', 'ana2', 'ben'] as const) {
      // no LAN between them (no mDNS, no direct addresses): only the relay
      n[k] = loopbackNode(join(dir, k), { name: k === 'ben' ? 'Ben' : 'Ana', relay: relayAddr, messenger: { depositAfterMs: 200 }, relayClient: { mailboxPollMs: 300 } })
      await n[k].start()
      // Ana's second device has an invite of its own, as a remote worker's laptop would
      await relay.mailbox.admit(n[k].peerId, 'allow-list')
      // the reservation asked before the admission was refused: a fresh one
      await n[k].host.reconnectRelay()
    }
    await until(() => Object.values(n).every(x => x.relay.status().admitted === true && x.host.isConnected(relay.peerId)), 'all at the relay')
  })
  after(async () => {
    for (const node of Object.values(n)) await node?.stop()
    await relay?.stop()
    await removeDir(dir)
  })

  it('links a device through the relay\'s circuit, then Ben reaches both devices', async () => {
    const { code } = n.ana1.messenger.linking.createCode()
    let last = ''
    await until(async () => await n.ana2.messenger.linking.join(code).then(() => true, (e: ParleyError) => {
      if (e.code !== 'ERR_PEER_UNREACHABLE') throw e
      last = e.message
      return false
    }), 'link through the circuit', 20_000, 500).catch((err: Error) => { throw new Error(`${err.message}: ${last}`) })
    assert.equal(n.ana2.messenger.account, n.ana1.peerId)
    assert.equal(n.ana2.host.reach(n.ana1.peerId), 'relay')
    // the relay that admitted the first device is the account's home, in the record every device holds
    assert.deepEqual(n.ana2.messenger.accounts.ownState().home.map(h => h.relay), [relay.peerId])
    await connectVia(n.ben, n.ana1)
    await until(() => n.ben.messenger.accounts.devicesOf(n.ana1.peerId).includes(n.ana2.peerId), 'Ben knows Ana\'s second device')
    const m = await n.ben.messenger.sendMessage(n.ana1.peerId, 'through the relay')
    for (const d of [n.ana1, n.ana2]) await until(async () => (await d.messenger.history(n.ben.peerId)).some(x => x.id === m.id), 'on both devices', 20_000)
  })

  it('revoking a device drops its admission at the relay', async () => {
    assert.equal(relay.mailbox.isAdmitted(n.ana2.peerId), true)
    await n.ana1.messenger.accounts.change({ type: 'revoke', device: n.ana2.peerId })
    await until(() => !relay.mailbox.isAdmitted(n.ana2.peerId), 'the relay drops the revoked device')
  })
})

const V01 = fileURLToPath(new URL('../fixtures/v0.1-datadir', import.meta.url))
interface V01Expected { ana: string, ben: string, group: string, groupName: string, dm: string, dmTexts: string[], dmIds: string[], groupIds: string[] }

/** the node's own local API over 127.0.0.1, as the UI calls it */
async function call<T> (node: ParleyNode, method: string, path: string, body?: unknown): Promise<{ status: number, data: T }> {
  const token = new URLSearchParams((node.uiUrl as string).split('#')[1]).get('token') as string
  const res = await fetch(`http://127.0.0.1:${String(node.apiPort)}/v1${path}`, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body)
  })
  return { status: res.status, data: await res.json() as T }
}
async function post (node: ParleyNode, body: Record<string, unknown>): Promise<MessageView> {
  const r = await call<MessageView>(node, 'POST', '/messages', body)
  assert.equal(r.status, 201, JSON.stringify(r.data))
  return r.data
}
const shown = async (node: ParleyNode, peer: string): Promise<MessageView[]> =>
  (await call<MessageView[]>(node, 'GET', `/conversations/${encodeURIComponent(peer)}/messages`)).data

/** A connection through the relay's circuit (no direct address known). */
async function connectVia (a: ParleyNode, b: ParleyNode): Promise<void> {
  await until(async () => await a.messenger.sendTyping(b.peerId).then(() => a.host.isConnected(b.peerId), () => false) ||
    await a.host.dial(`${a.relay.status().addr ?? ''}/p2p-circuit/p2p/${b.peerId}`).then(() => true, () => false), 'circuit', 20_000, 300)
}
