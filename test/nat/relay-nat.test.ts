/**
 * The relay across real NAT: office LAN (2 hosts, mDNS) behind a masquerading
 * router, the relay on the "internet" side, a remote user behind another NAT.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { NatLab, canUseNamespaces } from '../helpers/netns.js'
import { NodeProc, RelayProc } from '../helpers/proc.js'
import { audit } from '../helpers/audit.js'
import { filesContaining, removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { IdentityView, MessageView } from '../../node/src/api/contract.js'
import type { PeerView } from '../../node/src/messaging/messenger.js'
import type { RelayState } from '../../node/src/messaging/relay-client.js'

describe('relay across NAT (network namespaces, iptables MASQUERADE)', () => {
  const lab = new NatLab('pnat')
  let dir: string
  let relay: RelayProc
  let relayAddr: string
  let o1: NodeProc, o2: NodeProc, r1: NodeProc, stranger: NodeProc
  const id: Record<string, string> = {}
  let failed = false
  const guard = async (fn: () => Promise<void>): Promise<void> => { try { await fn() } catch (e) { failed = true; throw e } }

  const history = async (n: NodeProc, peer: string): Promise<MessageView[]> => await n.api!.call<MessageView[]>('GET', `/conversations/${peer}/messages?limit=100000`)
  const relayState = async (n: NodeProc): Promise<RelayState> => (await n.api!.call<{ relay: RelayState }>('GET', '/settings')).relay
  const send = async (n: NodeProc, to: string, text: string, wait?: string): Promise<MessageView> => await n.api!.call<MessageView>('POST', '/messages', { to, text, ...(wait !== undefined ? { wait, timeoutMs: 30_000 } : {}) })

  before(async () => {
    // a failed setup keeps its logs too (after() deletes them only when nothing failed)
    try {
      const why = canUseNamespaces()
      if (why !== null) throw new Error(why)
      dir = await tmpDir('parley-nat-')
      lab.up()
      relay = new RelayProc({ dataDir: join(dir, 'relay'), netns: lab.ns.relay, args: ['--listen', '/ip4/0.0.0.0/tcp/4100', '--listen', '/ip4/0.0.0.0/tcp/4101/ws'], logFile: join(dir, 'relay.log') })
      await relay.start()
      const stats = JSON.parse(relay.admin('stats', '--json')) as { peerId: string }
      relayAddr = `/ip4/${lab.ip.relay}/tcp/4100/p2p/${stats.peerId}`
      const invite = relay.admin('invite', 'create', '--uses', '3')
      const node = (name: string, ns: string, extra: string[] = []): NodeProc => new NodeProc({ dataDir: join(dir, name), name, netns: ns, logFile: join(dir, `${name}.log`), args: ['--listen', '/ip4/0.0.0.0/tcp/4001', '--relay', relayAddr, ...extra] })
      o1 = node('Olga', lab.ns.o1, ['--invite', invite])
      o2 = node('Omar', lab.ns.o2, ['--invite', invite])
      r1 = node('Rita', lab.ns.r1, ['--invite', invite])
      stranger = new NodeProc({ dataDir: join(dir, 'stranger'), name: 'Stranger', netns: lab.ns.r1, logFile: join(dir, 'stranger.log'), args: ['--listen', '/ip4/0.0.0.0/tcp/4002', '--no-mdns', '--relay', relayAddr] })
      await Promise.all([o1, o2, r1, stranger].map(async n => { await n.start() }))
      for (const [k, n] of Object.entries({ o1, o2, r1, stranger })) id[k] = (await n.api!.call<IdentityView>('GET', '/identity')).peerId
    } catch (e) { failed = true; throw e }
  })

  after(async () => {
    await Promise.all([o1, o2, r1, stranger].map(async n => { await n?.stop() }))
    await relay?.stop()
    lab.down()
    if (failed || process.env.KEEP_LOGS === '1') console.error(`NAT test logs kept in ${dir}`)
    else await removeDir(dir)
  })

  it('the NATs block inbound connections, outbound works', async () => guard(async () => {
    assert.equal(lab.canConnect(lab.ns.o1, lab.ip.relay, 4100), true, 'office reaches the relay')
    assert.equal(lab.canConnect(lab.ns.r1, lab.ip.relay, 4100), true, 'remote reaches the relay')
    assert.equal(lab.canConnect(lab.ns.r1, lab.ip.o1, 4001), false, 'remote cannot reach the office directly')
    assert.equal(lab.canConnect(lab.ns.relay, lab.ip.r1, 4001), false, 'nobody reaches the remote user directly')
    // and it is the NAT that blocks: without its DROP rule the same connections go through
    lab.inboundDrop(false)
    try {
      assert.equal(lab.canConnect(lab.ns.relay, lab.ip.o1, 4001), true, 'routable when the NAT lets it in')
    } finally {
      lab.inboundDrop(true)
    }
    assert.equal(lab.canConnect(lab.ns.relay, lab.ip.o1, 4001), false, 'blocked again')
  }))

  it('admits invited users and refuses the others with a clear error', async () => guard(async () => {
    for (const n of [o1, o2, r1]) await until(async () => (await relayState(n)).admitted === true, `${n.init.name} admitted`, 30_000, 200)
    await until(async () => (await relayState(stranger)).admitted === false, 'stranger refused', 30_000, 200)
    assert.equal((await relayState(stranger)).lastError?.code, 'ERR_NOT_ADMITTED')
    const m = await send(stranger, id.o1!, 'let me in')
    await new Promise(resolve => setTimeout(resolve, 3000))
    assert.equal((await history(stranger, id.o1!)).find(x => x.id === m.id)?.state, 'queued', 'nothing left the stranger')
    const users = JSON.parse(relay.admin('users', '--json')) as Array<{ peerId: string }>
    assert.deepEqual(users.map(u => u.peerId).sort(), [id.o1, id.o2, id.r1].sort())
  }))

  it('the office finds itself by mDNS behind the NAT', async () => guard(async () => {
    await until(async () => (await o1.api!.call<PeerView[]>('GET', '/peers')).some(p => p.peerId === id.o2 && p.online && p.reach === 'lan'), 'o1 sees o2 on the LAN', 20_000, 200)
  }))

  it('remote and office users chat both ways through the relay', async () => guard(async () => {
    const a = await send(r1, id.o1!, 'hi office, it is Rita from home', 'delivered')
    assert.equal(a.state, 'delivered')
    const b = await send(o1, id.r1!, 'hi Rita', 'delivered')
    assert.equal(b.state, 'delivered')
    const seenAtOffice = await o1.api!.call<PeerView[]>('GET', '/peers')
    assert.equal(seenAtOffice.find(p => p.peerId === id.r1)?.reach, 'relay')
    assert.deepEqual((await history(r1, id.o1!)).map(m => m.text), ['hi office, it is Rita from home', 'hi Rita'])
  }))

  it('a message to an offline user is delivered when they return; the relay keeps ciphertext only', async () => guard(async () => {
    await o2.stop()
    const canary = `canary-${Math.random().toString(36).slice(2)}-do-not-store`
    const sent: string[] = []
    for (let i = 0; i < 50; i++) { const text = i === 25 ? canary : `offline ${i}`; await send(r1, id.o2!, text); sent.push(text) }
    await until(async () => (await history(r1, id.o2!)).every(m => m.state === 'sent'), 'all deposited at the relay', 30_000, 200)
    assert.deepEqual(await filesContaining(join(dir, 'relay'), canary), [], 'relay store has no plaintext')
    assert.ok(!relay.logText().includes(canary), 'relay log has no plaintext')
    const back = Date.now()
    await o2.start()
    await until(async () => (await history(o2, id.r1!)).length >= sent.length, 'mail arrives', 30_000, 100)
    const r = audit(sent, await history(o2, id.r1!), id.r1!)
    assert.deepEqual([r.lost, r.duplicated, r.orderViolations], [0, 0, 0])
    console.error(`# offline delivery of ${sent.length} messages after return: ${Date.now() - back} ms (incl. node start)`)
  }))

  it('relay killed with -9 mid-traffic and restarted loses nothing it acked', async () => guard(async () => {
    await o2.stop()
    const sent: string[] = []
    for (let i = 0; i < 100; i++) {
      if (i === 30) await relay.kill9()
      if (i === 70) await relay.start()
      const text = `crash ${i}`
      await send(r1, id.o2!, text)
      sent.push(text)
    }
    // everything the relay acknowledged before the crash is still there; the rest is deposited after it returns
    await until(async () => (await history(r1, id.o2!)).filter(m => m.text.startsWith('crash ')).every(m => m.state !== 'queued'), 'all deposited after restart', 60_000, 250)
    await o2.start()
    await until(async () => (await history(o2, id.r1!)).filter(m => m.text.startsWith('crash ')).length >= sent.length, 'all arrive', 60_000, 200)
    const r = audit(sent, await history(o2, id.r1!), id.r1!)
    console.error(`# relay kill -9 audit: ${JSON.stringify(r)}`)
    assert.deepEqual([r.lost, r.duplicated, r.orderViolations], [0, 0, 0])
  }))
})
