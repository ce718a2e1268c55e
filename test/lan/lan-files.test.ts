/**
 * Files on a real LAN of network namespaces (mDNS, real TCP on veth), Parley
 * as separate processes:
 *  - 200 MiB from one host to another, the receiver killed with kill -9 at
 *    about 50 % and the sender at about 70 %, both restarted: the file's
 *    SHA-256 equals the original's, it never shows under its name before the
 *    end, and the bytes sent again are under 10 % of the file (counted by
 *    iptables on the receiver's link, less the protocol overhead measured on a
 *    clean transfer in the same run);
 *  - the link drops in the middle of a transfer (the cable pulled and the
 *    receiver's TCP connections killed): it resumes from where it was when the
 *    link returns, the file identical and next to nothing fetched twice; on the
 *    way `parley transfers` (list, --json, pause, resume, cancel) by the CLI;
 *  - a group of 4: two members offline, the sender sends, one member gets the
 *    file, the sender goes offline, the two others come online and get the
 *    file from that member.
 * Bounded: two transfers of 200 MiB and one of 8 MiB, then teardown.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { createReadStream } from 'node:fs'
import { mkdir, readdir, stat, writeFile, open } from 'node:fs/promises'
import { join } from 'node:path'
import { NetnsLan, canUseNamespaces } from '../helpers/netns.js'
import { NodeProc, PARLEY_BIN } from '../helpers/proc.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { GroupView, IdentityView, TransferView } from '../../node/src/api/contract.js'
import type { PeerView } from '../../node/src/messaging/messenger.js'

const MiB = 1024 * 1024
const SIZE = 200 * MiB

async function sha256File (path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer)
  return h.digest('hex')
}

async function randomFile (path: string, size: number): Promise<void> {
  const fh = await open(path, 'w')
  try {
    for (let off = 0; off < size; off += 8 * MiB) await fh.write(randomBytes(Math.min(8 * MiB, size - off)))
  } finally { await fh.close() }
}

/** TCP bytes the host's link received (IP packets), from a counting rule of our own */
const counter = {
  add: (ns: string): void => {
    execFileSync('ip', ['netns', 'exec', ns, 'iptables', '-I', 'INPUT', '-i', 'lan0', '-p', 'tcp', '-m', 'comment', '--comment', 'pfil-count'], { stdio: 'pipe' })
  },
  read: (ns: string): number => {
    const out = execFileSync('ip', ['netns', 'exec', ns, 'iptables', '-nvxL', 'INPUT'], { encoding: 'utf8' })
    const line = out.split('\n').find(l => l.includes('pfil-count'))
    return Number(line?.trim().split(/\s+/)[1] ?? NaN)
  },
  reset: (ns: string): void => { execFileSync('ip', ['netns', 'exec', ns, 'iptables', '-Z', 'INPUT'], { stdio: 'pipe' }) }
}

describe('files on a namespace LAN', () => {
  const lan = new NetnsLan('pfil', 4, '10.231.13')
  let dir: string
  let nodes: NodeProc[] = []
  const ids: string[] = []
  let failed = false
  /** wire bytes per file byte of a clean transfer (the first test measures it) */
  let overhead: number | undefined
  const guard = async (fn: () => Promise<void>): Promise<void> => { try { await fn() } catch (e) { failed = true; throw e } }
  const dl = (i: number): string => join(dir, `dl-${i + 1}`)
  const transfers = async (n: NodeProc): Promise<TransferView[]> => await n.api!.call<TransferView[]>('GET', '/transfers')
  const incoming = async (n: NodeProc, msgId: string): Promise<TransferView | undefined> => (await transfers(n)).find(t => t.direction === 'in' && t.msgId === msgId)
  const cli = (n: NodeProc, ...args: string[]): string => execFileSync(process.execPath, [PARLEY_BIN, ...args, '--data', n.init.dataDir], { encoding: 'utf8' })
  const sees = async (n: NodeProc, peer: string, online = true): Promise<void> => {
    await until(async () => (await n.api!.call<PeerView[]>('GET', '/peers')).some(p => p.peerId === peer && p.online === online), `${peer} ${online ? 'online' : 'offline'}`, 30_000, 100)
  }

  before(async () => {
    try {
      const why = canUseNamespaces()
      if (why !== null) throw new Error(why)
      dir = await tmpDir('parley-lanfiles-')
      lan.up()
      nodes = lan.hosts.map((h, i) => new NodeProc({
        dataDir: join(dir, h.name), name: ['Ana', 'Ben', 'Cai', 'Dee'][i] as string, netns: h.name, logFile: join(dir, `${h.name}.log`),
        args: ['--listen', '/ip4/0.0.0.0/tcp/4001', '--downloads', dl(i)]
      }))
      await Promise.all(nodes.map(async n => { await n.start() }))
      for (const n of nodes) ids.push((await n.api!.call<IdentityView>('GET', '/identity')).peerId)
      for (const [i, n] of nodes.entries()) for (const [j] of nodes.entries()) if (i !== j) await sees(n, ids[j] as string)
    } catch (e) { failed = true; throw e }
  })

  after(async () => {
    await Promise.all(nodes.map(async n => { await n.stop() }))
    lan.down()
    if (failed || process.env.KEEP_LOGS === '1') console.error(`file test logs kept in ${dir}`)
    else await removeDir(dir)
  })

  it('200 MiB: kill -9 of the receiver at ~50 % and of the sender at ~70 %, resumed from the verified chunks', async () => guard(async () => {
    const [ana, ben] = nodes as [NodeProc, NodeProc]
    const src = join(dir, 'big.bin')
    await randomFile(src, SIZE)
    const want = await sha256File(src)
    counter.add(lan.hosts[1]!.name)

    // the baseline: the same file once without faults, for the overhead of TCP/IP, Noise, yamux and the protocol
    counter.reset(lan.hosts[1]!.name)
    const [clean] = await ana.api!.call<TransferView[]>('POST', '/files', { to: ids[1], paths: [src] })
    const cleanDone = await until(async () => { const v = await incoming(ben, clean!.msgId); return v?.state === 'complete' ? v : undefined }, 'clean transfer', 120_000, 100)
    overhead = counter.read(lan.hosts[1]!.name) / SIZE
    console.error(`# clean 200 MiB: wire bytes / file bytes = ${overhead.toFixed(4)}`)
    assert.equal(await sha256File(cleanDone.path as string), want)

    counter.reset(lan.hosts[1]!.name)
    const [sent] = await ana.api!.call<TransferView[]>('POST', '/files', { to: ids[1], paths: [src] })
    const finalName = 'big (1).bin'
    let at = await until(async () => { const v = await incoming(ben, sent!.msgId); return v !== undefined && v.bytes >= SIZE * 0.5 ? v : undefined }, '50 %', 120_000, 10)
    await ben.kill9()
    console.error(`# receiver killed at ${(at.bytes * 100 / SIZE).toFixed(0)} %`)
    assert.ok(!(await readdir(dl(1))).includes(finalName), 'a partial file is never under its name')
    await ben.start()
    const resumedAt = (await incoming(ben, sent!.msgId))?.bytes ?? 0
    assert.ok(resumedAt > 0, 'the receiver kept its verified chunks')
    at = await until(async () => { const v = await incoming(ben, sent!.msgId); return v !== undefined && v.bytes >= SIZE * 0.7 ? v : undefined }, '70 %', 120_000, 10)
    await ana.kill9()
    console.error(`# sender killed at ${(at.bytes * 100 / SIZE).toFixed(0)} % (receiver had resumed from ${(resumedAt * 100 / SIZE).toFixed(0)} %)`)
    assert.ok(!(await readdir(dl(1))).includes(finalName))
    await ana.start()
    const done = await until(async () => { const v = await incoming(ben, sent!.msgId); return v?.state === 'complete' ? v : undefined }, 'resumed transfer complete', 180_000, 100)
    assert.equal(done.path, join(dl(1), finalName))
    assert.equal((await stat(done.path)).size, SIZE)
    assert.equal(await sha256File(done.path), want)
    const wire = counter.read(lan.hosts[1]!.name)
    const resent = wire - overhead * SIZE
    console.error(`# kill -9 run: wire ${wire} bytes, re-sent ≈ ${(resent / MiB).toFixed(1)} MiB = ${(resent * 100 / SIZE).toFixed(1)} % of the file`)
    assert.ok(resent < 0.10 * SIZE, `re-sent ${resent} bytes`)
    assert.deepEqual((await readdir(dl(1))).filter(n => n.endsWith('.part')), [])
  }))

  it('link down mid-transfer (connections killed): resumes where it was, file identical; parley transfers pause / resume / cancel', async () => guard(async () => {
    const [ana, ben] = nodes as [NodeProc, NodeProc]
    const benNs = lan.hosts[1]!
    const src = join(dir, 'big.bin')
    if (!(await stat(src).then(() => true, () => false))) await randomFile(src, SIZE)
    const want = await sha256File(src)
    const parts = async (): Promise<string[]> => (await readdir(dl(1))).filter(n => n.endsWith('.part'))
    const json = (): TransferView[] => JSON.parse(cli(ben, 'transfers', '--json')) as TransferView[]

    // the CLI: list, pause, resume, cancel, on a transfer of its own held still by a pulled cable (so it cannot end first)
    const [first] = await ana.api!.call<TransferView[]>('POST', '/files', { to: ids[1], paths: [src] })
    const t1 = await until(async () => { const v = await incoming(ben, first!.msgId); return v !== undefined && v.bytes > 0 ? v : undefined }, 'first chunks', 60_000, 10)
    lan.link(benNs, 'down')
    try {
      const line = (state: string): RegExp => new RegExp(`^${t1.id} ↓ big\\.bin ${state} \\d+% of 200\\.0 MiB`, 'm')
      assert.match(cli(ben, 'transfers'), line('active'))
      assert.match(cli(ben, 'transfers', 'pause', t1.id), line('paused'))
      assert.equal(json().find(v => v.id === t1.id)?.state, 'paused')
      assert.match(cli(ben, 'transfers'), line('paused'))
      assert.match(cli(ben, 'transfers', 'resume', t1.id), line('active'))
      // at once: the resumed fetch is dialing a peer it cannot reach (a 15 s dial timeout); the cancel halts it
      const asked = Date.now()
      assert.match(cli(ben, 'transfers', 'cancel', t1.msgId), line('cancelled'))
      assert.ok(Date.now() - asked < 10_000, `the cancel took ${Date.now() - asked} ms (it waited for the dial?)`)
      assert.equal(json().find(v => v.id === t1.id)?.state, 'cancelled')
      assert.deepEqual(await parts(), [], 'a cancelled transfer leaves no partial file')
      // mistakes are said in words, and the node goes on
      assert.throws(() => cli(ben, 'transfers', 'resume', t1.id), /the transfer is cancelled/)
      assert.throws(() => cli(ben, 'transfers', 'pause', 'no-such-id'), /no transfer no-such-id/)
    } finally { lan.link(benNs, 'up') }

    // the link drop: counted from a clean counter, the whole transfer
    counter.reset(benNs.name)
    const [sent] = await ana.api!.call<TransferView[]>('POST', '/files', { to: ids[1], paths: [src] })
    const before = await until(async () => { const v = await incoming(ben, sent!.msgId); return v !== undefined && v.bytes >= SIZE * 0.4 ? v : undefined }, '40 %', 120_000, 10)
    lan.link(benNs, 'down')
    // the receiver's connections die with it (a Wi-Fi roam, a NAT timeout): a new connection and stream must take over
    execFileSync('ip', ['netns', 'exec', benNs.name, 'ss', '-K', 'dst', lan.hosts[0]!.ip], { stdio: 'pipe' })
    let last = -1
    const stalled = await until(async () => {
      const v = await incoming(ben, sent!.msgId)
      const still = v !== undefined && v.bytes === last
      last = v?.bytes ?? -1
      if (!still) await new Promise(resolve => setTimeout(resolve, 300))
      return still ? v : undefined
    }, 'the transfer stalls while the link is down', 30_000, 10)
    console.error(`# link down at ${(before.bytes * 100 / SIZE).toFixed(0)} %, stalled at ${(stalled.bytes * 100 / SIZE).toFixed(0)} %`)
    assert.equal(stalled.state, 'active')
    assert.ok(stalled.bytes < SIZE)
    assert.ok(!(await readdir(dl(1))).includes('big (2).bin'), 'a partial file is never under its name')
    lan.link(benNs, 'up')
    const done = await until(async () => { const v = await incoming(ben, sent!.msgId); return v?.state === 'complete' ? v : undefined }, 'complete after the link is back', 180_000, 100)
    assert.equal(done.path, join(dl(1), 'big (2).bin'))
    assert.equal((await stat(done.path)).size, SIZE)
    assert.equal(await sha256File(done.path), want)
    assert.equal(done.rejected, 0)
    const wire = counter.read(benNs.name)
    assert.ok(overhead !== undefined, 'the clean transfer of the first test measured the overhead')
    const resent = wire - overhead * SIZE
    console.error(`# link-drop run: wire ${wire} bytes, fetched twice ≈ ${(resent / MiB).toFixed(1)} MiB = ${(resent * 100 / SIZE).toFixed(1)} % of the file`)
    // what was in flight when the connection died (the 8 MiB window) and TCP's own retries: never from zero
    assert.ok(resent < 0.10 * SIZE, `fetched twice ${resent} bytes`)
    assert.deepEqual(await parts(), [])
    assert.match(cli(ben, 'transfers'), /↓ big \(2\)\.bin complete 100% of 200\.0 MiB → /)
  }))

  it('group of 4: the sender goes offline after one member has the file; the others get it from that member', async () => guard(async () => {
    const [ana, ben, cai, dee] = nodes as [NodeProc, NodeProc, NodeProc, NodeProc]
    for (const n of nodes.slice(1)) await sees(n, ids[0] as string)
    const g = await ana.api!.call<GroupView>('POST', '/groups', { name: 'Design', members: ids.slice(1) })
    for (const n of [ben, cai, dee]) await until(async () => (await n.api!.call<GroupView[]>('GET', '/groups')).some(x => x.id === g.id), 'group known', 30_000, 100)
    await cai.stop(); await dee.stop()
    await sees(ana, ids[2] as string, false)
    await sees(ana, ids[3] as string, false)
    const src = join(dir, 'plan.bin')
    await mkdir(dir, { recursive: true })
    await writeFile(src, randomBytes(8 * MiB + 5))
    const want = await sha256File(src)
    // by the command line this time: parley send GROUP --file PATH, parley transfers --json
    const line = cli(ana, 'send', 'Design', '--file', src).trim()
    const sent = { msgId: line.split(' ')[1] as string }
    assert.match(line, /plan\.bin 8388613 bytes active$/)
    await until(async () => (await incoming(ben, sent.msgId))?.state === 'complete', 'Ben has it', 60_000, 100)
    const listed = JSON.parse(cli(ben, 'transfers', '--json')) as TransferView[]
    assert.equal(listed.find(t => t.msgId === sent.msgId)?.state, 'complete')
    assert.match(cli(ben, 'transfers'), /↓ plan\.bin complete 100% of 8\.0 MiB/)
    await ana.stop()
    await cai.start(); await dee.start()
    for (const n of [cai, dee]) {
      const v = await until(async () => { const t = await incoming(n, sent!.msgId); return t?.state === 'complete' ? t : undefined }, `${n.init.name} has it`, 90_000, 200)
      assert.equal(await sha256File(v.path as string), want)
    }
    await ana.start()
  }))
})
