/**
 * Relay figures (npm run bench:relay): one relay and two nodes as separate
 * processes on loopback, talking only through the relay (no direct addresses
 * announced, no mDNS).
 *
 *   circuit: messages/s from A to B through a relayed connection
 *   mailbox: B offline; A queues N messages (deposited at the relay); B starts:
 *            time from B's start to all N stored at B
 * Baselines in the same run (test/bench/relay-bare.ts, issue 15), each printed with its ratio:
 *   circuit: bare libp2p request/ack through the same relay's circuit, the receiver acking after an
 *            fsynced group commit, 32 in flight, requests of an envelope's size
 *   mailbox: the same number of envelopes written to a bare LevelDB in fsynced batches of BARE_BATCH (500, the
 *            most one fetch may ask for: the fastest fair baseline)
 * BENCH_SKIP_RTT=1 leaves out the 200 round trips (iterating on the drain).
 */
import { join } from 'node:path'
import { NodeProc, RelayProc } from '../helpers/proc.js'
import { percentile } from '../helpers/audit.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { IdentityView, MessageView } from '../../node/src/api/contract.js'
import { bareCircuit, bareLevelWrite, barePeerIds } from './relay-bare.js'
import { newMessageId, sealEnvelope } from '../../core/crypto/envelope.js'
import { dmConversationId } from '../../core/protocol/envelope.js'
import { newIdentities } from '../unit/helpers/identities.js'

const BURST = Number(process.env.BENCH_BURST ?? 2000)
const OFFLINE = Number(process.env.BENCH_OFFLINE ?? 10_000)
/** envelopes per fsynced batch of the bare LevelDB baseline: MAX_FETCH_ITEMS, fixed so runs of different code compare */
const BARE_BATCH = 500
const dir = await tmpDir('parley-relay-bench-')
const allowBare = (await barePeerIds()).flatMap(p => ['--allow', p])
const relay = new RelayProc({ dataDir: join(dir, 'relay'), args: ['--listen', '/ip4/127.0.0.1/tcp/0', ...allowBare], logFile: join(dir, 'relay.log') })
let a: NodeProc | undefined
let b: NodeProc | undefined
const count = (n: NodeProc, type: string, state?: string): number => n.events.filter(e => e.event.type === type && (state === undefined || (e.event.data as MessageView).state === state)).length
try {
  await relay.start()
  const stats = JSON.parse(relay.admin('stats', '--json')) as { addresses: string[] }
  const relayAddr = stats.addresses[0] as string
  const invite = relay.admin('invite', 'create', '--uses', '2')
  const mk = (name: string): NodeProc => new NodeProc({ dataDir: join(dir, name), name, logFile: join(dir, `${name}.log`), args: ['--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--relay', relayAddr, '--invite', invite] })
  a = mk('A'); b = mk('B')
  await Promise.all([a.start(), b.start()])
  const idB = (await b.api!.call<IdentityView>('GET', '/identity')).peerId
  const relayState = async (n: NodeProc): Promise<{ admitted: boolean | null }> => (await n.api!.call<{ relay: { admitted: boolean | null } }>('GET', '/settings')).relay
  for (const n of [a, b]) await until(async () => (await relayState(n)).admitted === true, 'admitted', 30_000, 100)
  const first = await a.api!.call<MessageView>('POST', '/messages', { to: idB, text: 'warm up', wait: 'delivered', timeoutMs: 30_000 })
  if (first.state !== 'delivered') throw new Error('no circuit')

  const lat: number[] = []
  for (let i = 0; i < (process.env.BENCH_SKIP_RTT === '1' ? 0 : 200); i++) {
    const t0 = performance.now()
    await a.api!.call('POST', '/messages', { to: idB, text: `rtt ${i}`, wait: 'delivered' })
    lat.push(performance.now() - t0)
  }
  lat.sort((x, y) => x - y)

  const storedBefore = count(b, 'messageStored')
  const t0 = performance.now()
  for (let i = 0; i < BURST; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, BURST - i) }, async (_, j) => await a!.api!.call('POST', '/messages', { to: idB, text: `circuit ${i + j}` })))
  }
  await until(() => count(b!, 'messageStored') - storedBefore >= BURST, 'burst stored at B', 300_000, 20)
  const circuitMs = performance.now() - t0

  // the same envelopes as the offline ones (sealed by one device for another, texts alike), for both baselines
  const [x, y] = await newIdentities(2)
  const envelopes = Array.from({ length: OFFLINE }, (_, i) => sealEnvelope(x!, {
    id: newMessageId(), conv: dmConversationId(x!.peerId, y!.peerId), seq: i + 1, hlc: { w: Date.now(), c: 0 }, recipients: [y!.peerId], body: { text: `offline ${i}` }
  }))
  const envelopeBytes = JSON.stringify(envelopes[0]).length
  const bare = await bareCircuit(dir, relayAddr, BURST, envelopeBytes, 32)

  await b.stop()
  const sentBefore = count(a, 'messageStateChanged', 'sent')
  const t1 = performance.now()
  for (let i = 0; i < OFFLINE; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, OFFLINE - i) }, async (_, j) => await a!.api!.call('POST', '/messages', { to: idB, text: `offline ${i + j}` })))
  }
  const queuedMs = performance.now() - t1
  await until(() => count(a!, 'messageStateChanged', 'sent') - sentBefore >= OFFLINE, 'all deposited', 600_000, 50)
  const depositedMs = performance.now() - t1
  b.events.length = 0
  const t2 = performance.now()
  await b.start()
  await until(() => count(b!, 'messageStored') >= OFFLINE, 'offline mail stored at B', 600_000, 20)
  const drainMs = performance.now() - t2
  const bareWriteMs = await bareLevelWrite(dir, envelopes, BARE_BATCH)
  const circuitPerSecond = BURST / circuitMs * 1000
  console.log(JSON.stringify({
    circuitAckRoundTripMs: { p50: lat[100]?.toFixed(2), p99: percentile(lat, 99).toFixed(2) },
    circuit: { messages: BURST, ms: Math.round(circuitMs), perSecond: Math.round(circuitPerSecond) },
    circuitBaseline: { ...bare, envelopeBytes, inFlight: 32, ratio: Number((circuitPerSecond / bare.perSecond).toFixed(3)), goal: '>= 0.5' },
    mailbox: {
      messages: OFFLINE,
      acceptedByApiMs: Math.round(queuedMs),
      allDepositedMs: Math.round(depositedMs),
      depositPerSecond: Math.round(OFFLINE / depositedMs * 1000),
      deliveredAfterRecipientStartMs: Math.round(drainMs),
      drainPerSecond: Math.round(OFFLINE / drainMs * 1000)
    },
    mailboxBaseline: {
      bareLevelDbMs: Math.round(bareWriteMs), batch: BARE_BATCH, drainOverBare: Number((drainMs / bareWriteMs).toFixed(2)), goal: '<= 3'
    }
  }, null, 2))
} finally {
  await a?.stop(); await b?.stop(); await relay.stop()
  await removeDir(dir)
}
