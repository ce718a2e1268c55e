/**
 * Groups across 4 LAN hosts (network namespaces, real mDNS) plus a relay host
 * on the same LAN: a member offline during 200 messages from 3 senders.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { NetnsLan, canUseNamespaces } from '../helpers/netns.js'
import { NodeProc, RelayProc } from '../helpers/proc.js'
import { audit } from '../helpers/audit.js'
import { filesContaining, removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { GroupView, IdentityView, MessageView } from '../../node/src/api/contract.js'
import type { PeerView } from '../../node/src/messaging/messenger.js'

describe('LAN groups: 4 hosts + relay in namespaces', () => {
  const lan = new NetnsLan('pgrp', 5, '10.231.8')
  let dir: string
  let relay: RelayProc
  let nodes: NodeProc[] = []
  const ids: string[] = []
  let group: GroupView
  let failed = false
  const guard = async (fn: () => Promise<void>): Promise<void> => { try { await fn() } catch (e) { failed = true; throw e } }
  const history = async (n: NodeProc): Promise<MessageView[]> => await n.api!.call<MessageView[]>('GET', `/conversations/${group.id}/messages?limit=100000`)

  before(async () => {
    // a failed setup keeps its logs too (after() deletes them only when nothing failed)
    try {
      const why = canUseNamespaces()
      if (why !== null) throw new Error(why)
      dir = await tmpDir('parley-lan-groups-')
      lan.up()
      const relayHost = lan.hosts[4]!
      relay = new RelayProc({ dataDir: join(dir, 'relay'), netns: relayHost.name, args: ['--listen', '/ip4/0.0.0.0/tcp/4100'], logFile: join(dir, 'relay.log') })
      await relay.start()
      const relayId = (JSON.parse(relay.admin('stats', '--json')) as { peerId: string }).peerId
      const invite = relay.admin('invite', 'create', '--uses', '4')
      const relayAddr = `/ip4/${relayHost.ip}/tcp/4100/p2p/${relayId}`
      nodes = lan.hosts.slice(0, 4).map((h, i) => new NodeProc({ dataDir: join(dir, h.name), name: ['Ada', 'Bo', 'Cy', 'Dee'][i] as string, netns: h.name, logFile: join(dir, `${h.name}.log`), args: ['--listen', '/ip4/0.0.0.0/tcp/4001', '--relay', relayAddr, '--invite', invite] }))
      await Promise.all(nodes.map(async n => { await n.start() }))
      for (const n of nodes) ids.push((await n.api!.call<IdentityView>('GET', '/identity')).peerId)
      // online, and with names (the group is created by names)
      for (const n of nodes) await until(async () => (await n.api!.call<PeerView[]>('GET', '/peers')).filter(p => p.online && p.name !== null).length === 3, 'all four see each other by name', 30_000, 200)
      for (const n of nodes) await until(async () => (await n.api!.call<{ relay: { admitted: boolean | null } }>('GET', '/settings')).relay.admitted === true, 'admitted', 30_000, 200)
    } catch (e) { failed = true; throw e }
  })

  after(async () => {
    await Promise.all(nodes.map(async n => { await n.stop() }))
    await relay?.stop()
    lan.down()
    if (failed || process.env.KEEP_LOGS === '1') console.error(`LAN group test logs kept in ${dir}`)
    else await removeDir(dir)
  })

  it('creates a 4-member group by name from the CLI-facing API', async () => guard(async () => {
    group = await nodes[0]!.api!.call<GroupView>('POST', '/groups', { name: 'Ops', members: ['Bo', 'Cy', 'Dee'] })
    for (const n of nodes) await until(async () => (await n.api!.call<GroupView[]>('GET', '/groups')).find(g => g.id === group.id)?.members.length === 4, 'group everywhere', 20_000, 100)
  }))

  it('one member offline during 200 messages from 3 senders: after return, all 4 histories are identical', async () => guard(async () => {
    const [ada, bo, cy, dee] = nodes as [NodeProc, NodeProc, NodeProc, NodeProc]
    await dee.stop()
    const senders = [ada, bo, cy]
    const sent = new Map<string, string[]>(ids.slice(0, 3).map(id => [id, []]))
    for (let i = 0; i < 200; i++) {
      const k = i % 3
      const text = `ops ${i}`
      await senders[k]!.api!.call('POST', '/messages', { to: group.id, text })
      sent.get(ids[k]!)!.push(text)
    }
    for (const n of senders) await until(async () => (await history(n)).length >= 201, 'online members complete', 60_000, 200)
    // Dee's copies are at the relay (every message deposited for the offline member) before it returns
    const relayStats = (): { mailbox: { messages: number } } => JSON.parse(relay.admin('stats', '--json')) as { mailbox: { messages: number } }
    await until(() => relayStats().mailbox.messages >= 200, 'the relay holds the 200 messages for Dee', 60_000, 200)
    const back = Date.now()
    await dee.start()
    await until(async () => (await history(dee)).length >= 201, 'Dee caught up', 90_000, 200)
    console.error(`# Dee caught up on 200 group messages ${Date.now() - back} ms after restarting (incl. process start)`)
    const all = await Promise.all(nodes.map(async n => (await history(n)).map(m => m.id)))
    for (const h of all.slice(1)) assert.deepEqual(h, all[0])
    const deeHist = await history(dee)
    for (const [author, texts] of sent) {
      const r = audit(texts, deeHist, author)
      assert.deepEqual([r.lost, r.duplicated, r.orderViolations], [0, 0, 0])
    }
  }))

  it('removal: the removed member gets nothing sent afterwards; the relay keeps ciphertext only', async () => guard(async () => {
    const [ada, bo, , dee] = nodes as [NodeProc, NodeProc, NodeProc, NodeProc]
    await ada.api!.call('DELETE', `/groups/${group.id}/members/${ids[3]!}`)
    await until(async () => (await dee.api!.call<GroupView[]>('GET', '/groups')).find(g => g.id === group.id)?.member === false, 'Dee sees the removal', 20_000, 100)
    // "afterwards" is in the sender's view: Bo may get Ada's removal later than Dee does
    await until(async () => (await bo.api!.call<GroupView[]>('GET', '/groups')).find(g => g.id === group.id)?.members.includes(ids[3]!) === false, 'Bo sees the removal', 20_000, 100)
    const canary = `after-removal-${Math.random().toString(36).slice(2)}`
    const m = await bo.api!.call<MessageView>('POST', '/messages', { to: group.id, text: canary, wait: 'delivered', timeoutMs: 30_000 })
    assert.equal(m.state, 'delivered')
    await new Promise(resolve => setTimeout(resolve, 2000))
    assert.ok(!(await history(dee)).some(x => x.text === canary))
    await assert.rejects(dee.api!.call('POST', '/messages', { to: group.id, text: 'hello?' }), { code: 'ERR_NOT_A_MEMBER' })
    // the relay did hold group mail (Dee's catch-up went through it), so "no plaintext" is about real data
    const stats = JSON.parse(relay.admin('stats', '--json')) as { counters: { deposited: number } }
    assert.ok(stats.counters.deposited > 0, 'the relay stored group mail')
    assert.deepEqual(await filesContaining(join(dir, 'relay'), 'ops 1'), [], 'no plaintext at the relay')
    assert.ok(!relay.logText().includes(canary))
  }))
})
