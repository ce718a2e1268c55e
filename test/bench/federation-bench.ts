/**
 * Federation figures (npm run bench:federation), with their baseline in the
 * same run: two office relays on loopback, paired; Ana and Dee at relay A,
 * Bo at relay B, every node in this process, no mDNS, no direct dial between
 * the offices. The nodes poll their mailbox only once a minute, so what
 * arrives in time was pushed.
 *
 *   cross-office: Ana -> Bo, node -> relay A -> relay B -> node
 *   baseline:     Ana -> Dee, the single-relay path (relay A's circuit or mailbox: the route is printed)
 *
 * For each: latency from send to stored at the recipient, one message at a
 * time (p50, p99), and messages/s for a burst; then the ratios. Bounded:
 * BENCH_ROUNDS (default 100) and BENCH_BURST (default 500) messages per path.
 */
import { join } from 'node:path'
import { percentile } from '../helpers/audit.js'
import { loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { StoredMessage } from '../../node/src/store/types.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 100)
const BURST = Number(process.env.BENCH_BURST ?? 500)
const dir = await tmpDir('parley-fed-bench-')
const relays: RelayServer[] = []
const nodes: ParleyNode[] = []
const deadline = setTimeout(() => { console.error('bench:federation: over 10 minutes, stopping'); process.exit(1) }, 600_000)
deadline.unref()

const relay = async (name: string): Promise<RelayServer> => {
  const r = new RelayServer({ dataDir: join(dir, name), listen: ['/ip4/127.0.0.1/tcp/0'], admin: { port: null },
    federation: { allowed: true, name, tickMs: 200, retryMinMs: 200, retryMaxMs: 2000 } }, createLogger(name, 'error'))
  await r.start()
  relays.push(r)
  return r
}
const node = async (name: string, r: RelayServer): Promise<ParleyNode> => {
  const n = loopbackNode(join(dir, name), {
    name, relay: r.addresses()[0], invite: (await r.mailbox.createInvite()).token,
    relayClient: { mailboxPollMs: 60_000 }, // the product's defaults (loopbackNode's are a test's): retry pass every 2 s, deposit after 1 s
    messenger: { depositAfterMs: 1000, retryIntervalMs: 2000 }
  })
  await n.start()
  nodes.push(n)
  await until(() => n.relay.status().admitted === true, `${name} admitted`, 30_000)
  return n
}

/** resolves when `to` has stored message `id` */
const storedAt = (to: ParleyNode): ((id: string) => Promise<number>) => {
  const waiting = new Map<string, (t: number) => void>()
  const early = new Map<string, number>()
  to.messenger.addEventListener('messageStored', (e: CustomEvent<StoredMessage>) => {
    const t = performance.now()
    const w = waiting.get(e.detail.id)
    if (w !== undefined) { waiting.delete(e.detail.id); w(t) } else early.set(e.detail.id, t)
  })
  return async (id) => {
    const t = early.get(id)
    if (t !== undefined) { early.delete(id); return t }
    return await new Promise<number>(resolve => { waiting.set(id, resolve) })
  }
}

async function measure (from: ParleyNode, to: ParleyNode, label: string): Promise<{ p50: number, p99: number, perSecond: number, route: string }> {
  const stored = storedAt(to)
  const warm = await from.messenger.sendMessage(to.peerId, `${label} warm up`)
  await stored(warm.id)
  const lat: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now()
    const m = await from.messenger.sendMessage(to.peerId, `${label} ${i}`)
    lat.push(await stored(m.id) - t0)
  }
  lat.sort((x, y) => x - y)
  const t0 = performance.now()
  const ids: string[] = []
  for (let i = 0; i < BURST; i++) ids.push((await from.messenger.sendMessage(to.peerId, `${label} burst ${i}`)).id)
  let last = t0
  for (const id of ids) last = Math.max(last, await stored(id))
  const got = (await to.messenger.history(from.peerId, { limit: 1 }))[0]
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), perSecond: BURST / (last - t0) * 1000, route: got?.via ?? '?' }
}

try {
  const a = await relay('officeA')
  const b = await relay('officeB')
  await b.federation.add((await a.federation.invite()).token)
  const ana = await node('Ana', a)
  const dee = await node('Dee', a)
  const bo = await node('Bo', b)
  await bo.relay.publish({ listed: true, name: 'Bo' })
  // listed at A once relay B holds Bo's signed record naming it as home (relay A checks that claim)
  for (let i = 0; i < 100 && !(await ana.relay.offices('')).some(p => p.peerId === bo.peerId); i++) {
    await a.federation.refreshDirectories()
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const single = await measure(ana, dee, 'single relay')
  const fed = await measure(ana, bo, 'cross office')
  const r2 = (x: number): number => Math.round(x * 100) / 100
  console.log(JSON.stringify({
    rounds: ROUNDS,
    burst: BURST,
    singleRelay: { route: single.route, p50Ms: r2(single.p50), p99Ms: r2(single.p99), perSecond: Math.round(single.perSecond) },
    crossOffice: { route: fed.route, p50Ms: r2(fed.p50), p99Ms: r2(fed.p99), perSecond: Math.round(fed.perSecond) },
    ratio: { p50: r2(fed.p50 / single.p50), p99: r2(fed.p99 / single.p99), throughput: r2(fed.perSecond / single.perSecond) }
  }, null, 2))
} finally {
  for (const n of nodes) await n.stop().catch(() => {})
  for (const r of relays) await r.stop().catch(() => {})
  await removeDir(dir)
}
