/**
 * npm run bench: message latency and throughput between two hosts in network
 * namespaces (real processes, real mDNS, TCP + Noise + yamux, LevelDB fsync on
 * both sides). Bounded: N messages, then everything is torn down.
 *
 *   latency  = API call at the sender -> messageStored event at the receiver
 *   ack RTT  = POST /messages?wait=delivered round trip (durable at both ends)
 */
import { join } from 'node:path'
import { NetnsLan, canUseNamespaces } from '../helpers/netns.js'
import { NodeProc } from '../helpers/proc.js'
import { percentile } from '../helpers/audit.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { IdentityView, MessageView } from '../../node/src/api/contract.js'
import type { PeerView } from '../../node/src/messaging/messenger.js'

const N = Number(process.env.BENCH_N ?? 500)
const BURST = Number(process.env.BENCH_BURST ?? 2000)

const why = canUseNamespaces()
if (why !== null) { console.error(why); process.exit(1) }
const lan = new NetnsLan('pbench', 2, '10.231.9')
const dir = await tmpDir('parley-bench-')
const nodes = lan.hosts.map((h, i) => new NodeProc({ dataDir: join(dir, h.name), name: `N${i}`, netns: h.name, args: ['--listen', '/ip4/0.0.0.0/tcp/4001'], logFile: join(dir, `${h.name}.log`) }))
try {
  lan.up()
  await Promise.all(nodes.map(async n => { await n.start() }))
  const [a, b] = nodes as [NodeProc, NodeProc]
  const idB = (await b.api!.call<IdentityView>('GET', '/identity')).peerId
  await until(async () => (await a.api!.call<PeerView[]>('GET', '/peers')).some(p => p.online && p.peerId === idB), 'connection', 20_000)
  // warm up
  for (let i = 0; i < 20; i++) await a.api!.call('POST', '/messages', { to: idB, text: `warm ${i}`, wait: 'delivered' })

  const lat: number[] = []
  for (let i = 0; i < N; i++) {
    const t0 = performance.now()
    const m = await a.api!.call<MessageView>('POST', '/messages', { to: idB, text: `lat ${i}` })
    await until(() => b.events.some(e => e.event.type === 'messageStored' && (e.event.data as MessageView).id === m.id), 'stored at B', 10_000, 0.2)
    lat.push(performance.now() - t0)
  }
  const rtt: number[] = []
  for (let i = 0; i < N; i++) {
    const t0 = performance.now()
    await a.api!.call('POST', '/messages', { to: idB, text: `rtt ${i}`, wait: 'delivered' })
    rtt.push(performance.now() - t0)
  }
  const t0 = performance.now()
  const sent: string[] = []
  for (let i = 0; i < BURST; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, BURST - i) }, async (_, j) => await a.api!.call<MessageView>('POST', '/messages', { to: idB, text: `burst ${i + j}` })))
    sent.push(...batch.map(m => m.id))
  }
  const appendedMs = performance.now() - t0
  const last = sent.at(-1)
  await until(() => b.events.some(e => e.event.type === 'messageStored' && (e.event.data as MessageView).id === last), 'burst at B', 120_000, 5)
  const burstMs = performance.now() - t0
  lat.sort((x, y) => x - y); rtt.sort((x, y) => x - y)
  const f = (x: number): string => x.toFixed(2)
  console.log(JSON.stringify({
    messages: N,
    latencyMs: { p50: f(percentile(lat, 50)), p99: f(percentile(lat, 99)), max: f(lat.at(-1) ?? NaN) },
    ackRoundTripMs: { p50: f(percentile(rtt, 50)), p99: f(percentile(rtt, 99)) },
    burst: { messages: BURST, acceptedByApiMs: Math.round(appendedMs), ms: Math.round(burstMs), perSecond: Math.round(BURST / burstMs * 1000) }
  }, null, 2))
} finally {
  await Promise.all(nodes.map(async n => { await n.stop() }))
  lan.down()
  await removeDir(dir)
}
