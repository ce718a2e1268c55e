/**
 * npm run bench:office: one real Parley node (a `parley start` process) joins
 * an office of N emulated colleagues on one LAN in network namespaces
 * (office-colleagues.ts: real hosts with the same connection protocol and
 * each its own mDNS responder, many per process, each with its own IP, one
 * shared mDNS browser per process). For N = 10 (the
 * baseline, in the same run), 50, 200 and 500 it measures: time from the
 * node's start until it lists everyone online; over an idle window its CPU,
 * the mDNS packets it receives per second (all, and those from others: not
 * its own multicasts handed back by the loopback), its connections and RSS
 * (its V8 flags as the launchers give them; BENCH_V8_DEFAULTS=1: V8's); and a
 * group message to 200 (or all, when fewer) until every member stored it.
 * Also, to tell whether the node or the emulation is the limit: the CPU of
 * the colleagues' processes in each phase, the UDP datagrams the kernel
 * dropped for a full receive buffer in the node's namespace, the worst
 * event-loop delay of the node and of the colleagues' processes (late
 * answers come from a loop that runs late), and the node's live heap after a
 * forced GC (test/bench/heap-probe.mjs) besides its RSS.
 * The summary gives each size against the N=10 baseline of the same run, the
 * flat-in-N ratios (CPU and packets/s, 200 and 500 against 50), the memory
 * per known peer, and the issue's goals met or not; a size whose office was
 * not warm before the node started is marked so.
 *
 * Namespaces poff-*: created and deleted by exact name; every process is
 * stopped by PID; bounded in time (each phase has a deadline).
 * BENCH_SIZES=50,200 limits the sizes (10, the baseline, is always run
 * first); BENCH_IDLE_S sets the idle window (20); KEEP_LOGS=1 keeps the logs.
 */
import { execFileSync, type ChildProcess } from 'node:child_process'
import { createWriteStream, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { canUseNamespaces } from '../helpers/netns.js'
import { NodeProc, cpuTicks, rssKiB, spawnReady, stopChild } from '../helpers/proc.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { GroupView, MessageView } from '../../node/src/api/contract.js'
import type { PeerView } from '../../node/src/messaging/messenger.js'
import type { HostStats } from '../../node/src/host/types.js'

const BASELINE = 10
const SIZES = [...new Set([BASELINE, ...(process.env.BENCH_SIZES ?? '50,200,500').split(',').map(Number).filter(n => n > 0)])]
/** the node's connection cap (DEFAULT_MAX_CONNECTIONS) */
const CAP = 64
const HEAP_PROBE = new URL('./heap-probe.mjs', import.meta.url).pathname
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 20)
const PER_NS = 125
const GROUP_MAX = 200
const COLLEAGUES = new URL('./office-colleagues.ts', import.meta.url).pathname
const P = 'poff'
const CLK_TCK = 100

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
const nsList = (): string[] => ip('netns', 'list').split('\n').map(l => l.split(' ')[0] ?? '').filter(Boolean)
const colleagueNs = (j: number): string => `${P}-c${j + 1}`
const colleagueIp = (i: number): string => `10.233.${1 + Math.floor(i / PER_NS)}.${1 + (i % PER_NS)}`

function down (): void {
  const want = [`${P}-n`, ...Array.from({ length: 8 }, (_, j) => colleagueNs(j)), `${P}-br`]
  for (const ns of nsList().filter(n => want.includes(n))) {
    for (const pid of ip('netns', 'pids', ns).split('\n').map(Number).filter(n => n > 0)) { try { process.kill(pid, 'SIGKILL') } catch {} }
    ip('netns', 'del', ns)
  }
}

/** bridge + the node's namespace (10.233.0.1) + one namespace per 125 colleagues, all on 10.233.0.0/16 */
function up (colleagues: number): void {
  down()
  const br = `${P}-br`
  ip('netns', 'add', br)
  ip('-n', br, 'link', 'add', 'br0', 'type', 'bridge')
  ip('-n', br, 'link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0')
  ip('-n', br, 'link', 'set', 'br0', 'up')
  const attach = (ns: string, port: string, addrs: string[]): void => {
    ip('netns', 'add', ns)
    ip('-n', ns, 'link', 'set', 'lo', 'up')
    ip('-n', br, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'lan0', 'netns', ns)
    ip('-n', br, 'link', 'set', port, 'master', 'br0')
    ip('-n', br, 'link', 'set', port, 'up')
    for (const a of addrs) ip('-n', ns, 'addr', 'add', `${a}/16`, 'dev', 'lan0')
    ip('-n', ns, 'link', 'set', 'lan0', 'up')
    ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'lan0')
  }
  attach(`${P}-n`, 'vn', ['10.233.0.1'])
  for (let j = 0; j * PER_NS < colleagues; j++) {
    attach(colleagueNs(j), `vc${j + 1}`, Array.from({ length: Math.min(PER_NS, colleagues - j * PER_NS) }, (_, k) => colleagueIp(j * PER_NS + k)))
  }
}


/** UDP counters of a namespace (/proc/net/snmp): datagrams in, and those dropped for a full receive buffer. */
function udpCounters (ns: string): { inDatagrams: number, rcvbufErrors: number } {
  const lines = execFileSync('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp'], { encoding: 'utf8' }).split('\n').filter(l => l.startsWith('Udp:'))
  const keys = (lines[0] ?? '').split(/\s+/)
  const vals = (lines[1] ?? '').split(/\s+/).map(Number)
  const get = (k: string): number => vals[keys.indexOf(k)] ?? NaN
  return { inDatagrams: get('InDatagrams'), rcvbufErrors: get('RcvbufErrors') }
}

/**
 * The node's live heap after a forced GC, KiB, and the worst delay of its
 * event loop since the last probe, ms (heap-probe.mjs answers SIGUSR2).
 */
interface Probe { heapKiB: number, lagMaxMs: number, rssBeforeGcKiB: number, rssAfterGcKiB: number, heapTotalKiB: number, newSpaceKiB: number }
async function probe (pid: number): Promise<Probe> {
  const file = `/tmp/parley-heap-${pid}.json`
  rmSync(file, { force: true })
  process.kill(pid, 'SIGUSR2')
  type Raw = { heapUsed: number, heapTotal: number, external: number, rss: number, rssBeforeGc: number, lagMaxMs: number, spaces: Record<string, { size: number }> }
  const m = await until(() => { try { return JSON.parse(readFileSync(file, 'utf8')) as Raw } catch { return undefined } }, 'heap probe', 10_000, 50)
  rmSync(file, { force: true })
  const kib = (b: number | undefined): number => Math.round((b ?? 0) / 1024)
  return {
    heapKiB: kib(m.heapUsed + m.external),
    lagMaxMs: m.lagMaxMs,
    rssBeforeGcKiB: kib(m.rssBeforeGc),
    rssAfterGcKiB: kib(m.rss),
    heapTotalKiB: kib(m.heapTotal),
    newSpaceKiB: kib(m.spaces.new_space?.size)
  }
}

const ticksOf = (procs: ChildProcess[]): number => procs.reduce((n, p) => { try { return n + cpuTicks(p.pid as number) } catch { return n } }, 0)

/** Timestamp of the node's first JSON log line `msg`. */
function logAt (n: NodeProc, msg: string): number {
  for (const line of n.logText().split('\n')) {
    if (!line.startsWith('{')) continue
    const o = JSON.parse(line) as { msg?: string, at?: number }
    if (o.msg === msg && typeof o.at === 'number') return o.at
  }
  return NaN
}

interface Colleagues {
  procs: ChildProcess[]
  peers: string[]
  status: Array<{ seen: number, delivered: Record<string, number>, lagMs?: number } | undefined>
  /** the worst event-loop delay any colleague process reported since the last reset, ms */
  lagPeak: { ms: number }
}

async function startColleagues (n: number, dir: string): Promise<Colleagues> {
  const groups = Array.from({ length: Math.ceil(n / PER_NS) }, (_, j) => j)
  const status: Colleagues['status'] = []
  const lagPeak = { ms: 0 }
  const started = await Promise.allSettled(groups.map(async (j) => {
    const ips = Array.from({ length: Math.min(PER_NS, n - j * PER_NS) }, (_, k) => colleagueIp(j * PER_NS + k))
    const log = createWriteStream(join(dir, `colleagues-${n}-${j}.log`))
    const peersFile = join(dir, `peers-${n}-${j}.json`)
    const child = await spawnReady([process.execPath, '--import', 'tsx', COLLEAGUES, JSON.stringify({ ips, startPerSecond: 40, peersFile })], colleagueNs(j), log, `colleagues ${j}`, 180_000)
    let buf = ''
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString()
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        if (line.startsWith('status ')) {
          status[j] = JSON.parse(line.slice(7))
          lagPeak.ms = Math.max(lagPeak.ms, status[j]?.lagMs ?? 0)
        }
      }
    })
    return { child, peers: JSON.parse(readFileSync(peersFile, 'utf8')) as string[] }
  }))
  const ok = started.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  if (ok.length !== started.length) {
    for (const c of ok) await stopChild(c.child)
    throw (started.find(r => r.status === 'rejected') as PromiseRejectedResult).reason
  }
  return { procs: ok.map(c => c.child), peers: ok.flatMap(c => c.peers), status, lagPeak }
}

async function run (n: number, dir: string): Promise<Record<string, unknown>> {
  up(n)
  const c = await startColleagues(n, dir)
  const node = new NodeProc({ dataDir: join(dir, `node-${n}`), name: 'Bench', netns: `${P}-n`, args: ['--listen', '/ip4/0.0.0.0/tcp/4001'], logFile: join(dir, `node-${n}.log`), nodeArgs: ['--expose-gc', '--import', HEAP_PROBE] })
  const nodeNs = `${P}-n`
  const pct = (ticks: number, ms: number): number => Number(((ticks / CLK_TCK) / (ms / 1000) * 100).toFixed(2))
  try {
    // the office is warm: every colleague lists the others (bounded: go on after 120 s and say so)
    const w0 = Date.now()
    const warm = await until(() => c.status.length === c.procs.length && c.status.every(s => (s?.seen ?? 0) >= n), 'warm office', 120_000, 250).then(() => true, () => false)
    const warmMs = Date.now() - w0
    // a few seconds for the colleagues' own start-up queries to pass
    await new Promise(resolve => setTimeout(resolve, 3000))
    const udp0 = udpCounters(nodeNs)
    const ct0 = ticksOf(c.procs)
    c.lagPeak.ms = 0
    await node.start(60_000)
    const pid = node.pid as number
    const startedAt = node.startedAt
    const seenAll = await until(async () => (await node.api!.call<PeerView[]>('GET', '/peers')).filter(p => p.online).length >= n, 'the node sees everyone', 60_000, 200)
      .then(() => Date.now() - startedAt, () => NaN)
    const discoveryMs = Date.now() - startedAt
    // what the discovery cost the node (its start-up included) and the emulated colleagues, and what the kernel dropped
    const nodeDiscoveryCpuPct = pct(cpuTicks(pid), discoveryMs)
    const colleaguesDiscoveryCpuPct = pct(ticksOf(c.procs) - ct0, discoveryMs)
    const udp1 = udpCounters(nodeNs)
    const colleaguesLagDuringDiscoveryMs = c.lagPeak.ms
    const nodeLagDuringDiscoveryMs = (await probe(pid)).lagMaxMs
    // the same from the node's own "host started" log line: discovery alone, without the process start-up
    const hostStartedAt = logAt(node, 'host started')
    const seenAfterHostStartMs = startedAt + seenAll - hostStartedAt
    // idle: a few seconds for the start-up queries, then the window
    await new Promise(resolve => setTimeout(resolve, 5000))
    const st0 = await node.api!.call<{ host: HostStats, connections: number }>('GET', '/status')
    const cpu0 = cpuTicks(pid)
    const cc0 = ticksOf(c.procs)
    const udp2 = udpCounters(nodeNs)
    await probe(pid)
    c.lagPeak.ms = 0
    const t0 = Date.now()
    await new Promise(resolve => setTimeout(resolve, IDLE_S * 1000))
    const cpu1 = cpuTicks(pid)
    const cc1 = ticksOf(c.procs)
    const udp3 = udpCounters(nodeNs)
    const st1 = await node.api!.call<{ host: HostStats, connections: number }>('GET', '/status')
    const secs = (Date.now() - t0) / 1000
    const idleCpuPct = ((cpu1 - cpu0) / CLK_TCK) / secs * 100
    const pktsPerS = ((st1.host.mdns?.packetsIn ?? 0) - (st0.host.mdns?.packetsIn ?? 0)) / secs
    // by kind: queries and responses heard, and our own multicasts handed back by the loopback (in both)
    const kind = (k: 'queriesIn' | 'responsesIn' | 'ownIn'): number => Number((((st1.host.mdns?.[k] ?? 0) - (st0.host.mdns?.[k] ?? 0)) / secs).toFixed(2))
    const rss = rssKiB(pid)
    const colleaguesLagIdleMs = c.lagPeak.ms
    const mem = await probe(pid)
    const { heapKiB, lagMaxMs: nodeLagIdleMs } = mem
    // a group of up to 200 (the node and 199 colleagues)
    const members = c.peers.slice(0, Math.min(n, GROUP_MAX - 1))
    const g0 = Date.now()
    const group = await node.api!.call<GroupView>('POST', '/groups', { name: `Office ${n}`, members })
    // the create op (the only envelope so far) stored by every member: the most-delivered id, summed over processes
    const mostDelivered = (): number => {
      const sum = new Map<string, number>()
      for (const st of c.status) for (const [id, k] of Object.entries(st?.delivered ?? {})) sum.set(id, (sum.get(id) ?? 0) + k)
      return Math.max(0, ...sum.values())
    }
    // bounded: a member short after 180 s is reported (how many stored it), not a crash of the whole run
    const created = await until(() => mostDelivered() >= members.length, 'group created at every member', 180_000, 100).then(() => true, () => false)
    const createMs = created ? Date.now() - g0 : null
    const createStoredBy = mostDelivered()
    const m0 = Date.now()
    // not delivered to every member within the API's wait: reported (state and time), not a crash of the run
    const m = await node.api!.call<MessageView>('POST', '/messages', { to: group.id, text: 'all hands', wait: 'delivered', timeoutMs: 180_000 })
      .catch((err: Error) => ({ state: `not delivered: ${err.message.slice(0, 80)}` }))
    const groupMs = Date.now() - m0
    const st2 = await node.api!.call<{ host: HostStats, connections: number }>('GET', '/status')
    return {
      colleagues: n,
      warm,
      warmMs,
      seeEveryoneMs: seenAll,
      seeEveryoneAfterHostStartMs: seenAfterHostStartMs,
      nodeDiscoveryCpuPct,
      colleaguesDiscoveryCpuPct,
      udpDroppedDuringDiscovery: udp1.rcvbufErrors - udp0.rcvbufErrors,
      nodeLagDuringDiscoveryMs,
      colleaguesLagDuringDiscoveryMs,
      udpInDuringDiscovery: udp1.inDatagrams - udp0.inDatagrams,
      idleCpuPct: Number(idleCpuPct.toFixed(2)),
      colleaguesIdleCpuPct: pct(cc1 - cc0, secs * 1000),
      mdnsPacketsInPerS: Number(pktsPerS.toFixed(2)),
      mdnsIdlePerS: { queries: kind('queriesIn'), responses: kind('responsesIn'), ownLoopedBack: kind('ownIn') },
      // what the others send us: our own queries come back through the loopback, and each carries our
      // known answers (several datagrams at 500), so the total grows with N even when nobody else speaks
      mdnsFromOthersPerS: Number(Math.max(0, pktsPerS - kind('ownIn')).toFixed(2)),
      udpDroppedIdle: udp3.rcvbufErrors - udp2.rcvbufErrors,
      nodeLagIdleMs,
      colleaguesLagIdleMs,
      connectionsIdle: st1.connections,
      rssMiB: Number((rss / 1024).toFixed(1)),
      heapAfterGcMiB: Number((heapKiB / 1024).toFixed(1)),
      rssAfterGcMiB: Number((mem.rssAfterGcKiB / 1024).toFixed(1)),
      heapCommittedMiB: Number((mem.heapTotalKiB / 1024).toFixed(1)),
      newSpaceMiB: Number((mem.newSpaceKiB / 1024).toFixed(1)),
      groupMembers: members.length + 1,
      groupCreateMs: createMs,
      groupCreateStoredBy: createStoredBy,
      groupMessageMs: groupMs,
      groupState: m.state,
      connectionsPeak: st2.host.connections.peakConnections,
      connectionsAfter: st2.connections,
      ttlS: st1.host.mdns?.ttlS
    }
  } finally {
    await node.stop()
    for (const p of c.procs) await stopChild(p)
  }
}

const why = canUseNamespaces()
if (why !== null) { console.error(`bench:office needs network namespaces: ${why}`); process.exit(1) }
const dir = await tmpDir('parley-office-')
const results: Array<Record<string, unknown>> = []
const stopAll = (): void => { try { down() } catch {} }
process.on('SIGINT', () => { stopAll(); process.exit(130) })
try {
  for (const n of SIZES) {
    // a size that fails (a phase past its deadline) is recorded, and the run goes on with the next
    const r = await run(n, dir).catch((err: Error) => ({ colleagues: n, failed: err.message.slice(0, 200) }))
    results.push(r)
    console.error(JSON.stringify(r))
  }
} finally {
  stopAll()
}
type Row = Record<string, unknown>
const base = results.find(r => r.colleagues === BASELINE) as Row
const at = (n: number): Row | undefined => results.find(r => r.colleagues === n)
const ratio = (a: Row | undefined, b: Row | undefined, k: string): number | null =>
  a === undefined || b === undefined ? null : Number((Number(a[k]) / Math.max(Number(b[k]), 0.01)).toFixed(2))
/** memory growth per known peer against the baseline, KiB */
const perPeer = (r: Row, k: string): number | null => r === base ? null : Number(((Number(r[k]) - Number(base[k])) * 1024 / (Number(r.colleagues) - BASELINE)).toFixed(1))
/**
 * Memory per known peer as the slope of a least-squares line through the sizes from 50 up, KiB per peer:
 * what one more colleague costs, without the constant parts that differ between the baseline and an office
 * (V8's new space, which grows with the allocation rate of the start-up, not with what is kept).
 */
const slope = (k: string): number | null => {
  const pts = results.filter(r => Number(r.colleagues) >= 50).map(r => [Number(r.colleagues), Number(r[k]) * 1024] as const).filter(([, y]) => Number.isFinite(y))
  if (pts.length < 2) return null
  const mx = pts.reduce((a, [x]) => a + x, 0) / pts.length
  const my = pts.reduce((a, [, y]) => a + y, 0) / pts.length
  const sxx = pts.reduce((a, [x]) => a + (x - mx) ** 2, 0)
  return sxx === 0 ? null : Number((pts.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / sxx).toFixed(1))
}
const largest = results.at(-1) as Row
const flat = (k: string): Record<string, number | null> => Object.fromEntries(results.filter(r => Number(r.colleagues) > 50).map(r => [`${String(r.colleagues)}vs50`, ratio(r, at(50), k)]))
/** null when there is nothing to compare (no size above 50 in this run) */
const within2x = (r: Record<string, number | null>): boolean | null => Object.keys(r).length === 0 ? null : Object.values(r).every(x => x !== null && x <= 2)
const summary = {
  results,
  notWarm: results.filter(r => r.warm !== true).map(r => r.colleagues),
  vsBaseline: results.filter(r => r !== base).map(r => ({
    colleagues: r.colleagues,
    seeEveryone: ratio(r, base, 'seeEveryoneAfterHostStartMs'),
    idleCpu: ratio(r, base, 'idleCpuPct'),
    packetsPerS: ratio(r, base, 'mdnsPacketsInPerS'),
    rssKiBPerKnownPeer: perPeer(r, 'rssMiB'),
    heapKiBPerKnownPeer: perPeer(r, 'heapAfterGcMiB')
  })),
  flatInN: { idleCpu: flat('idleCpuPct'), packetsPerS: flat('mdnsPacketsInPerS'), packetsFromOthersPerS: flat('mdnsFromOthersPerS') },
  kiBPerKnownPeerSlopeFrom50: { rss: slope('rssMiB'), rssAfterGc: slope('rssAfterGcMiB'), heapAfterGc: slope('heapAfterGcMiB'), heapCommitted: slope('heapCommittedMiB') },
  goals: {
    [`seenWithin10sOfHostStartAt${String(largest.colleagues)}`]: Number(largest.seeEveryoneAfterHostStartMs) <= 10_000,
    [`seenWithin10sOfSpawnAt${String(largest.colleagues)}`]: Number(largest.seeEveryoneMs) <= 10_000,
    idleCpuWithin2xFrom50: within2x(flat('idleCpuPct')),
    packetsWithin2xFrom50: within2x(flat('mdnsPacketsInPerS')),
    packetsFromOthersWithin2xFrom50: within2x(flat('mdnsFromOthersPerS')),
    connectionsWithinCap: results.every(r => Number(r.connectionsPeak) <= CAP),
    rssAtMost50KiBPerKnownPeer: (perPeer(largest, 'rssMiB') ?? Infinity) <= 50,
    rssSlopeAtMost50KiBPerKnownPeer: (slope('rssAfterGcMiB') ?? Infinity) <= 50,
    heapAtMost50KiBPerKnownPeer: (perPeer(largest, 'heapAfterGcMiB') ?? Infinity) <= 50,
    heapSlopeAtMost50KiBPerKnownPeer: (slope('heapAfterGcMiB') ?? Infinity) <= 50
  }
}
console.log(JSON.stringify(summary, null, 2))
if (process.env.KEEP_LOGS === '1') console.error(`office bench logs kept in ${dir}`)
else await removeDir(dir)
