/**
 * npm run bench: message latency and throughput on the LAN, against the bare
 * stack measured in the same run, in the same namespaces (five hosts on one
 * bridge: h1 receives, h2 sends, h2–h5 are the four senders).
 *
 * Bare baselines (lan-bare-peer.ts: libp2p TCP + Noise + yamux, LevelDB):
 *   request/ack with a synced put at the sender and a synced batch at the receiver, one at a time
 *   request/ack into a receiver that group-commits, 32 in flight, one client / four clients
 * Parley (real `parley start` processes, real mDNS, fsync on both sides):
 *   latency  = API call at the sender -> messageStored event at the receiver (one at a time)
 *   ack RTT  = POST /messages?wait=delivered round trip (durable at both ends)
 *   burst    = BURST messages from one sender, 50 API calls at a time, until all are stored at h1
 *   4 → 1    = BURST/4 messages from each of four senders at once, until all are stored at h1
 * Bounded: BENCH_N, BENCH_BURST messages, and BENCH_MAX_S seconds for the whole run.
 * BENCH_PROF=1 writes a V8 CPU profile of each Parley node (node --cpu-prof) and prints where.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { NetnsLan, canUseNamespaces } from '../helpers/netns.js'
import { NodeProc, stopChild, type SeenEvent } from '../helpers/proc.js'
import { percentile } from '../helpers/audit.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { IdentityView, MessageView } from '../../node/src/api/contract.js'
import type { PeerView } from '../../node/src/messaging/messenger.js'

const N = Number(process.env.BENCH_N ?? 500)
const BURST = Number(process.env.BENCH_BURST ?? 2000)
const MAX_S = Number(process.env.BENCH_MAX_S ?? 600)
const PROF = process.env.BENCH_PROF === '1'
const PEER = new URL('./lan-bare-peer.ts', import.meta.url).pathname
const BARE_PORT = 4002

const why = canUseNamespaces()
if (why !== null) { console.error(why); process.exit(1) }
const lan = new NetnsLan('pbench', 5, '10.231.9')
const dir = await tmpDir('parley-bench-')
const children: ChildProcess[] = []
const profDir = join(dir, 'prof')
const nodes = lan.hosts.map((h, i) => new NodeProc({
  dataDir: join(dir, h.name), name: `N${i}`, netns: h.name, args: ['--listen', '/ip4/0.0.0.0/tcp/4001'], logFile: join(dir, `${h.name}.log`),
  ...(PROF ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir] } : {})
}))
// the run's bound: everything is killed and the namespaces removed, whatever is still running
setTimeout(() => {
  console.error(`bench: not done within ${MAX_S} s, stopping`)
  for (const c of [...children, ...nodes.map(n => n.child)]) c?.kill('SIGKILL')
  lan.down()
  process.exit(3)
}, MAX_S * 1000).unref()

const f = (x: number): string => x.toFixed(2)
const ratio = (x: number, base: number): string => (x / base).toFixed(2)

/** A bare peer in `ns`; `line(re)` resolves with the first stdout line matching `re`. */
function bare (ns: string, ...args: string[]): { child: ChildProcess, line: (re: RegExp) => Promise<string> } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', PEER, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  children.push(child)
  let buf = ''
  const waiters: Array<{ re: RegExp, resolve: (s: string) => void }> = []
  const find = (re: RegExp): string | undefined => buf.split('\n').find(l => re.test(l))
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString()
    for (const w of [...waiters]) { const m = find(w.re); if (m !== undefined) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m) } }
  })
  return { child, line: async (re) => await new Promise(resolve => { const m = find(re); if (m !== undefined) resolve(m); else waiters.push({ re, resolve }) }) }
}

const resultOf = async (p: ReturnType<typeof bare>): Promise<{ ms: number | number[] }> =>
  JSON.parse((await p.line(/^result /)).slice('result '.length)) as { ms: number | number[] }

/** The bare baselines: latency one at a time, then bursts from one and from four clients. */
async function bareBaselines (): Promise<{ p50: number, p99: number, one: number, four: number }> {
  const [h1, ...senders] = lan.hosts
  const server = bare(h1!.name, 'serve', String(BARE_PORT), join(dir, 'bare-serve'))
  const addr = (await server.line(/^ready/)).split(' ')[1] as string
  const lat = bare(senders[0]!.name, 'send', addr, join(dir, 'bare-lat'), 'lat', String(N))
  const ms = ((await resultOf(lat)).ms as number[]).sort((x, y) => x - y)
  const burst = async (clients: number): Promise<number> => {
    const peers = senders.slice(0, clients).map((h, i) => bare(h.name, 'send', addr, join(dir, `bare-b${clients}-${i}`), 'burst', String(BURST / clients), '32'))
    await Promise.all(peers.map(async p => await p.line(/^ready/)))
    const t0 = performance.now()
    for (const p of peers) p.child.stdin?.write('go\n')
    await Promise.all(peers.map(resultOf))
    return BURST / (performance.now() - t0) * 1000
  }
  const one = await burst(1)
  const four = await burst(4)
  await stopChild(server.child)
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), one, four }
}

/** Ids stored at a node (messageStored events), read incrementally from its event list. */
class Stored {
  private seen = 0
  readonly ids = new Set<string>()
  constructor (private readonly events: SeenEvent[]) {}
  has (id: string): boolean { this.scan(); return this.ids.has(id) }
  count (ids: string[]): number { this.scan(); return ids.filter(id => this.ids.has(id)).length }
  private scan (): void {
    for (; this.seen < this.events.length; this.seen++) {
      const e = this.events[this.seen]!.event
      if (e.type === 'messageStored') this.ids.add((e.data as MessageView).id)
    }
  }
}

/** `count` messages from `from` to `to`, 50 API calls at a time; resolves with their ids once the API took them. */
async function sendMany (from: NodeProc, to: string, count: number, tag: string): Promise<string[]> {
  const sent: string[] = []
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, count - i) }, async (_, j) =>
      await from.api!.call<MessageView>('POST', '/messages', { to, text: `${tag} ${i + j}` })))
    sent.push(...batch.map(m => m.id))
  }
  return sent
}

try {
  lan.up()
  const load = loadavg()[0]!.toFixed(1)
  const base = await bareBaselines()
  if (PROF) await mkdir(profDir, { recursive: true })
  await Promise.all(nodes.map(async n => { await n.start() }))
  const [b, a, ...others] = nodes as [NodeProc, NodeProc, ...NodeProc[]]
  const idB = (await b.api!.call<IdentityView>('GET', '/identity')).peerId
  const stored = new Stored(b.events)
  for (const s of [a, ...others]) {
    await until(async () => (await s.api!.call<PeerView[]>('GET', '/peers')).some(p => p.online && p.peerId === idB), 'B online', 30_000)
    for (let i = 0; i < 20; i++) await s.api!.call('POST', '/messages', { to: idB, text: `warm ${i}`, wait: 'delivered' })
  }

  const lat: number[] = []
  for (let i = 0; i < N; i++) {
    const t0 = performance.now()
    const m = await a.api!.call<MessageView>('POST', '/messages', { to: idB, text: `lat ${i}` })
    await until(() => stored.has(m.id), 'stored at B', 10_000, 0.2)
    lat.push(performance.now() - t0)
  }
  const rtt: number[] = []
  for (let i = 0; i < N; i++) {
    const t0 = performance.now()
    await a.api!.call('POST', '/messages', { to: idB, text: `rtt ${i}`, wait: 'delivered' })
    rtt.push(performance.now() - t0)
  }

  let t0 = performance.now()
  const sent = await sendMany(a, idB, BURST, 'burst')
  const appendedMs = performance.now() - t0
  await until(() => stored.count(sent.slice(-50)) === 50 && stored.count(sent) === BURST, 'burst at B', 120_000, 5)
  const burstMs = performance.now() - t0

  t0 = performance.now()
  const four = (await Promise.all([a, ...others].map(async (s, i) => await sendMany(s, idB, BURST / 4, `four ${i}`)))).flat()
  await until(() => stored.count(four) === four.length, '4 → 1 at B', 120_000, 5)
  const fourMs = performance.now() - t0

  lat.sort((x, y) => x - y); rtt.sort((x, y) => x - y)
  const burstPerS = BURST / burstMs * 1000
  const fourPerS = four.length / fourMs * 1000
  console.log(JSON.stringify({
    messages: N,
    loadAverageAtStart: load,
    bare: {
      requestAckBothFsyncMs: { p50: f(base.p50), p99: f(base.p99) },
      groupCommit32InFlightPerSecond: Math.round(base.one),
      groupCommit4ClientsPerSecond: Math.round(base.four)
    },
    latencyMs: { p50: f(percentile(lat, 50)), p99: f(percentile(lat, 99)), max: f(lat.at(-1) ?? NaN) },
    latencyRatio: { p50: ratio(percentile(lat, 50), base.p50), p99: ratio(percentile(lat, 99), base.p99), goal: 'p50 ≤ 1.5, p99 ≤ 3' },
    ackRoundTripMs: { p50: f(percentile(rtt, 50)), p99: f(percentile(rtt, 99)), ratioP50: ratio(percentile(rtt, 50), base.p50) },
    burst: { messages: BURST, acceptedByApiMs: Math.round(appendedMs), ms: Math.round(burstMs), perSecond: Math.round(burstPerS), ratio: ratio(burstPerS, base.one), goal: '≥ 0.5' },
    fourToOne: { messages: four.length, ms: Math.round(fourMs), perSecond: Math.round(fourPerS), ratio: ratio(fourPerS, base.four), goal: '≥ 0.5' },
    ...(PROF ? { cpuProfiles: profDir } : {})
  }, null, 2))
} finally {
  await Promise.all(nodes.map(async n => { await n.stop() }))
  for (const c of children) await stopChild(c)
  lan.down()
  if (!PROF) await removeDir(dir)
}
process.exit(0)
