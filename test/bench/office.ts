/**
 * npm run bench:office: one real Parley node (a `parley start` process) joins
 * an office of N emulated colleagues on one LAN in network namespaces
 * (office-colleagues.ts: real hosts with the same discovery and connection
 * protocol, many per process, each with its own IP). For N = 10 (the
 * baseline, in the same run), 50, 200 and 500 it measures: time from the
 * node's start until it lists everyone online; over an idle window its CPU,
 * the mDNS packets it receives per second, its connections and RSS; and a
 * group message to 200 (or all, when fewer) until every member stored it.
 *
 * Namespaces poff-*: created and deleted by exact name; every process is
 * stopped by PID; bounded in time (each phase has a deadline).
 * BENCH_SIZES=10,50 limits the sizes; BENCH_IDLE_S sets the idle window (20).
 */
import { execFileSync, type ChildProcess } from 'node:child_process'
import { createWriteStream, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { canUseNamespaces } from '../helpers/netns.js'
import { NodeProc, cpuTicks, rssKiB, spawnReady, stopChild } from '../helpers/proc.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { GroupView, MessageView } from '../../node/src/api/contract.js'
import type { PeerView } from '../../node/src/messaging/messenger.js'
import type { HostStats } from '../../node/src/host/types.js'

const SIZES = (process.env.BENCH_SIZES ?? '10,50,200,500').split(',').map(Number)
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


interface Colleagues { procs: ChildProcess[], peers: string[], status: Array<{ minSeen: number, delivered: Record<string, number> } | undefined> }

async function startColleagues (n: number, dir: string): Promise<Colleagues> {
  const groups = Array.from({ length: Math.ceil(n / PER_NS) }, (_, j) => j)
  const status: Colleagues['status'] = []
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
        if (line.startsWith('status ')) status[j] = JSON.parse(line.slice(7))
      }
    })
    return { child, peers: JSON.parse(readFileSync(peersFile, 'utf8')) as string[] }
  }))
  const ok = started.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  if (ok.length !== started.length) {
    for (const c of ok) await stopChild(c.child)
    throw (started.find(r => r.status === 'rejected') as PromiseRejectedResult).reason
  }
  return { procs: ok.map(c => c.child), peers: ok.flatMap(c => c.peers), status }
}

async function run (n: number, dir: string): Promise<Record<string, unknown>> {
  up(n)
  const c = await startColleagues(n, dir)
  const node = new NodeProc({ dataDir: join(dir, `node-${n}`), name: 'Bench', netns: `${P}-n`, args: ['--listen', '/ip4/0.0.0.0/tcp/4001'], logFile: join(dir, `node-${n}.log`) })
  try {
    // the office is warm: every colleague lists the others (bounded: go on after 120 s and say so)
    const warm = await until(() => c.status.length === c.procs.length && c.status.every(s => (s?.minSeen ?? 0) >= n - 1), 'warm office', 120_000, 250).then(() => true, () => false)
    await node.start(60_000)
    const pid = node.pid as number
    const startedAt = node.startedAt
    const seenAll = await until(async () => (await node.api!.call<PeerView[]>('GET', '/peers')).filter(p => p.online).length >= n, 'the node sees everyone', 60_000, 100)
      .then(() => Date.now() - startedAt, () => NaN)
    // idle: a few seconds for the start-up queries, then the window
    await new Promise(resolve => setTimeout(resolve, 5000))
    const st0 = await node.api!.call<{ host: HostStats, connections: number }>('GET', '/status')
    const cpu0 = cpuTicks(pid)
    const t0 = Date.now()
    await new Promise(resolve => setTimeout(resolve, IDLE_S * 1000))
    const cpu1 = cpuTicks(pid)
    const st1 = await node.api!.call<{ host: HostStats, connections: number }>('GET', '/status')
    const secs = (Date.now() - t0) / 1000
    const idleCpuPct = ((cpu1 - cpu0) / CLK_TCK) / secs * 100
    const pktsPerS = ((st1.host.mdns?.packetsIn ?? 0) - (st0.host.mdns?.packetsIn ?? 0)) / secs
    const rss = rssKiB(pid)
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
    await until(() => mostDelivered() >= members.length, 'group created at every member', 180_000, 100)
    const createMs = Date.now() - g0
    const m0 = Date.now()
    const m = await node.api!.call<MessageView>('POST', '/messages', { to: group.id, text: 'all hands', wait: 'delivered', timeoutMs: 180_000 })
    const groupMs = Date.now() - m0
    const st2 = await node.api!.call<{ host: HostStats, connections: number }>('GET', '/status')
    return {
      colleagues: n,
      warm,
      seeEveryoneMs: seenAll,
      idleCpuPct: Number(idleCpuPct.toFixed(2)),
      mdnsPacketsInPerS: Number(pktsPerS.toFixed(2)),
      connectionsIdle: st1.connections,
      rssMiB: Number((rss / 1024).toFixed(1)),
      groupMembers: members.length + 1,
      groupCreateMs: createMs,
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
    const r = await run(n, dir)
    results.push(r)
    console.error(JSON.stringify(r))
  }
} finally {
  stopAll()
}
const base = results.find(r => r.colleagues === 10) ?? results[0]!
const r50 = results.find(r => r.colleagues === 50)
const r500 = results.find(r => r.colleagues === 500)
const ratio = (a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined, k: string): number | null =>
  a === undefined || b === undefined ? null : Number((Number(a[k]) / Number(b[k])).toFixed(2))
console.log(JSON.stringify({
  results,
  ratios: {
    idleCpu500vs50: ratio(r500, r50, 'idleCpuPct'),
    packets500vs50: ratio(r500, r50, 'mdnsPacketsInPerS'),
    idleCpu50vs10: ratio(r50, base, 'idleCpuPct')
  },
  rssKiBPerPeer: r500 !== undefined ? Number(((Number(r500.rssMiB) - Number(base.rssMiB)) * 1024 / (500 - Number(base.colleagues))).toFixed(1)) : null
}, null, 2))
await removeDir(dir)
