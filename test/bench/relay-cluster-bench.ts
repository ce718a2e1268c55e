/**
 * Relay cluster figures (npm run bench:relay-cluster), in one run, bounded:
 * the relay on LevelDB (one instance), on PostgreSQL (one instance), and on
 * PostgreSQL with two instances. Relays and nodes are separate processes on
 * loopback; PostgreSQL is a real server in a temp dir (fsync on, as LevelDB
 * syncs every batch), on a Unix socket.
 *
 * Per setup: two senders (on different instances when there are two) write
 * MESSAGES messages in all to one recipient that is offline:
 *   deposits/s: until the relay(s) acknowledged every one (state `sent`);
 *   drain: the recipient starts; time until all are stored there.
 * Baseline, same run: the bare store (MailboxStore.deposit in this process,
 * no network, no node) for LevelDB and for PostgreSQL; each setup's deposit
 * rate is printed as a ratio of its store's bare rate.
 */
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { Level } from 'level'
import { NodeProc, RelayProc } from '../helpers/proc.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import { PgServer } from '../helpers/postgres.js'
import { newIdentities } from '../unit/helpers/identities.js'
import { relayFiles } from '../../relay/src/config.js'
import { LevelMailboxStore } from '../../relay/src/store/level-mailbox-store.js'
import { PgMailboxStore } from '../../relay/src/store/pg-mailbox-store.js'
import type { MailboxStore } from '../../relay/src/store/types.js'
import { newMessageId, sealEnvelope } from '../../core/crypto/envelope.js'
import { dmConversationId } from '../../core/protocol/envelope.js'
import type { IdentityView, MessageView } from '../../node/src/api/contract.js'

const MESSAGES = Number(process.env.BENCH_CLUSTER_MESSAGES ?? 1000)
const BARE = Number(process.env.BENCH_CLUSTER_BARE ?? 1000)
const WINDOW = 50
const LIMITS = { ttlMs: 24 * 3600_000, quotaMessages: 1_000_000, quotaBytes: 1 << 30, senderShare: 1 }

const dir = await tmpDir('parley-cluster-bench-')
const pg = await PgServer.start()
const started: Array<{ stop: () => Promise<void> }> = []
const count = (n: NodeProc, type: string, state?: string): number => n.events.filter(e => e.event.type === type && (state === undefined || (e.event.data as MessageView).state === state)).length

/** deposits/s of the bare store, in this process: the ceiling the relay around it is measured against */
async function bare (store: MailboxStore): Promise<number> {
  await store.start()
  const [alice, bob] = await newIdentities(2)
  const envs = Array.from({ length: BARE }, (_, i) => sealEnvelope(alice!, {
    id: newMessageId(), conv: dmConversationId(alice!.peerId, bob!.peerId), seq: i + 1, hlc: { w: Date.now(), c: 0 }, recipients: [bob!.peerId], body: { text: `bare ${i}` }
  }))
  const t0 = performance.now()
  for (let i = 0; i < BARE; i += WINDOW) {
    await Promise.all(envs.slice(i, i + WINDOW).map(async e => await store.deposit(bob!.peerId, alice!.peerId, e, JSON.stringify(e).length)))
  }
  const ms = performance.now() - t0
  await store.stop()
  return BARE / ms * 1000
}

async function setup (name: string, stores: string[]): Promise<Record<string, number | string>> {
  const relays: RelayProc[] = []
  for (const [i, store] of stores.entries()) {
    const r = new RelayProc({ dataDir: join(dir, `${name}-r${i}`), args: ['--listen', '/ip4/127.0.0.1/tcp/0', '--store', store], logFile: join(dir, `${name}-r${i}.log`) })
    await r.start()
    started.push(r)
    relays.push(r)
  }
  const addr = (i: number): string => (JSON.parse(readFileSync(relayFiles(join(dir, `${name}-r${i % relays.length}`)).info, 'utf8')) as { addresses: string[] }).addresses[0]!
  const invite = relays[0]!.admin('invite', 'create', '--uses', '3')
  const mk = (who: string, at: number): NodeProc => new NodeProc({
    dataDir: join(dir, `${name}-${who}`), name: who, logFile: join(dir, `${name}-${who}.log`),
    args: ['--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--relay', addr(at), '--invite', invite]
  })
  const senders = [mk('A1', 0), mk('A2', 1)]
  const b = mk('B', 0)
  for (const n of [...senders, b]) { await n.start(); started.push(n) }
  const admitted = async (n: NodeProc): Promise<boolean> => (await n.api!.call<{ relay: { admitted: boolean | null } }>('GET', '/settings')).relay.admitted === true
  for (const n of [...senders, b]) await until(async () => await admitted(n), 'admitted', 30_000, 100)
  const idB = (await b.api!.call<IdentityView>('GET', '/identity')).peerId
  await b.stop()
  const per = Math.ceil(MESSAGES / senders.length)
  const t0 = performance.now()
  await Promise.all(senders.map(async (s, k) => {
    for (let i = 0; i < per; i += WINDOW) {
      await Promise.all(Array.from({ length: Math.min(WINDOW, per - i) }, async (_, j) => await s.api!.call('POST', '/messages', { to: idB, text: `${k}:${i + j}` })))
    }
  }))
  for (const s of senders) await until(() => count(s, 'messageStateChanged', 'sent') >= per, 'all deposited', 180_000, 50)
  const depositMs = performance.now() - t0
  b.events.length = 0
  const t1 = performance.now()
  await b.start()
  await until(() => count(b, 'messageStored') >= per * senders.length, 'offline mail stored at the recipient', 180_000, 20)
  const drainMs = performance.now() - t1
  for (const p of started.splice(0).reverse()) await p.stop()
  return {
    setup: name,
    messages: per * senders.length,
    depositsPerSecond: Math.round(per * senders.length / depositMs * 1000),
    drainMs: Math.round(drainMs),
    drainPerSecond: Math.round(per * senders.length / drainMs * 1000)
  }
}

try {
  const bareLevel = await bare(new LevelMailboxStore(new Level(join(dir, 'bare-level')), LIMITS))
  const bareUrl = await pg.createDatabase('bare')
  const barePg = await bare(new PgMailboxStore({ url: bareUrl }, LIMITS))
  const rows = [
    await setup('level-1', ['level']),
    await setup('pg-1', [await pg.createDatabase('one')]),
    await setup('pg-2', await (async () => { const u = await pg.createDatabase('two'); return [u, u] })())
  ]
  for (const r of rows) r.ratioToBareStore = Number((Number(r.depositsPerSecond) / (r.setup === 'level-1' ? bareLevel : barePg)).toFixed(3))
  console.log(JSON.stringify({
    baseline: { bareLevelDepositsPerSecond: Math.round(bareLevel), barePgDepositsPerSecond: Math.round(barePg), window: WINDOW },
    setups: rows
  }, null, 2))
} finally {
  for (const p of started.reverse()) await p.stop().catch(() => {})
  await pg.destroy()
  await removeDir(dir)
}
