/**
 * Federation on loopback, in process (port 0, no namespace, no lock): two
 * offices, each with its own relay and users; pairing with the CLI, a refused
 * unpaired relay, messages A -> B and B -> A with the recipient offline and
 * then online, the relay-to-relay link down and up, the directory, and a
 * canary that neither relay's data dir nor log holds.
 * The kill -9 case is test/integration/federation-crash.test.ts.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { filesContaining, loopbackNode, nodeApi, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { RELAY_BIN } from '../helpers/proc.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'
import { RpcChannel, remoteCode } from '../../core/rpc/channel.js'
import { FED_METHODS, FED_PROTOCOL, type FedMethod } from '../../relay/src/federation/protocol.js'
import type { ParleyNode } from '../../node/src/parley-node.js'

const run = promisify(execFile)
/** the node's local API, as the UI calls it */
const api = nodeApi
const cli = async (dataDir: string, ...args: string[]): Promise<string> =>
  (await run(process.execPath, [RELAY_BIN, ...args, '--data', dataDir], { encoding: 'utf8' })).stdout.trim()

describe('federation: two offices on loopback', () => {
  let dir: string
  const relays: Record<string, RelayServer> = {}
  const nodes: Record<string, ParleyNode> = {}
  const logs: string[] = []
  const fedInit = (name: string): Record<string, unknown> => ({ allowed: true, name, tickMs: 100, retryMinMs: 100, retryMaxMs: 600, directoryRefreshMs: 500 })

  const startRelay = async (name: string, federation: Record<string, unknown> = fedInit(name)): Promise<RelayServer> => {
    const r = new RelayServer({ dataDir: join(dir, name), listen: ['/ip4/127.0.0.1/tcp/0'], federation, admin: { port: null } },
      createLogger(name, 'info', (l) => { logs.push(l) }))
    await r.start()
    relays[name] = r
    return r
  }
  const startNode = async (name: string, relay: RelayServer, invite?: string): Promise<ParleyNode> => {
    const n = loopbackNode(join(dir, name), {
      name, relay: relay.addresses()[0], invite, messenger: { depositAfterMs: 100 }, relayClient: { mailboxPollMs: 300 }
    })
    await n.start()
    nodes[name] = n
    if (invite !== undefined) await until(() => n.relay.status().admitted === true, `${name} admitted`)
    return n
  }

  before(async () => {
    dir = await tmpDir('parley-fed-')
    await startRelay('officeA')
    await startRelay('officeB')
  })
  after(async () => {
    for (const n of Object.values(nodes)) await n.stop().catch(() => {})
    for (const r of Object.values(relays)) await r.stop().catch(() => {})
    await removeDir(dir)
  })

  it('refuses an unpaired relay with a clear error, and a wrong or used pairing token', async () => {
    const a = relays.officeA!
    const b = relays.officeB!
    // officeB speaks the federation protocol to officeA without being paired
    const stream = await (b as unknown as { host: { openStream: (p: string, a: string[], pr: string, s: AbortSignal) => Promise<never> } })
      .host.openStream(a.peerId, a.addresses(), FED_PROTOCOL, AbortSignal.timeout(5000))
    const ch = new RpcChannel<FedMethod>(stream, undefined, createLogger('t', 'error'), { methods: FED_METHODS })
    await assert.rejects(ch.call('forward', { batch: '1-1', items: [] }), (err) => { assert.equal(remoteCode(err), 'ERR_FED_NOT_PAIRED'); return true })
    await assert.rejects(ch.call('directory', {}), (err) => {
      assert.equal(remoteCode(err), 'ERR_FED_NOT_PAIRED')
      assert.match((err as Error).message, /not paired with this relay.*federation add/)
      return true
    })
    await assert.rejects(ch.call('pair', { secret: 'A'.repeat(43), name: 'x', addrs: [] }), (err) => { assert.equal(remoteCode(err), 'ERR_FED_PAIRING'); return true })
    await ch.close()
    assert.ok(logs.some(l => l.includes('refused an unpaired relay')))
    // a token that is not one
    await assert.rejects(b.federation.add('hello'), { code: 'ERR_FED_PAIRING' })
  })

  it('pairs with the CLI: invite on A, add on B; both pin each other; the token is one-time', async () => {
    const a = relays.officeA!
    const b = relays.officeB!
    const token = await cli(join(dir, 'officeA'), 'federation', 'invite', '--hours', '1')
    assert.match(token, /^parley-fed:/)
    const added = await cli(join(dir, 'officeB'), 'federation', 'add', token)
    assert.match(added, new RegExp(`paired with officeA \\(${a.peerId}\\)`))
    const listA = await a.federation.list()
    const listB = await b.federation.list()
    assert.deepEqual(listA.map(p => [p.peerId, p.name]), [[b.peerId, 'officeB']])
    assert.deepEqual(listB.map(p => [p.peerId, p.name]), [[a.peerId, 'officeA']])
    assert.equal(listA[0]!.queue.depth, 0)
    // used: a third relay cannot pair with the same token
    const c = await startRelay('officeC')
    await assert.rejects(c.federation.add(token), (err) => { assert.equal(remoteCode(err), 'ERR_FED_PAIRING'); assert.match((err as Error).message, /already used/); return true })
    assert.equal((await a.federation.list()).length, 1)
    await c.stop()
    delete relays.officeC
    const text = await cli(join(dir, 'officeA'), 'federation', 'list')
    assert.match(text, new RegExp(`^${b.peerId} officeB (up|idle), queue 0`))
    const json = JSON.parse(await cli(join(dir, 'officeB'), 'federation', 'list', '--json')) as Array<{ peerId: string }>
    assert.deepEqual(json.map(p => p.peerId), [a.peerId])
  })

  it('A -> B and B -> A with the recipient offline, then online; the relays hold ciphertext only', async () => {
    const a = relays.officeA!
    const b = relays.officeB!
    const ana = await startNode('Ana', a, (await a.mailbox.createInvite()).token)
    let bo = await startNode('Bo', b, (await b.mailbox.createInvite()).token)
    const boId = bo.peerId
    await bo.stop()
    // Ana found Bo in office B (a directory entry or a contact field names his home relay)
    ana.relay.setHome(boId, b.peerId)
    const canary = `canary-${Math.random().toString(36).slice(2)}-plaintext`
    const sent = []
    for (let i = 0; i < 30; i++) sent.push(await ana.messenger.sendMessage(boId, i === 11 ? canary : `to office B ${i}`))
    await Promise.all(sent.map(async m => await ana.messenger.waitForState(m.id, 'sent', { signal: AbortSignal.timeout(20_000) })))
    // forwarded: relay B holds them for Bo, relay A's queue is empty
    await until(async () => (await b.stats()).mailbox.messages === 30, 'all 30 in Bo\'s mailbox at relay B', 15_000)
    await until(async () => (await a.federation.list())[0]?.queue.depth === 0, 'queue A->B drained')
    bo = await startNode('Bo', b)
    await until(async () => (await bo.messenger.history(ana.peerId)).length === 30, 'Bo got all 30', 20_000)
    assert.deepEqual((await bo.messenger.history(ana.peerId)).map(m => m.text), sent.map(m => m.text), 'in order, none lost, none twice')
    await until(async () => (await b.stats()).mailbox.messages === 0, 'Bo acked his mailbox')
    // and back: relay B learned from the forwarded mail that Ana's home is relay A; Ana is offline
    await ana.stop()
    const replies = []
    for (let i = 0; i < 10; i++) replies.push(await bo.messenger.sendMessage(ana.peerId, `to office A ${i}`))
    await Promise.all(replies.map(async m => await bo.messenger.waitForState(m.id, 'sent', { signal: AbortSignal.timeout(20_000) })))
    const anaBack = await startNode('Ana', a)
    const want = [...sent.map(m => m.text), ...replies.map(m => m.text)]
    await until(async () => (await anaBack.messenger.history(boId)).length === 40, 'Ana got the 10 replies', 20_000)
    assert.deepEqual((await anaBack.messenger.history(boId)).map(m => m.text), want)
    for (const r of ['officeA', 'officeB']) assert.deepEqual(await filesContaining(join(dir, r), canary), [], `no plaintext in ${r}'s data dir`)
    assert.ok(!logs.join('\n').includes(canary), 'no plaintext in the relays\' logs')
    const [toB] = await a.federation.list()
    assert.ok(toB!.counts.forwarded >= 30)
  })

  it('the relay-to-relay link down and up: A queues while B is away and delivers in order on return', async () => {
    const a = relays.officeA!
    const ana = nodes.Ana!
    const bo = nodes.Bo!
    await relays.officeB!.stop()
    const sent = []
    for (let i = 0; i < 20; i++) sent.push(await ana.messenger.sendMessage(bo.peerId, `while B is down ${i}`))
    await Promise.all(sent.map(async m => await ana.messenger.waitForState(m.id, 'sent', { signal: AbortSignal.timeout(20_000) })))
    const down = await until(async () => { const [p] = await a.federation.list(); return p?.state === 'down' && p.queue.depth === 20 ? p : undefined }, 'A queues for B', 15_000)
    assert.ok(down.lastError !== null)
    // the queue is in the metrics, per paired relay
    const metrics = await a.metrics.text()
    assert.match(metrics, new RegExp(`parley_relay_federation_queue_depth\\{peer="${relays.officeB!.peerId}"\\} 20`))
    assert.match(metrics, new RegExp(`parley_relay_federation_up\\{peer="${relays.officeB!.peerId}"\\} 0`))
    assert.match(metrics, /parley_relay_federation_queue_oldest_age_seconds\{peer="[^"]+"\} [0-9.]+/)
    // B back on the same data dir (so the same peer ID) and the address A pinned at pairing
    const pinned = (await a.federation.list())[0]!.addrs[0]!.replace(/\/p2p\/.*$/, '')
    const b2 = new RelayServer({ dataDir: join(dir, 'officeB'), listen: [pinned], federation: fedInit('officeB'), admin: { port: null } },
      createLogger('officeB', 'info', (l) => { logs.push(l) }))
    await b2.start()
    relays.officeB = b2
    await until(async () => (await a.federation.list())[0]?.queue.depth === 0, 'A drained its queue to B', 20_000)
    const have = async (): Promise<string[]> => (await bo.messenger.history(ana.peerId)).map(m => m.text).filter(t => t.startsWith('while B is down'))
    await until(async () => (await have()).length === 20, 'Bo got the 20', 20_000)
    assert.deepEqual(await have(), sent.map(m => m.text))
  })

  it('directory: a user who publishes is found by the other office and can be messaged from there', async () => {
    const a = relays.officeA!
    const b = relays.officeB!
    const ana = nodes.Ana!
    const cy = await startNode('Cy', b, (await b.mailbox.createInvite()).token)
    // not listed until Cy chooses it (opt-in)
    await a.federation.refreshDirectories()
    assert.equal((await ana.relay.offices('Cy')).length, 0)
    // through the local API, as the UI's "Other offices" does: Cy lists himself, Ana searches and writes
    await cy.messenger.setName('Cy Chen')
    assert.deepEqual(await api(cy, 'PUT', '/offices/listing', { listed: true, department: 'Sales' }), { listed: true })
    // listed once relay B holds Cy's signed record naming it as home (sent right after admission): relay A checks that claim
    type Found = Array<{ peerId: string, name: string, department: string, office: string, relay: string }>
    const found = await until(async () => {
      await a.federation.refreshDirectories()
      const people = await api(ana, 'GET', '/offices?q=sales') as Found
      return people.length > 0 ? people : undefined
    }, 'Cy listed at A', 20_000)
    assert.deepEqual(found.map(p => [p.peerId, p.name, p.department, p.office, p.relay]), [[cy.peerId, 'Cy Chen', 'Sales', 'officeB', b.peerId]])
    assert.deepEqual(await api(ana, 'GET', '/offices?q=nobody-like-this'), [])
    // messaged without any home given by hand: the relay knows it from the directory
    const m = await api(ana, 'POST', '/messages', { to: cy.peerId, text: 'hello from office A' }) as { id: string }
    await until(async () => (await cy.messenger.history(ana.peerId)).some(x => x.text === 'hello from office A'), 'Cy got it', 20_000)
    assert.ok(m.id)
    // a per-peer policy of "none" hides B's users from A
    await b.federation.setPolicy(a.peerId, { directory: 'none' })
    await a.federation.refreshDirectories()
    assert.equal((await ana.relay.offices('')).length, 0)
    // withdrawing works too
    await b.federation.setPolicy(a.peerId, { directory: 'listed' })
    await api(cy, 'PUT', '/offices/listing', { listed: false })
    await a.federation.refreshDirectories()
    assert.equal((await ana.relay.offices('')).length, 0)
  })

  it('federationAllowed off: no invites, and the other relay is refused', async () => {
    const a = relays.officeA!
    await a.admin.service.setPolicy('test', { set: { federationAllowed: false } })
    await assert.rejects(a.federation.invite(), { code: 'ERR_FEDERATION_OFF' })
    await assert.rejects(relays.officeB!.federation.refreshDirectories().then(async () => {
      const stream = await (relays.officeB as unknown as { host: { openStream: (p: string, a: string[], pr: string, s: AbortSignal) => Promise<never> } })
        .host.openStream(a.peerId, a.addresses(), FED_PROTOCOL, AbortSignal.timeout(5000))
      const ch = new RpcChannel<FedMethod>(stream, undefined, createLogger('t', 'error'), { methods: FED_METHODS })
      try { await ch.call('directory', {}) } finally { await ch.close() }
    }), (err) => { assert.equal(remoteCode(err), 'ERR_FEDERATION_OFF'); return true })
    await a.admin.service.setPolicy('test', { set: { federationAllowed: true } })
  })

  it('unpairing with `federation remove`: both sides can drop it; the queue goes with it', async () => {
    const a = relays.officeA!
    const b = relays.officeB!
    const out = await cli(join(dir, 'officeA'), 'federation', 'remove', b.peerId.slice(0, 12))
    assert.match(out, new RegExp(`unpaired ${b.peerId}`))
    assert.equal((await a.federation.list()).length, 0)
    // B still lists A until its admin removes it; A now refuses B
    await until(async () => (await b.federation.list())[0]?.state === 'down', 'B sees A refuse it', 15_000)
  })
})
