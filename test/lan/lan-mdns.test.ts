/**
 * Three hosts in network namespaces on one bridge, real mDNS, real processes.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { NetnsLan, canUseNamespaces } from '../helpers/netns.js'
import { NodeProc } from '../helpers/proc.js'
import { audit } from '../helpers/audit.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { IdentityView, MessageView } from '../../node/src/api/contract.js'
import type { PeerView } from '../../node/src/messaging/messenger.js'

const LISTEN = ['--listen', '/ip4/0.0.0.0/tcp/4001']

/** Timestamp of the first JSON log line `msg` about `peerId` in a node's log. */
function logAt (n: NodeProc, msg: string, peerId: string): number {
  for (const line of n.logText().split('\n')) {
    if (!line.startsWith('{')) continue
    const o = JSON.parse(line) as { msg?: string, peerId?: string, at?: number }
    if (o.msg === msg && o.peerId === peerId && typeof o.at === 'number') return o.at
  }
  throw new Error(`no "${msg}" for ${peerId} in ${n.init.logFile}`)
}

describe('LAN: 3 hosts in namespaces with real mDNS', () => {
  const lan = new NetnsLan('plan', 3, '10.231.7')
  let dir: string
  let nodes: NodeProc[] = []
  const ids: string[] = []
  let failed = false

  before(async () => {
    // a failed setup keeps its logs too (after() deletes them only when nothing failed)
    try {
      const why = canUseNamespaces()
      if (why !== null) throw new Error(why)
      dir = await tmpDir('parley-lan-')
      lan.up()
      nodes = lan.hosts.map((h, i) => new NodeProc({ dataDir: join(dir, h.name), name: ['Ana', 'Ben', 'Cleo'][i] as string, netns: h.name, args: LISTEN, logFile: join(dir, `${h.name}.log`) }))
      await Promise.all(nodes.slice(0, 2).map(async n => { await n.start() }))
      for (const n of nodes.slice(0, 2)) ids.push((await n.api!.call<IdentityView>('GET', '/identity')).peerId)
    } catch (e) { failed = true; throw e }
  })

  after(async () => {
    await Promise.all(nodes.map(async n => { await n.stop() }))
    lan.down()
    if (failed || process.env.KEEP_LOGS === '1') console.error(`LAN test logs kept in ${dir}`)
    else await removeDir(dir)
  })

  const online = async (n: NodeProc): Promise<PeerView[]> => (await n.api!.call<PeerView[]>('GET', '/peers')).filter(p => p.online)
  const history = async (n: NodeProc, peer: string): Promise<MessageView[]> => await n.api!.call<MessageView[]>('GET', `/conversations/${peer}/messages?limit=100000`)

  it('discovers peers by mDNS: online and named from discovery records, no connection yet', async (t) => {
    try {
      await until(async () => (await online(nodes[0]!)).length === 1, 'Ana and Ben connected', 20_000)
      const third = nodes[2]!
      await third.start()
      ids.push((await third.api!.call<IdentityView>('GET', '/identity')).peerId)
      for (const n of nodes) await until(async () => (await online(n)).length === 2, 'everyone sees two peers online', 20_000)
      // from the third host's libp2p start to mDNS discovery of it and by it, read off the nodes' own logs
      const started = logAt(third, 'host started', ids[2]!)
      const discovered = Math.max(...nodes.slice(0, 2).map(n => logAt(n, 'peer discovered', ids[2]!)), logAt(third, 'peer discovered', ids[0]!), logAt(third, 'peer discovered', ids[1]!))
      t.diagnostic(`mDNS discovery both ways done ${discovered - started} ms after the third host started`)
      assert.ok(discovered >= started)
      // presence comes from discovery: nobody dialled anybody (connections open on demand)
      for (const n of nodes) assert.equal((await status(n)).connections, 0, `${n.init.name}: no connection before a message`)
      const named = await until(async () => { const p = await n0Peers(); return p.every(x => x.name !== null) ? p : undefined }, 'profiles', 10_000)
      assert.deepEqual(named.map(p => p.name).sort(), ['Ben', 'Cleo'])
      // announced addresses never include loopback
      for (const n of nodes) {
        const me = await n.api!.call<IdentityView>('GET', '/identity')
        assert.ok(me.addresses.length > 0)
        assert.ok(me.addresses.every(a => !a.includes('/127.0.0.1/')), `no loopback in ${me.addresses.join(' ')}`)
      }
    } catch (e) { failed = true; throw e }
  })
  const n0Peers = async (): Promise<PeerView[]> => await nodes[0]!.api!.call<PeerView[]>('GET', '/peers')
  const status = async (n: NodeProc): Promise<{ connections: number, connectionList: unknown[] }> => await n.api!.call<{ connections: number, connectionList: unknown[] }>('GET', '/status')

  it('chats both ways between every pair, over one connection per pair', async () => {
    try {
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 3; j++) {
          if (i === j) continue
          const m = await nodes[i]!.api!.call<MessageView>('POST', '/messages', { to: ids[j], text: `from ${i} to ${j}`, wait: 'delivered' })
          assert.equal(m.state, 'delivered')
        }
      }
      for (let j = 0; j < 3; j++) {
        for (let i = 0; i < 3; i++) {
          if (i === j) continue
          const h = await history(nodes[j]!, ids[i]!)
          assert.ok(h.some(m => m.text === `from ${i} to ${j}` && m.author === ids[i]), `node ${j} shows the message from ${i}`)
        }
      }
      // dialled on demand, both ways: after settling (a duplicate closes once quiet), one connection per pair
      for (const n of nodes) await until(async () => (await status(n)).connections === 2, `${n.init.name}: one connection per pair`, 15_000)
      await new Promise(resolve => setTimeout(resolve, 2000))
      for (const n of nodes) {
        const st = await status(n)
        assert.equal(st.connections, 2, `${n.init.name}: ${JSON.stringify(st.connectionList)}`)
      }
    } catch (e) { failed = true; throw e }
  })

  it('kill -9 and restart: queued and incoming messages arrive exactly once, in order', async (t) => {
    try {
      const [ana, ben, cleo] = nodes as [NodeProc, NodeProc, NodeProc]
      const [idA, idB, idC] = ids as [string, string, string]
      const fromAna: string[] = []
      const fromBen: string[] = []
      const fromCleo: string[] = []
      const send = async (n: NodeProc, to: string, text: string, log: string[]): Promise<void> => {
        await n.api!.call('POST', '/messages', { to, text })
        log.push(text) // acknowledged by the API: stored durably at the sender
      }
      // Ben sends a burst and Ana sends to Ben at the same time; Ben dies right after its last API ack
      const anaLoop = (async () => { for (let i = 0; i < 40; i++) await send(ana, idB, `ana-${i}`, fromAna) })()
      for (let i = 0; i < 60; i++) await send(ben, idA, `ben-${i}`, fromBen)
      await ben.kill9()
      await anaLoop
      // while Ben is down: more from Ana, and from Cleo
      for (let i = 40; i < 80; i++) await send(ana, idB, `ana-${i}`, fromAna)
      for (let i = 0; i < 30; i++) await send(cleo, idB, `cleo-${i}`, fromCleo)
      const anaQueued = (await history(ana, idB)).filter(m => m.outgoing && m.state === 'queued').length
      t.diagnostic(`while Ben was down: ${anaQueued} of Ana's messages queued`)
      assert.ok(anaQueued >= 40, 'messages to a dead peer stay queued')
      await ben.start()
      for (let i = 80; i < 100; i++) await send(ana, idB, `ana-${i}`, fromAna)
      await until(async () => (await history(ben, idA)).filter(m => m.author === idA && m.text.startsWith('ana-')).length >= fromAna.length, 'Ana\'s messages at Ben', 60_000, 200)
      await until(async () => (await history(ben, idC)).filter(m => m.author === idC && m.text.startsWith('cleo-')).length >= fromCleo.length, 'Cleo\'s messages at Ben', 60_000, 200)
      await until(async () => (await history(ana, idB)).filter(m => m.author === idB && m.text.startsWith('ben-')).length >= fromBen.length, 'Ben\'s messages at Ana', 60_000, 200)
      // and every sender sees them delivered (acks survived too)
      await until(async () => (await history(ana, idB)).every(m => !m.outgoing || m.state !== 'queued'), 'Ana\'s outbox to Ben empty', 30_000, 200)
      await until(async () => (await history(ben, idA)).every(m => !m.outgoing || m.state !== 'queued'), 'Ben\'s outbox to Ana empty', 30_000, 200)
      const results = {
        anaToBen: audit(fromAna, await history(ben, idA), idA),
        cleoToBen: audit(fromCleo, await history(ben, idC), idC),
        benToAna: audit(fromBen, await history(ana, idB), idB)
      }
      t.diagnostic(`kill -9 audit: ${JSON.stringify(results)}`)
      for (const [k, r] of Object.entries(results)) {
        assert.equal(r.lost, 0, `${k}: lost`)
        assert.equal(r.duplicated, 0, `${k}: duplicated`)
        assert.equal(r.orderViolations, 0, `${k}: order violations`)
      }
      // both sides show the same conversation in the same order
      assert.deepEqual((await history(ana, idB)).map(m => m.id), (await history(ben, idA)).map(m => m.id))
    } catch (e) { failed = true; throw e }
  })
})
