/**
 * Faults on a real link: random packet loss, then the link taken down and up
 * mid-traffic. The figure is always lost = duplicated = order violations = 0.
 * Bounded: 300 messages, then teardown.
 *
 * Loss is made with iptables' statistic match: the kernel of these machines is
 * built without sch_netem (CONFIG_NET_SCH_NETEM unset), so tc netem's
 * duplication and reordering cannot be emulated here.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { NetnsLan, canUseNamespaces } from '../helpers/netns.js'
import { NodeProc } from '../helpers/proc.js'
import { audit } from '../helpers/audit.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { IdentityView, MessageView } from '../../node/src/api/contract.js'
import type { PeerView } from '../../node/src/messaging/messenger.js'

const lossRule = (ns: string, op: '-A' | '-D'): void => {
  execFileSync('ip', ['netns', 'exec', ns, 'iptables', op, 'OUTPUT', '-o', 'lan0', '-m', 'statistic', '--mode', 'random', '--probability', '0.10', '-j', 'DROP'], { stdio: 'pipe' })
}

describe('LAN faults: packet loss, link down and up', () => {
  const lan = new NetnsLan('pflt', 2, '10.231.9')
  let dir: string
  let nodes: NodeProc[] = []
  const ids: string[] = []
  let failed = false
  const guard = async (fn: () => Promise<void>): Promise<void> => { try { await fn() } catch (e) { failed = true; throw e } }
  const history = async (n: NodeProc, peer: string): Promise<MessageView[]> => await n.api!.call<MessageView[]>('GET', `/conversations/${peer}/messages?limit=100000`)

  before(async () => {
    // a failed setup keeps its logs too (after() deletes them only when nothing failed)
    try {
      const why = canUseNamespaces()
      if (why !== null) throw new Error(why)
      dir = await tmpDir('parley-faults-')
      lan.up()
      nodes = lan.hosts.map((h, i) => new NodeProc({ dataDir: join(dir, h.name), name: ['Fay', 'Gus'][i] as string, netns: h.name, logFile: join(dir, `${h.name}.log`), args: ['--listen', '/ip4/0.0.0.0/tcp/4001'] }))
      await Promise.all(nodes.map(async n => { await n.start() }))
      for (const n of nodes) ids.push((await n.api!.call<IdentityView>('GET', '/identity')).peerId)
      for (const n of nodes) await until(async () => (await n.api!.call<PeerView[]>('GET', '/peers')).some(p => p.online), 'connected', 20_000, 100)
    } catch (e) { failed = true; throw e }
  })

  after(async () => {
    await Promise.all(nodes.map(async n => { await n.stop() }))
    lan.down()
    if (failed || process.env.KEEP_LOGS === '1') console.error(`fault test logs kept in ${dir}`)
    else await removeDir(dir)
  })

  it('10% packet loss each way: nothing lost, duplicated or reordered', async () => guard(async () => {
    for (const h of lan.hosts) lossRule(h.name, '-A')
    try {
      const [fay, gus] = nodes as [NodeProc, NodeProc]
      const sent: Record<string, string[]> = { [ids[0]!]: [], [ids[1]!]: [] }
      const sends = []
      for (let i = 0; i < 100; i++) {
        for (const [k, n] of [[0, fay], [1, gus]] as const) {
          const text = `lossy ${k}-${i}`
          sent[ids[k]!]!.push(text)
          sends.push(n.api!.call('POST', '/messages', { to: ids[1 - k], text }))
        }
        if (i % 10 === 9) await Promise.all(sends.splice(0))
      }
      await Promise.all(sends)
      await until(async () => (await history(gus, ids[0]!)).filter(m => m.author === ids[0]).length >= 100 && (await history(fay, ids[1]!)).filter(m => m.author === ids[1]).length >= 100, 'all arrive through the bad link', 120_000, 250)
      for (const [author, n, peer] of [[ids[0]!, gus, ids[0]!], [ids[1]!, fay, ids[1]!]] as const) {
        const r = audit(sent[author]!, await history(n, peer), author)
        console.error(`# packet loss audit: ${JSON.stringify(r)}`)
        assert.deepEqual([r.lost, r.duplicated, r.orderViolations], [0, 0, 0])
      }
    } finally {
      for (const h of lan.hosts) lossRule(h.name, '-D')
    }
  }))

  it('link down for 8 s mid-traffic, then up: everything arrives once, in order', async () => guard(async () => {
    const [fay, gus] = nodes as [NodeProc, NodeProc]
    const sent: string[] = []
    for (let i = 0; i < 100; i++) {
      if (i === 30) lan.link(lan.hosts[1]!, 'down')
      if (i === 70) { await new Promise(resolve => setTimeout(resolve, 8000)); lan.link(lan.hosts[1]!, 'up') }
      const text = `link ${i}`
      await fay.api!.call('POST', '/messages', { to: ids[1], text })
      sent.push(text)
    }
    await until(async () => (await history(gus, ids[0]!)).filter(m => m.text.startsWith('link ')).length >= 100, 'all arrive after the link is back', 120_000, 250)
    const r = audit(sent, await history(gus, ids[0]!), ids[0]!)
    console.error(`# link down/up audit: ${JSON.stringify(r)}`)
    assert.deepEqual([r.lost, r.duplicated, r.orderViolations], [0, 0, 0])
    await until(async () => (await history(fay, ids[1]!)).filter(m => m.text.startsWith('link ')).every(m => m.state === 'delivered'), 'all confirmed', 60_000, 250)
  }))
})
