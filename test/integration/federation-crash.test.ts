/**
 * Federation under kill -9: two office relays as processes on loopback
 * (port 0 at first, then restarted on the same address, as an office relay
 * would be), paired with the CLI; Ana (office A) and Bo (office B) write to
 * each other while relay A and relay B are killed with SIGKILL at random
 * moments, 12 kills in all, alternating. Every message arrives once, in
 * order: lost = duplicated = reordered = 0; the queues end empty; the
 * canary is in neither relay's data dir nor log.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { filesContaining, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { RelayProc } from '../helpers/proc.js'
import { relayFiles } from '../../relay/src/config.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { StoredMessage } from '../../node/src/store/types.js'
import type { FedPeerView } from '../../relay/src/federation/federation.js'

const PER_SIDE = 120
const KILLS = 12

describe('federation: relays killed with SIGKILL mid-queue', () => {
  let dir: string
  const relays: Record<'A' | 'B', RelayProc> = {} as never
  const info: Record<string, { peerId: string, addresses: string[] }> = {}
  const nodes: ParleyNode[] = []

  const relayInfo = (name: string): { peerId: string, addresses: string[] } => JSON.parse(readFileSync(relayFiles(join(dir, name)).info, 'utf8'))

  before(async () => {
    dir = await tmpDir('parley-fedcrash-')
    for (const name of ['A', 'B'] as const) {
      const config = join(dir, `${name}.json`)
      writeFileSync(config, JSON.stringify({ federation: { allowed: true, name: `office ${name}`, tickMs: 200, retryMinMs: 200, retryMaxMs: 1500 } }))
      const r = new RelayProc({ dataDir: join(dir, name), args: ['--listen', '/ip4/127.0.0.1/tcp/0', '--config', config], logFile: join(dir, `${name}.log`) })
      await r.start()
      info[name] = relayInfo(name)
      // restarts listen where the other office pinned this relay
      const addr = info[name].addresses[0]!.replace(/\/p2p\/.*$/, '')
      await r.stop()
      relays[name] = new RelayProc({ dataDir: join(dir, name), args: ['--listen', addr, '--config', config], logFile: join(dir, `${name}.log`) })
      await relays[name].start()
    }
  })
  after(async () => {
    for (const n of nodes) await n.stop().catch(() => {})
    for (const r of Object.values(relays)) await r.stop().catch(() => {})
    await removeDir(dir)
  })

  it(`${KILLS} kills of both relays while they forward: lost = duplicated = reordered = 0`, async () => {
    const token = relays.A.admin('federation', 'invite')
    assert.match(relays.B.admin('federation', 'add', token), /paired with office A/)
    const node = async (name: string, r: 'A' | 'B'): Promise<ParleyNode> => {
      const n = loopbackNode(join(dir, name), {
        name, relay: info[r]!.addresses[0], invite: relays[r].admin('invite', 'create'),
        host: { redialIntervalMs: 300 }, messenger: { depositAfterMs: 100 }, relayClient: { mailboxPollMs: 500 }
      })
      await n.start()
      nodes.push(n)
      await until(() => n.relay.status().admitted === true, `${name} admitted`, 20_000)
      return n
    }
    const ana = await node('Ana', 'A')
    const bo = await node('Bo', 'B')
    // each found the other in the other office (the home relay is given, as a directory entry or contact would)
    ana.relay.setHome(bo.peerId, info.B!.peerId)
    bo.relay.setHome(ana.peerId, info.A!.peerId)
    // arrival order as each node stores them
    const arrived: Record<string, string[]> = { Ana: [], Bo: [] }
    for (const [n, name] of [[ana, 'Ana'], [bo, 'Bo']] as const) {
      n.messenger.addEventListener('messageStored', (e: CustomEvent<StoredMessage>) => { if (!e.detail.outgoing) arrived[name]!.push(e.detail.text) })
    }
    const canary = `canary-${Math.random().toString(36).slice(2)}-plaintext`
    const sent: Record<string, StoredMessage[]> = { Ana: [], Bo: [] }
    let sending = true
    const writer = async (from: ParleyNode, to: ParleyNode, name: string): Promise<void> => {
      for (let i = 0; i < PER_SIDE; i++) {
        sent[name]!.push(await from.messenger.sendMessage(to.peerId, i === 40 ? `${canary} ${name}` : `${name} ${i}`))
        await new Promise(resolve => setTimeout(resolve, 15 + Math.random() * 30))
      }
    }
    const writing = Promise.all([writer(ana, bo, 'Ana'), writer(bo, ana, 'Bo')]).finally(() => { sending = false })
    let kills = 0
    while (kills < KILLS) {
      const victim = kills % 2 === 0 ? 'A' : 'B'
      await new Promise(resolve => setTimeout(resolve, 200 + Math.random() * 1200))
      await relays[victim].kill9()
      kills++
      await new Promise(resolve => setTimeout(resolve, Math.random() * 800))
      await relays[victim].start()
    }
    await writing
    assert.equal(sending, false)
    const texts = (ms: StoredMessage[]): string[] => ms.map(m => m.text)
    const got = async (n: ParleyNode, from: ParleyNode): Promise<string[]> => (await n.messenger.history(from.peerId, { limit: 1000 })).filter(m => !m.outgoing).map(m => m.text)
    try {
      await until(async () => (await got(bo, ana)).length >= PER_SIDE && (await got(ana, bo)).length >= PER_SIDE, 'every message arrived', 90_000, 250)
    } catch (err) {
      const boHave = await got(bo, ana)
      const anaHave = await got(ana, bo)
      const states = async (n: ParleyNode, name: string): Promise<Record<string, number>> => {
        const c: Record<string, number> = {}
        for (const m of sent[name]!) { const s = (await n.messageStore.getMessage(m.id))?.state ?? 'gone'; c[s] = (c[s] ?? 0) + 1 }
        return c
      }
      console.log(JSON.stringify({
        bo: (await got(bo, ana)).length, ana: (await got(ana, bo)).length, anaStates: await states(ana, 'Ana'), boStates: await states(bo, 'Bo'),
        anaRelay: ana.relay.status(), boRelay: bo.relay.status(),
        missingAtBo: texts(sent.Ana!).filter(t => !boHave.includes(t)),
        missingAtAna: texts(sent.Bo!).filter(t => !anaHave.includes(t)),
        arrivedBo: arrived.Bo!.length,
        stats: [relays.A.admin('stats', '--json'), relays.B.admin('stats', '--json')].map(x => JSON.parse(x).mailbox)
      }))
      for (const r of ['A', 'B'] as const) console.log(r, relays[r].logText().split('\n').filter(l => /"(warn|error)"|forward|paired|queued/.test(l)).slice(-40).join('\n'))
      throw err
    }
    for (const [n, from, name, other] of [[bo, ana, 'Bo', 'Ana'], [ana, bo, 'Ana', 'Bo']] as const) {
      const history = await got(n, from)
      const want = texts(sent[other]!)
      const lost = want.filter(t => !history.includes(t)).length
      const duplicated = history.length - new Set(history).size
      // reordered: as the user sees the conversation (the node orders by the author's sequence)
      let reordered = 0
      const order = history.map(t => want.indexOf(t))
      for (let i = 1; i < order.length; i++) if (order[i]! < order[i - 1]!) reordered++
      // and in the order the node stored them (arrival): each author's messages are written in the order they came
      const arrivals = arrived[name]!.map(t => want.indexOf(t))
      for (let i = 1; i < arrivals.length; i++) if (arrivals[i]! < arrivals[i - 1]!) reordered++
      assert.deepEqual({ lost, duplicated, reordered }, { lost: 0, duplicated: 0, reordered: 0 }, `${other} -> ${name}: arrived ${arrivals.join(' ')}`)
      assert.deepEqual(history, want)
    }
    // the queues end empty, on both relays
    for (const r of ['A', 'B'] as const) {
      await until(() => (JSON.parse(relays[r].admin('federation', 'list', '--json')) as FedPeerView[]).every(p => p.queue.depth === 0), `queue at ${r} empty`, 30_000, 500)
    }
    for (const r of ['A', 'B']) {
      assert.deepEqual(await filesContaining(join(dir, r), canary), [], `no plaintext in relay ${r}'s data dir`)
      assert.ok(!relays[r as 'A' | 'B'].logText().includes(canary), `no plaintext in relay ${r}'s log`)
    }
  })
})
