/**
 * File transfer throughput (npm run bench:files), on a namespace LAN (veth
 * through a bridge), each side a separate process, all measured in the same run:
 *   raw TCP                 1 GiB from h1 to h2 over one socket
 *   TCP + Noise + yamux     1 GiB over one libp2p stream (the stack Parley's host uses)
 *   Parley, LAN             a 1 GiB file: from the send (manifest out, chunks hashed
 *                           before) to the receiver's file complete (every chunk
 *                           verified, fsynced, renamed); ratios to both baselines
 *   Parley, relay circuit   a BENCH_CIRCUIT_MIB (256) MiB file between two nodes that
 *                           reach each other only through a relay in h3
 * Bounded: one run of each, 10 minutes at most, then teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { open } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { NetnsLan, canUseNamespaces } from '../helpers/netns.js'
import { NodeProc, RelayProc } from '../helpers/proc.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { IdentityView, PeerView, TransferView } from '../../node/src/api/contract.js'

const MiB = 1024 * 1024
const SIZE = Number(process.env.BENCH_FILE_MIB ?? 1024) * MiB
const CIRCUIT = Number(process.env.BENCH_CIRCUIT_MIB ?? 256) * MiB
/** a directory: the two LAN nodes run with --cpu-prof and leave their profiles there */
const PROF = process.env.BENCH_CPU_PROF
const PEER = new URL('./files-bench-peer.ts', import.meta.url).pathname
const why = canUseNamespaces()
if (why !== null) { console.error(`bench:files: ${why}`); process.exit(1) }
const deadline = setTimeout(() => { console.error('bench:files: over 10 minutes, stopping'); process.exit(1) }, 10 * 60_000)
deadline.unref()

const lan = new NetnsLan('pfbn', 3, '10.231.14')
const dir = await tmpDir('parley-files-bench-')
const children: ChildProcess[] = []
const procs: Array<NodeProc | RelayProc> = []

function peer (ns: string, ...args: string[]): { child: ChildProcess, line: (re: RegExp) => Promise<string> } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', PEER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  let buf = ''
  const waiters: Array<{ re: RegExp, resolve: (s: string) => void }> = []
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString()
    for (const w of [...waiters]) { const m = buf.split('\n').find(l => w.re.test(l)); if (m !== undefined) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m) } }
  })
  return { child, line: async (re) => await new Promise(resolve => { const m = buf.split('\n').find(l => re.test(l)); if (m !== undefined) resolve(m); else waiters.push({ re, resolve }) }) }
}

const mbps = (bytes: number, ms: number): number => bytes / MiB / (ms / 1000)

async function randomFile (path: string, size: number): Promise<void> {
  const fh = await open(path, 'w')
  try { for (let off = 0; off < size; off += 16 * MiB) await fh.write(randomBytes(Math.min(16 * MiB, size - off))) } finally { await fh.close() }
}

async function transfer (from: NodeProc, to: NodeProc, toId: string, path: string, size: number, what: string): Promise<number> {
  const t0 = performance.now()
  const [sent] = await from.api!.call<TransferView[]>('POST', '/files', { to: toId, paths: [path] })
  const hashed = performance.now()
  await until(async () => (await to.api!.call<TransferView[]>('GET', '/transfers')).some(t => t.msgId === sent?.msgId && t.state === 'complete'), what, 8 * 60_000, 50)
  const ms = performance.now() - hashed
  console.log(`${what}: ${mbps(size, ms).toFixed(0)} MiB/s (${(ms / 1000).toFixed(2)} s; hashing before the send ${((hashed - t0) / 1000).toFixed(2)} s)`)
  return ms
}

try {
  lan.up()
  const [h1, h2, h3] = lan.hosts as [typeof lan.hosts[0], typeof lan.hosts[0], typeof lan.hosts[0]]

  const tcpSink = peer(h2.name, 'tcp-sink', '5001', String(SIZE))
  await tcpSink.line(/^ready/)
  peer(h1.name, 'tcp-source', h2.ip, '5001', String(SIZE))
  const tcpMs = Number((await tcpSink.line(/^done/)).split(' ')[2])
  console.log(`raw TCP: ${mbps(SIZE, tcpMs).toFixed(0)} MiB/s`)

  const p2pSink = peer(h2.name, 'p2p-sink', '5002', String(SIZE))
  const addr = (await p2pSink.line(/^ready/)).split(' ')[1] as string
  peer(h1.name, 'p2p-source', addr, String(SIZE))
  const p2pMs = Number((await p2pSink.line(/^done/)).split(' ')[2])
  console.log(`TCP + Noise + yamux: ${mbps(SIZE, p2pMs).toFixed(0)} MiB/s`)
  for (const c of children) c.kill('SIGKILL')

  const src = join(dir, 'gig.bin')
  await randomFile(src, SIZE)
  const mk = (i: number, name: string, args: string[], prof = false): NodeProc => new NodeProc({
    dataDir: join(dir, name), name, netns: lan.hosts[i]?.name, logFile: join(dir, `${name}.log`), args: [...args, '--downloads', join(dir, `${name}-dl`)],
    ...(prof && PROF !== undefined ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', PROF, '--cpu-prof-name', `${name}.cpuprofile`] } : {})
  })
  const a = mk(0, 'A', ['--listen', '/ip4/0.0.0.0/tcp/4001'], true)
  const b = mk(1, 'B', ['--listen', '/ip4/0.0.0.0/tcp/4001'], true)
  procs.push(a, b)
  await Promise.all([a.start(), b.start()])
  const idB = (await b.api!.call<IdentityView>('GET', '/identity')).peerId
  await until(async () => (await a.api!.call<PeerView[]>('GET', '/peers')).some(p => p.peerId === idB && p.online), 'B online', 30_000, 100)
  const lanMs = await transfer(a, b, idB, src, SIZE, 'Parley file, LAN')
  console.log(`  ratio to raw TCP ${(tcpMs / lanMs).toFixed(2)}, to TCP + Noise + yamux ${(p2pMs / lanMs).toFixed(2)}`)
  await Promise.all([a.stop(), b.stop()])
  if (CIRCUIT <= 0) console.log('relay circuit: skipped (BENCH_CIRCUIT_MIB=0)')
  else {
    const relay = new RelayProc({ dataDir: join(dir, 'relay'), netns: h3.name, args: ['--listen', `/ip4/${h3.ip}/tcp/4100`], logFile: join(dir, 'relay.log') })
    procs.push(relay)
    await relay.start()
    const relayAddr = (JSON.parse(relay.admin('stats', '--json')) as { addresses: string[] }).addresses.find(x => x.includes(h3.ip)) as string
    const invite = relay.admin('invite', 'create', '--uses', '2')
    const rargs = ['--no-mdns', '--relay', relayAddr, '--invite', invite]
    const c = mk(0, 'C', ['--listen', `/ip4/${h1.ip}/tcp/4002`, ...rargs])
    const d = mk(1, 'D', ['--listen', `/ip4/${h2.ip}/tcp/4002`, ...rargs])
    procs.push(c, d)
    await Promise.all([c.start(), d.start()])
    const idD = (await d.api!.call<IdentityView>('GET', '/identity')).peerId
    for (const n of [c, d]) await until(async () => (await n.api!.call<{ relay: { admitted: boolean | null } }>('GET', '/settings')).relay.admitted === true, 'admitted', 30_000, 100)
    const small = join(dir, 'circuit.bin')
    await randomFile(small, CIRCUIT)
    // the circuit comes up with the first message
    await c.api!.call('POST', '/messages', { to: idD, text: 'hello', wait: 'delivered', timeoutMs: 60_000 })
    const circuitMs = await transfer(c, d, idD, small, CIRCUIT, `Parley file, relay circuit (${CIRCUIT / MiB} MiB)`)
    console.log(`  reach ${(await c.api!.call<PeerView[]>('GET', '/peers')).find(p => p.peerId === idD)?.reach ?? '?'}; ratio to TCP + Noise + yamux on the LAN ${(p2pMs / SIZE * CIRCUIT / circuitMs).toFixed(2)}`)
  }
} finally {
  for (const c of children) c.kill('SIGKILL')
  await Promise.all(procs.map(async p => { await p.stop().catch(() => {}) }))
  lan.down()
  await removeDir(dir)
}
