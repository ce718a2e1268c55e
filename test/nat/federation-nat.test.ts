/**
 * Federation across real NATs (network namespaces, iptables): office A and
 * office B each behind its own NAT, each office's relay outside, Rita (a
 * remote user of office A) behind a third NAT. Each office reaches only its
 * own relay; the relays reach each other. Ana (A) and Bo (B) chat both ways
 * and in a group with Rita; a third relay C on the WAN speaks the federation
 * protocol to relay B unpaired, then paired and hostile (forged origin, users
 * it does not host, replays); the A-B link goes down (iptables) and up; relay
 * B is killed with SIGKILL mid-stream and restarted; Bo is offline for 500
 * messages and gets them all, in order, on return; a canary is in neither
 * relay's data dir, log nor memory.
 * (12 kills at random moments: federation-crash.test.ts; receipts, bounces: federation-notices.test.ts)
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { FedLab, canUseNamespaces } from '../helpers/netns.js'
import { NodeProc, RelayProc } from '../helpers/proc.js'
import { filesContaining, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { memoryHolds } from '../helpers/memscan.js'
import { relayFiles } from '../../relay/src/config.js'
import type { IdentityView, MessageView } from '../../node/src/api/contract.js'
import type { RelayState } from '../../node/src/messaging/relay-client.js'
import type { FedPeerView } from '../../relay/src/federation/federation.js'
import type { HostileInit, HostileResult } from '../helpers/hostile-relay.js'

const ROOT = new URL('../../', import.meta.url).pathname
const run = promisify(execFile)

/** lost, duplicated and reordered (arrival: the time each was stored at the recipient) of `want` in `got` */
function figures (want: string[], got: MessageView[]): { lost: number, duplicated: number, reordered: number } {
  const texts = got.map(m => m.text).filter(t => want.includes(t))
  const at = new Map(got.filter(m => want.includes(m.text)).map(m => [m.text, m.storedAt]))
  let reordered = 0
  for (let i = 1; i < want.length; i++) if ((at.get(want[i - 1]!) ?? 0) > (at.get(want[i]!) ?? Infinity)) reordered++
  return { lost: want.filter(t => !texts.includes(t)).length, duplicated: texts.length - new Set(texts).size, reordered }
}

describe('federation across NATs: two offices meet only through their relays (namespaces)', () => {
  const lab = new FedLab('pfed')
  let dir: string
  const relays: Record<'A' | 'B', RelayProc> = {} as never
  const relayAddr: Record<'A' | 'B', string> = {} as never
  const relayId: Record<'A' | 'B', string> = {} as never
  const nodes: Record<'ana' | 'bo' | 'rita', NodeProc> = {} as never
  const id: Record<string, string> = {}
  let failed = false
  const guard = async (fn: () => Promise<void>): Promise<void> => { try { await fn() } catch (e) { failed = true; throw e } }

  const history = async (n: NodeProc, peer: string): Promise<MessageView[]> => await n.api!.call<MessageView[]>('GET', `/conversations/${peer}/messages?limit=100000`)
  const send = async (n: NodeProc, to: string, text: string, wait?: string): Promise<MessageView> =>
    await n.api!.call<MessageView>('POST', '/messages', { to, text, ...(wait !== undefined ? { wait, timeoutMs: 60_000 } : {}) })
  const node = (name: string, ns: string, r: 'A' | 'B'): NodeProc => new NodeProc({
    dataDir: join(dir, name), name, netns: ns, logFile: join(dir, `${name}.log`),
    args: ['--no-mdns', '--listen', '/ip4/0.0.0.0/tcp/4001', '--relay', relayAddr[r], '--invite', relays[r].admin('invite', 'create')]
  })

  before(async () => {
    try {
      const why = canUseNamespaces()
      if (why !== null) throw new Error(why)
      dir = await tmpDir('parley-fednat-')
      lab.up()
      for (const [r, ns, ip] of [['A', lab.ns.ra, lab.ip.ra], ['B', lab.ns.rb, lab.ip.rb]] as const) {
        const config = join(dir, `${r}.json`)
        writeFileSync(config, JSON.stringify({ federation: { allowed: true, name: `office ${r}`, tickMs: 200, retryMinMs: 200, retryMaxMs: 1000, directoryRefreshMs: 500 } }))
        relays[r] = new RelayProc({ dataDir: join(dir, `relay${r}`), netns: ns, args: ['--listen', '/ip4/0.0.0.0/tcp/4100', '--config', config], logFile: join(dir, `relay${r}.log`) })
        await relays[r].start()
        const { peerId } = JSON.parse(relays[r].admin('stats', '--json')) as { peerId: string }
        relayId[r] = peerId
        relayAddr[r] = `/ip4/${ip}/tcp/4100/p2p/${peerId}`
      }
      nodes.ana = node('Ana', lab.ns.a1, 'A')
      nodes.rita = node('Rita', lab.ns.h1, 'A')
      nodes.bo = node('Bo', lab.ns.b1, 'B')
      await Promise.all(Object.values(nodes).map(async n => { await n.start() }))
      for (const [k, n] of Object.entries(nodes)) id[k] = (await n.api!.call<IdentityView>('GET', '/identity')).peerId
      for (const n of Object.values(nodes)) {
        await until(async () => (await n.api!.call<{ relay: RelayState }>('GET', '/settings')).relay.admitted === true, `${n.init.name} admitted`, 60_000, 200)
      }
    } catch (e) { failed = true; throw e }
  })

  after(async () => {
    await Promise.all(Object.values(nodes).map(async n => { await n?.stop() }))
    for (const r of Object.values(relays)) await r?.stop()
    lab.down()
    if (failed || process.env.KEEP_LOGS === '1') console.error(`federation NAT test logs kept in ${dir}`)
    else await removeDir(dir)
  })

  it('each office reaches only its own relay; the relays reach each other; nobody reaches into an office', async () => guard(async () => {
    assert.equal(lab.canConnect(lab.ns.a1, lab.ip.ra, 4100), true, 'office A reaches relay A')
    assert.equal(lab.canConnect(lab.ns.h1, lab.ip.ra, 4100), true, 'Rita reaches relay A')
    assert.equal(lab.canConnect(lab.ns.b1, lab.ip.rb, 4100), true, 'office B reaches relay B')
    assert.equal(lab.canConnect(lab.ns.a1, lab.ip.rb, 4100), false, 'office A does not reach relay B')
    assert.equal(lab.canConnect(lab.ns.b1, lab.ip.ra, 4100), false, 'office B does not reach relay A')
    assert.equal(lab.canConnect(lab.ns.ra, lab.ip.rb, 4100), true, 'relay A reaches relay B')
    assert.equal(lab.canConnect(lab.ns.rb, lab.ip.a1, 4001), false, 'relay B does not reach into office A')
    assert.equal(lab.canConnect(lab.ns.ra, lab.ip.b1, 4001), false, 'relay A does not reach into office B')
  }))

  it('the admins pair the relays; Bo lists himself; Ana finds him under "Other offices"', async () => guard(async () => {
    assert.match(relays.B.admin('federation', 'add', relays.A.admin('federation', 'invite')), /paired with office A/)
    await nodes.bo.api!.call('PUT', '/offices/listing', { listed: true, department: 'Sales' })
    for (const n of [nodes.ana, nodes.rita]) {
      await until(async () => (await n.api!.call<Array<{ peerId: string }>>('GET', '/offices?q=sales')).some(p => p.peerId === id.bo), 'Bo found', 30_000, 200)
    }
    await nodes.ana.api!.call('PUT', '/offices/listing', { listed: true })
    await nodes.rita.api!.call('PUT', '/offices/listing', { listed: true })
    await until(async () => (await nodes.bo.api!.call<Array<{ peerId: string }>>('GET', '/offices')).length === 2, 'Bo finds Ana and Rita', 30_000, 200)
  }))

  it('Ana and Bo chat both ways, delivered; a group with Rita in one order for all three', async () => guard(async () => {
    const m = await send(nodes.ana, id.bo!, 'hello from office A', 'delivered')
    assert.equal(m.state, 'delivered')
    const r = await send(nodes.bo, id.ana!, 'hello from office B', 'delivered')
    assert.equal(r.state, 'delivered')
    assert.deepEqual((await history(nodes.ana, id.bo!)).map(x => x.text), ['hello from office A', 'hello from office B'])
    const g = await nodes.ana.api!.call<{ id: string }>('POST', '/groups', { name: 'A and B', members: [id.bo, id.rita] })
    for (const n of [nodes.bo, nodes.rita]) {
      await until(async () => (await n.api!.call<Array<{ id: string }>>('GET', '/groups')).some(x => x.id === g.id), 'group known', 60_000, 200)
    }
    const want: string[] = []
    for (let i = 0; i < 5; i++) {
      for (const [n, who] of [[nodes.ana, 'Ana'], [nodes.bo, 'Bo'], [nodes.rita, 'Rita']] as const) {
        want.push(`${who} ${i}`)
        await send(n, g.id, `${who} ${i}`)
      }
    }
    const texts = async (n: NodeProc): Promise<string[]> => (await history(n, g.id)).map(x => x.text).filter(t => want.includes(t))
    for (const n of Object.values(nodes)) await until(async () => (await texts(n)).length === want.length, `${n.init.name} has the group's 15`, 60_000, 200)
    const views = await Promise.all(Object.values(nodes).map(texts))
    for (const v of views) {
      assert.deepEqual(v, views[0], 'one order')
      assert.deepEqual([...v].sort(), [...want].sort(), 'none lost, none twice')
    }
  }))

  it('an unpaired relay is refused; paired, its forged, not-its-own and replayed mail over /parley/fed/1.0.0 is refused in typed errors, nothing kept',
    async () => guard(async () => {
      const init: HostileInit = { target: { peerId: relayId.B, addrs: [relayAddr.B] }, token: relays.B.admin('federation', 'invite'), victim: id.bo!,
        stranger: id.ana!, otherRelay: relayId.A }
      const { stdout } = await run('ip', ['netns', 'exec', lab.ns.rc, process.execPath, '--import', 'tsx', '--import', './core/polyfill.ts',
        join(ROOT, 'test/helpers/hostile-relay.ts'), JSON.stringify(init)], { cwd: ROOT, timeout: 90_000, encoding: 'utf8' })
      const line = stdout.split('\n').find(l => l.startsWith('RESULT '))
      assert.ok(line !== undefined, `the hostile relay reported: ${stdout}`)
      const r = JSON.parse(line.slice('RESULT '.length)) as HostileResult
      assert.deepEqual(r.unpaired, { forward: 'ERR_FED_NOT_PAIRED', directory: 'ERR_FED_NOT_PAIRED' })
      assert.equal(r.malformed, 'ERR_MALFORMED_FRAME')
      // forged origin (bad signature), a user whose signed home is relay A, one with no signed home, `to` not sealed for,
      // one homed at relay B itself (relay C named B and A as its instances): all refused, typed
      assert.deepEqual({ stored: r.forged.stored, refused: r.forged.refused }, { stored: 0,
        refused: [[1, 'ERR_BAD_SIGNATURE'], [2, 'ERR_FED_NOT_HOME'], [3, 'ERR_FED_NOT_HOME'], [4, 'ERR_INVALID_ENVELOPE'], [5, 'ERR_FED_NOT_HOME']] })
      // its own user's mail is taken once (the checks refuse only what they must); every replay stores nothing
      assert.equal(r.genuine.stored, 1)
      for (const x of r.replayed) assert.deepEqual({ stored: x.stored, lastSeq: x.lastSeq }, { stored: 0, lastSeq: 6 })
      // a former home (relay C, op 1) with the stale prefix of a record relay B has seen whole (moved to relay A, op 2): refused
      assert.deepEqual({ stored: r.stale.stored, refused: r.stale.refused }, { stored: 0, refused: [[7, 'ERR_FED_NOT_HOME']] })
      // relay B keeps running, counted it all, and still serves its office
      const c = (JSON.parse(relays.B.admin('federation', 'list', '--json')) as FedPeerView[]).find(p => p.peerId === r.peerId)
      assert.ok(c !== undefined, 'relay C is paired at B')
      assert.equal(c.counts.received, 1)
      assert.ok(c.counts.refused >= 6, `refused ${c.counts.refused}`)
      assert.ok(relays.B.logText().includes('named an instance that is not its own'))
      assert.ok(relays.B.logText().includes('refused an unpaired relay'))
      assert.match(relays.B.admin('federation', 'remove', r.peerId), /^unpaired /)
      const m = await send(nodes.ana, id.bo!, 'after the hostile relay', 'delivered')
      assert.equal(m.state, 'delivered')
    }))

  it('the link between the relays down (iptables) then up: relay A queues, Ana sees "queued: office B unreachable", all arrive in order', async () => guard(async () => {
    const want = Array.from({ length: 20 }, (_, i) => `while the link is down ${i}`)
    lab.relayLink('down')
    let down = true
    try {
      for (const t of want) await send(nodes.ana, id.bo!, t)
      // the message view says why it waits (our relay cannot reach office B's), and relay A's list agrees
      await until(async () => (await history(nodes.ana, id.bo!)).some(m => want.includes(m.text) && m.waiting?.office === 'office B'),
        'queued: office B unreachable', 60_000, 300)
      const a = (JSON.parse(relays.A.admin('federation', 'list', '--json')) as FedPeerView[])[0]!
      assert.equal(a.state, 'down')
      assert.ok(a.queue.depth > 0, `queue ${a.queue.depth}`)
      lab.relayLink('up')
      down = false
    } finally {
      if (down) lab.relayLink('up')
    }
    await until(async () => (await history(nodes.bo, id.ana!)).filter(m => want.includes(m.text)).length >= want.length, 'Bo got the 20', 90_000, 300)
    assert.deepEqual(figures(want, await history(nodes.bo, id.ana!)), { lost: 0, duplicated: 0, reordered: 0 })
    // delivered at Ana (the receipts came back), and no longer marked as waiting
    await until(async () => (await history(nodes.ana, id.bo!)).filter(m => want.includes(m.text)).every(m => m.state === 'delivered' || m.state === 'read'),
      'all delivered at Ana', 60_000, 300)
    await until(async () => (await history(nodes.ana, id.bo!)).every(m => m.waiting === undefined), 'no longer marked waiting', 30_000, 300)
  }))

  it('relay B killed with SIGKILL mid-stream and restarted, twice: lost = duplicated = reordered = 0, all delivered', async () => guard(async () => {
    const want = Array.from({ length: 60 }, (_, i) => `through the kills ${i}`)
    const writing = (async () => {
      for (const t of want) { await send(nodes.ana, id.bo!, t); await new Promise(resolve => setTimeout(resolve, 20 + Math.random() * 40)) }
    })()
    for (let k = 0; k < 2; k++) {
      await new Promise(resolve => setTimeout(resolve, 300 + Math.random() * 900))
      await relays.B.kill9()
      await new Promise(resolve => setTimeout(resolve, 200 + Math.random() * 600))
      await relays.B.start()
    }
    await writing
    await until(async () => (await history(nodes.bo, id.ana!)).filter(m => want.includes(m.text)).length >= want.length, 'Bo got the 60', 120_000, 300)
    assert.deepEqual(figures(want, await history(nodes.bo, id.ana!)), { lost: 0, duplicated: 0, reordered: 0 })
    await until(async () => (await history(nodes.ana, id.bo!)).filter(m => want.includes(m.text)).every(m => m.state === 'delivered' || m.state === 'read'),
      'all delivered at Ana', 90_000, 300)
    await until(() => (JSON.parse(relays.A.admin('federation', 'list', '--json')) as FedPeerView[]).every(p => p.queue.depth === 0), 'queue at A empty', 30_000, 300)
  }))

  it('Bo offline for 500 messages gets them all, in order, on return; no plaintext in either relay\'s data dir, log or memory', async () => guard(async () => {
    await nodes.bo.stop()
    const canary = `canary-${Math.random().toString(36).slice(2)}-plaintext`
    const texts = Array.from({ length: 500 }, (_, i) => i === 123 ? canary : `while Bo is away ${i}`)
    for (let i = 0; i < texts.length; i += 50) {
      // in order: each batch after the one before; inside a batch the API numbers them as they come
      for (const t of texts.slice(i, i + 50)) await send(nodes.ana, id.bo!, t)
    }
    await until(async () => (await history(nodes.ana, id.bo!)).filter(x => texts.includes(x.text)).every(x => x.state === 'sent'), 'all 500 at relay A', 120_000, 500)
    await nodes.bo.start()
    const got = async (): Promise<string[]> => (await history(nodes.bo, id.ana!)).map(x => x.text).filter(t => texts.includes(t))
    await until(async () => (await got()).length === 500, 'Bo got the 500', 180_000, 500)
    assert.deepEqual(await got(), texts, 'in order, none lost, none twice')
    for (const r of ['relayA', 'relayB']) {
      assert.deepEqual(await filesContaining(join(dir, r), canary), [], `no plaintext in ${r}'s data dir`)
      assert.ok(!readFileSync(join(dir, `${r}.log`), 'utf8').includes(canary), `no plaintext in ${r}'s log`)
      // nor in its memory: the scan finds what the relay does hold (its peer ID), and not the canary
      const { pid, peerId } = JSON.parse(readFileSync(relayFiles(join(dir, r)).info, 'utf8')) as { pid: number, peerId: string }
      assert.deepEqual(memoryHolds(pid, [peerId, canary]), [true, false], `${r}'s memory holds its peer ID (the scan works) and no plaintext`)
    }
  }))
})
