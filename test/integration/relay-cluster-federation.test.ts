/**
 * Federation with a relay of several instances (issue 14): office A runs two
 * relay processes on one PostgreSQL database (a real server started for this
 * file), office B one relay on LevelDB. B is paired once, through the
 * instance Ana uses, and is told both instances. Ana (A, configured with both
 * instances) writes to Bo while B is down, so her mail waits in A's shared
 * federation queue; the instance that took her deposits is killed with
 * SIGKILL, she fails over to the other and writes more; B comes back and the
 * surviving instance forwards the whole queue (FOR UPDATE SKIP LOCKED:
 * whichever instance is up). No home is given by hand: Ana lists herself
 * for the other office (B's route to her), and Bo writes first, so office A
 * learns from his forwarded mail where replies go; that route is written
 * with the mail in the shared store, so whichever instance takes Ana's
 * deposits (before and after the kill) forwards them. B forwards Bo's
 * replies to office A while the instance it was paired through is still
 * dead. Both ways: lost = duplicated = reordered = 0, and the queues end empty.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { audit } from '../helpers/audit.js'
import { PgServer } from '../helpers/postgres.js'
import { RelayProc } from '../helpers/proc.js'
import { relayFiles } from '../../relay/src/config.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { FedPeerView } from '../../relay/src/federation/federation.js'

interface Info { peerId: string, addresses: string[] }

describe('federation with a relay of two instances on PostgreSQL', () => {
  let dir: string
  let server: PgServer
  const a: RelayProc[] = []
  const aInfo: Info[] = []
  let b: RelayProc
  let bInfo: Info
  const nodes: ParleyNode[] = []

  const info = (name: string): Info => JSON.parse(readFileSync(relayFiles(join(dir, name)).info, 'utf8'))
  const fedList = (r: RelayProc): FedPeerView[] => JSON.parse(r.admin('federation', 'list', '--json'))
  const fedConfig = (name: string): string => {
    const path = join(dir, `${name}.json`)
    writeFileSync(path, JSON.stringify({ federation: { allowed: true, name, tickMs: 200, retryMinMs: 200, retryMaxMs: 1000, directoryRefreshMs: 500 } }))
    return path
  }

  before(async () => {
    dir = await tmpDir('parley-clusterfed-')
    server = await PgServer.start()
    const url = await server.createDatabase('officea')
    const cfgA = fedConfig('office A')
    for (const name of ['a1', 'a2']) {
      const r = new RelayProc({ dataDir: join(dir, name), args: ['--listen', '/ip4/127.0.0.1/tcp/0', '--store', url, '--config', cfgA], logFile: join(dir, `${name}.log`) })
      await r.start()
      a.push(r)
      aInfo.push(info(name))
    }
    // office B is stopped and started again in the test: it listens where office A pinned it
    const cfgB = fedConfig('office B')
    const first = new RelayProc({ dataDir: join(dir, 'b'), args: ['--listen', '/ip4/127.0.0.1/tcp/0', '--config', cfgB], logFile: join(dir, 'b.log') })
    await first.start()
    const addr = info('b').addresses[0]!.replace(/\/p2p\/.*$/, '')
    await first.stop()
    b = new RelayProc({ dataDir: join(dir, 'b'), args: ['--listen', addr, '--config', cfgB], logFile: join(dir, 'b.log') })
    await b.start()
    bInfo = info('b')
  })
  after(async () => {
    for (const n of nodes) await n.stop().catch(() => {})
    for (const r of [...a, b]) await r?.stop().catch(() => {})
    await server?.destroy()
    await removeDir(dir)
  })

  let ana: ParleyNode
  let bo: ParleyNode
  /** the instance Ana uses first (killed later), and the other */
  let victim: number
  let survivor: number

  it('paired once, through the instance Ana uses: office B knows both instances, the other instance knows the pairing', async () => {
    const node = async (name: string, relay: string, invite: string): Promise<ParleyNode> => {
      const n = loopbackNode(join(dir, name), {
        name, relay, invite, host: { redialIntervalMs: 300 }, messenger: { depositAfterMs: 100 }, relayClient: { mailboxPollMs: 500 }
      })
      await n.start()
      nodes.push(n)
      await until(() => n.relay.status().admitted === true, `${name} admitted`, 20_000)
      return n
    }
    ana = await node('Ana', aInfo.map(i => i.addresses[0]!).join(','), a[0]!.admin('invite', 'create'))
    bo = await node('Bo', bInfo.addresses[0]!, b.admin('invite', 'create'))
    victim = aInfo.findIndex(i => i.peerId === ana.relay.status().peerId)
    assert.ok(victim >= 0)
    survivor = 1 - victim
    const token = a[victim]!.admin('federation', 'invite')
    assert.match(b.admin('federation', 'add', token), /paired with office A/)
    const atB = fedList(b)
    assert.equal(atB.length, 1)
    assert.equal(atB[0]!.peerId, aInfo[victim]!.peerId)
    assert.deepEqual(atB[0]!.instances, [aInfo[survivor]!.peerId], 'B was told the other instance')
    // the pairing is in the shared store: the other instance reads it within seconds, without a restart
    await until(() => fedList(a[survivor]!).some(p => p.peerId === bInfo.peerId), 'the other instance knows office B', 20_000, 250)
    // no home given by hand: Ana lists herself for the other offices, and Bo finds her in office A's directory
    await ana.relay.publish({ listed: true, name: 'Ana' })
    // a directory call can meet a relay connection being replaced under load ('stream closed'): the UI asks again, so does the test
    await until(async () => (await bo.relay.offices('').catch(() => [])).some(p => p.peerId === ana.peerId), 'Bo finds Ana', 30_000, 250)
  })

  it('kill -9 of the instance that took the deposits: the other forwards the queue; replies reach A through it; lost = duplicated = reordered = 0', async () => {
    const got = async (n: ParleyNode, from: ParleyNode): Promise<number> => (await n.messenger.history(from.peerId, { limit: 1000 })).filter(m => !m.outgoing).length
    // Bo (not listed) writes first: office A learns from his forwarded mail where replies to him go, on whichever
    // instance took it; in the shared store, so the instance that did not (before or after the kill) routes them too
    const toAna: string[] = []
    for (let i = 0; i < 5; i++) { const t = `Bo ${i}`; toAna.push(t); await bo.messenger.sendMessage(ana.peerId, t) }
    await until(async () => (await got(ana, bo)) >= 5, 'Ana has Bo\'s first 5', 30_000, 200)

    // office B is away: Ana's mail waits in A's queue (one queue in the shared database)
    await b.stop()
    const toBo: string[] = []
    const queued = async (r: RelayProc, n: number): Promise<void> => {
      await until(() => fedList(r).find(p => p.peerId === bInfo.peerId)?.queue.depth === n, `${n} queued for B`, 30_000, 200)
    }
    for (let i = 0; i < 30; i++) { const t = `Ana ${i}`; toBo.push(t); await ana.messenger.sendMessage(bo.peerId, t) }
    await queued(a[victim]!, 30)
    await a[victim]!.kill9()
    for (let i = 30; i < 60; i++) { const t = `Ana ${i}`; toBo.push(t); await ana.messenger.sendMessage(bo.peerId, t) }
    await until(() => ana.relay.status().peerId === aInfo[survivor]!.peerId, 'Ana failed over to the other instance', 20_000)
    await queued(a[survivor]!, 60)

    // B is back: only the surviving instance is up to forward the queue
    await b.start()
    await until(async () => (await got(bo, ana)) >= 60, 'Bo has all 60', 60_000, 200)
    const r1 = audit(toBo, await bo.messenger.history(ana.peerId, { limit: 1000 }), ana.peerId)
    assert.deepEqual([r1.lost, r1.duplicated, r1.orderViolations], [0, 0, 0], 'Ana -> Bo')
    assert.equal(fedList(a[survivor]!).find(p => p.peerId === bInfo.peerId)?.counts.forwarded, 60, 'the surviving instance forwarded all of it')

    // replies: B forwards to office A while the instance it was paired through is still dead
    for (let i = 5; i < 35; i++) { const t = `Bo ${i}`; toAna.push(t); await bo.messenger.sendMessage(ana.peerId, t) }
    await until(async () => (await got(ana, bo)) >= 35, 'Ana has all 35', 60_000, 200)
    const r2 = audit(toAna, await ana.messenger.history(bo.peerId, { limit: 1000 }), bo.peerId)
    assert.deepEqual([r2.lost, r2.duplicated, r2.orderViolations], [0, 0, 0], 'Bo -> Ana')
    for (const r of [a[survivor]!, b]) await until(() => fedList(r).every(p => p.queue.depth === 0), 'queues empty', 30_000, 250)
  })
})
