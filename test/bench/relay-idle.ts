/**
 * Idle relay connections (npm run bench:relay-idle, issue 15): what one idle client connection with a
 * reservation costs the relay, against what one idle connection costs a bare libp2p host (TCP + Noise +
 * yamux + identify + ping, nothing else) in the same run, both measured the same way: RSS and live heap
 * after a forced GC (test/bench/heap-probe.mjs), before and after BENCH_CONNS connections opened from
 * BENCH_CLIENT_PROCS client processes on loopback (test/bench/relay-idle-client.ts).
 *   BENCH_CONNS (2000), BENCH_CLIENT_PROCS (4), BENCH_SKIP_BARE=1 (the relay only, e.g. for 10,000)
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync, createWriteStream } from 'node:fs'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { RelayProc, spawnReady, stopChild } from '../helpers/proc.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import { benchKey } from './relay-idle-client.js'

const N = Number(process.env.BENCH_CONNS ?? 2000)
const PROCS = Number(process.env.BENCH_CLIENT_PROCS ?? 4)
const HERE = new URL('.', import.meta.url).pathname
const PROBE = ['--expose-gc', '--import', join(HERE, 'heap-probe.mjs')]
/** the child processes load TypeScript and need the runtime's polyfills, like every Parley process */
const TS = ['--import', 'tsx', '--import', join(HERE, '../../core/polyfill.ts')]
const KiB = 1024

interface Probe { rss: number, heapUsed: number, external: number, arrayBuffers: number }
/** RSS and live heap of `pid` after two forced GCs (the probe writes them on SIGUSR2). */
async function probe (pid: number): Promise<Probe> {
  const file = `/tmp/parley-heap-${pid}.json`
  const asked = Date.now()
  process.kill(pid, 'SIGUSR2')
  let p: (Probe & { at: number }) | undefined
  await until(() => {
    try { p = JSON.parse(readFileSync(file, 'utf8')) as Probe & { at: number } } catch { return false }
    return p.at >= asked
  }, 'heap probe', 30_000, 50)
  return p!
}

async function settle (pid: number): Promise<Probe> {
  // let the handshakes' garbage and the connection monitor's first pings pass, then take the lower of two probes
  await new Promise(resolve => setTimeout(resolve, 5000))
  const a = await probe(pid)
  await new Promise(resolve => setTimeout(resolve, 2000))
  const b = await probe(pid)
  return b.rss <= a.rss ? b : a
}

/** Opens N connections (with reservations or without) from PROCS client processes; resolves with them once all are up. */
async function openClients (mode: 'reserve' | 'connect', addr: string, log: string): Promise<ChildProcess[]> {
  const per = Math.ceil(N / PROCS)
  const out = createWriteStream(log, { flags: 'a' })
  const children = Array.from({ length: PROCS }, (_, k) => spawn(process.execPath,
    [...TS, join(HERE, 'relay-idle-client.ts'), mode, addr, String(k * per), String(Math.min(per, N - k * per))],
    { stdio: ['pipe', 'pipe', 'pipe'] }))
  await Promise.all(children.map(async c => {
    c.stderr!.pipe(out, { end: false })
    await new Promise<void>((resolve, reject) => {
      let buf = ''
      c.stdout!.on('data', (d: Buffer) => {
        buf += d.toString()
        const m = /done (\d+) (\d+)/.exec(buf)
        if (m !== null) { if (m[2] !== '0') reject(new Error(`${m[2]} clients failed; see ${log}`)); else resolve() }
      })
      c.once('exit', (code) => { reject(new Error(`client exited ${String(code)}; see ${log}`)) })
    })
  }))
  return children
}

async function closeClients (children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map(async c => { c.stdin?.end(); await stopChild(c) }))
}

const perConn = (before: Probe, after: Probe): { rssKiB: number, heapKiB: number } =>
  ({ rssKiB: Math.round((after.rss - before.rss) / N / KiB * 10) / 10, heapKiB: Math.round((after.heapUsed + after.external - before.heapUsed - before.external) / N / KiB * 10) / 10 })

const dir = await tmpDir('parley-relay-idle-')
const relay = new RelayProc({ dataDir: join(dir, 'relay'), args: ['--listen', '/ip4/127.0.0.1/tcp/0', '--config', join(dir, 'relay.json')], logFile: join(dir, 'relay.log'), nodeArgs: PROBE })
let clients: ChildProcess[] = []
let bare: ChildProcess | undefined
try {
  const t0 = performance.now()
  const allow = await Promise.all(Array.from({ length: N }, async (_, i) => peerIdFromPrivateKey(await benchKey(i)).toString()))
  writeFileSync(join(dir, 'relay.json'), JSON.stringify({ allow, circuit: { maxReservations: N + 64 }, logLevel: 'warn' }))
  const result: Record<string, unknown> = { connections: N, clientProcesses: PROCS }

  if (process.env.BENCH_SKIP_BARE !== '1') {
    const bareLog = createWriteStream(join(dir, 'bare.log'))
    bare = await spawnReady([process.execPath, ...PROBE, ...TS, join(HERE, 'relay-idle-client.ts'), 'serve', join(dir, 'bare-addr')], undefined, bareLog, 'bare', 30_000)
    const bareAddr = readFileSync(join(dir, 'bare-addr'), 'utf8')
    const b0 = await settle(bare.pid!)
    clients = await openClients('connect', bareAddr, join(dir, 'clients-bare.log'))
    const b1 = await settle(bare.pid!)
    result.bare = { ...perConn(b0, b1), rssMiB: Math.round(b1.rss / KiB / KiB) }
    await closeClients(clients); clients = []
    bare.stdin?.end(); await stopChild(bare); bare = undefined
  }

  await relay.start(120_000)
  const stats = (): { addresses: string[], connections: number, reservations: number } => JSON.parse(relay.admin('stats', '--json')) as never
  const relayAddr = stats().addresses[0] as string
  const pid = relay.child!.pid!
  const r0 = await settle(pid)
  const tc = performance.now()
  clients = await openClients('reserve', relayAddr, join(dir, 'clients-relay.log'))
  await until(() => stats().reservations >= N, 'all reservations at the relay', 120_000, 500)
  const connectMs = performance.now() - tc
  const r1 = await settle(pid)
  const s = stats()
  const relayPer = perConn(r0, r1)
  result.relay = { ...relayPer, rssMiB: Math.round(r1.rss / KiB / KiB), baseRssMiB: Math.round(r0.rss / KiB / KiB), reservations: s.reservations, connections: s.connections, connectMs: Math.round(connectMs) }
  const bareRes = result.bare as { rssKiB: number } | undefined
  if (bareRes !== undefined) result.ratioToBare = Math.round(relayPer.rssKiB / bareRes.rssKiB * 100) / 100
  result.goal = { rssKiBPerConnection: 48, met: relayPer.rssKiB <= 48 }
  result.totalMs = Math.round(performance.now() - t0)
  console.log(JSON.stringify(result, null, 2))
} finally {
  await closeClients(clients)
  if (bare !== undefined) { bare.stdin?.end(); await stopChild(bare) }
  await relay.stop()
  if (process.env.KEEP_LOGS === undefined) await removeDir(dir); else console.log('logs kept in', dir)
}
