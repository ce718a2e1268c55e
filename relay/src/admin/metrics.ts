/**
 * The relay's Prometheus metrics (prom-client), served on the admin
 * listener's /metrics, the federation queues among them (per paired relay:
 * depth, bytes, the oldest item's age, up or not; docs/RELAY.md).
 * Counters are incremented where the relay does the work; gauges are read
 * from the relay when Prometheus scrapes.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { RelayCounters } from '../types.js'

/** What the gauges read at scrape time. */
export interface MetricsSources {
  connections: () => number
  reservations: () => number
  circuits: () => number
  users: () => number
  mailbox: () => Promise<{ messages: number, bytes: number, recipients: number, deepest: number }>
  /** federation: each paired relay's queue (depth, oldest item's age) and counts */
  federation?: () => Promise<FedLinkGauge[]>
}

export interface FedLinkGauge {
  peerId: string, state: string, queue: { depth: number, bytes: number, oldestAgeMs: number }, counts: { forwarded: number, received: number }
}

/** Store operations timed by the latency histogram. */
export type StoreOp = 'deposit' | 'fetch' | 'ack' | 'redeem' | 'sweep' | 'probe'

/** Seconds mail waits for its recipient: from a colleague at lunch (minutes) to one on leave (weeks; the TTL ends it). */
const WAIT_BUCKETS_S = [1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86_400, 3 * 86_400, 7 * 86_400, 30 * 86_400]

/** Seconds; store writes are fsynced, so the buckets start near an fsync (~1 ms) and reach a stalled disk. */
const STORE_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

export class RelayMetrics {
  readonly registry = new Registry()
  /** mailbox copies kept (one per recipient), duplicates dropped, copies refused for a full mailbox */
  private readonly deposits = new Counter({
    name: 'parley_relay_deposits_total',
    help: 'Mailbox copies offered by senders, by result (stored, duplicate, full).',
    labelNames: ['result'] as const,
    registers: [this.registry]
  })

  private readonly fetched = new Counter({
    name: 'parley_relay_mail_fetched_total',
    help: 'Mailbox items handed to their recipients.',
    registers: [this.registry]
  })
  private readonly deliveries = new Counter({
    name: 'parley_relay_deliveries_total',
    help: 'Mailbox items acknowledged by their recipients (delivered, then deleted).',
    registers: [this.registry]
  })

  private readonly expired = new Counter({
    name: 'parley_relay_mail_expired_total',
    help: 'Mailbox items deleted by the TTL sweep.',
    registers: [this.registry]
  })
  private readonly redeemed = new Counter({
    name: 'parley_relay_invites_redeemed_total',
    help: 'Invites redeemed (peers admitted).',
    registers: [this.registry]
  })
  private readonly refusals = new Counter({
    name: 'parley_relay_refusals_total',
    help: 'Requests refused, by error code and operation (an RPC method, reservation or circuit).',
    labelNames: ['code', 'op'] as const,
    registers: [this.registry]
  })

  readonly storeLatency = new Histogram({
    name: 'parley_relay_store_duration_seconds',
    help: 'Time the relay store took per operation (writes include their fsync).',
    labelNames: ['op'] as const,
    buckets: STORE_BUCKETS_S,
    registers: [this.registry]
  })

  /** deposit → first handed to the recipient; observed once per item (the highest cursor observed, per recipient) */
  private readonly mailWait = new Histogram({
    name: 'parley_relay_mail_wait_seconds',
    help: 'How long mail waited in the mailbox, from its deposit until its recipient first fetched it.',
    buckets: WAIT_BUCKETS_S,
    registers: [this.registry]
  })

  /** per recipient, the highest cursor whose wait was observed (cursors grow per recipient, so a re-fetch is not counted twice) */
  private readonly waitSeen = new Map<string, number>()

  /** the same counts as plain numbers, for `stats` (synchronous) and the console's traffic samples */
  private readonly totals: RelayCounters = { deposited: 0, duplicates: 0, fetched: 0, acked: 0, refused: 0, redeemed: 0, expired: 0 }

  /** `sources`: what the gauges read; without them (unit tests of one part) only the counters and the histogram exist */
  constructor (sources?: MetricsSources) {
    collectDefaultMetrics({ register: this.registry })
    if (sources === undefined) return
    const reg = [this.registry]
    const gauge = (name: string, help: string, read: () => number): void => {
       
      new Gauge({ name, help, registers: reg, collect () { this.set(read()) } })
    }
    gauge('parley_relay_connections', 'Open libp2p connections.', sources.connections)
    gauge('parley_relay_reservations', 'Circuit relay reservations held.', sources.reservations)
    gauge('parley_relay_circuits', 'Relayed connections (circuits) open now.', sources.circuits)
    gauge('parley_relay_users', 'Admitted peers.', sources.users)
    // the mailbox gauges share one read of the totals per scrape
    let pending: ReturnType<MetricsSources['mailbox']> | undefined
    const mailbox = async (): ReturnType<MetricsSources['mailbox']> => {
      pending ??= sources.mailbox().finally(() => { pending = undefined })
      return await pending
    }
    const mailboxGauge = (name: string, help: string, pick: (t: Awaited<ReturnType<MetricsSources['mailbox']>>) => number): void => {
       
      new Gauge({ name, help, registers: reg, async collect () { this.set(pick(await mailbox())) } })
    }
    mailboxGauge('parley_relay_mailbox_messages', 'Mail waiting at the relay (all recipients).', t => t.messages)
    mailboxGauge('parley_relay_mailbox_bytes', 'Bytes of mail waiting at the relay.', t => t.bytes)
    mailboxGauge('parley_relay_mailbox_recipients', 'Recipients with mail waiting.', t => t.recipients)
    mailboxGauge('parley_relay_mailbox_depth_max', 'Mail waiting for the recipient with the most.', t => t.deepest)
    const fed = sources.federation
    if (fed === undefined) return
    const fedGauge = (name: string, help: string, pick: (p: FedLinkGauge) => number): void => {
       
      new Gauge({
        name, help, labelNames: ['peer'] as const, registers: reg,
        async collect () { this.reset(); for (const p of await fed()) this.set({ peer: p.peerId }, pick(p)) }
      })
    }
    fedGauge('parley_relay_federation_queue_depth', 'Items queued for a paired relay, waiting to be forwarded.', p => p.queue.depth)
    fedGauge('parley_relay_federation_queue_bytes', 'Bytes queued for a paired relay.', p => p.queue.bytes)
    fedGauge('parley_relay_federation_queue_oldest_age_seconds', 'Age of the oldest item queued for a paired relay (0: none).', p => p.queue.oldestAgeMs / 1000)
    fedGauge('parley_relay_federation_up', '1 when the last exchange with a paired relay worked.', p => p.state === 'up' ? 1 : 0)
    fedGauge('parley_relay_federation_forwarded', 'Items forwarded to a paired relay (and stored there) since start.', p => p.counts.forwarded)
    fedGauge('parley_relay_federation_received', 'Copies received from a paired relay and stored since start.', p => p.counts.received)
  }

  /** One deposit's copies: kept, already held, refused for a full mailbox (also a refusal by code). */
  deposited (stored: number, duplicates: number, full: number): void {
    this.deposits.inc({ result: 'stored' }, stored)
    this.deposits.inc({ result: 'duplicate' }, duplicates)
    this.deposits.inc({ result: 'full' }, full)
    this.totals.deposited += stored
    this.totals.duplicates += duplicates
    if (full > 0) this.refused('ERR_QUOTA_EXCEEDED', 'deposit', full)
  }

  mailFetched (n: number): void { this.fetched.inc(n); this.totals.fetched += n }
  /** Observes how long each newly fetched item waited (items without a deposit time are skipped). */
  mailWaited (recipient: string, items: ReadonlyArray<{ cursor: number, depositedAt?: number }>, now = Date.now()): void {
    let seen = this.waitSeen.get(recipient) ?? 0
    for (const i of items) {
      if (i.cursor <= seen) continue
      seen = i.cursor
      if (i.depositedAt !== undefined) this.mailWait.observe(Math.max(0, now - i.depositedAt) / 1000)
    }
    // bounded: one number per recipient that fetched; a relay with more than that forgets and may count a re-fetch again
    if (!this.waitSeen.has(recipient) && this.waitSeen.size >= 100_000) this.waitSeen.clear()
    this.waitSeen.set(recipient, seen)
  }

  mailDelivered (n: number): void { this.deliveries.inc(n); this.totals.acked += n }
  mailExpired (n: number): void { this.expired.inc(n); this.totals.expired += n }
  inviteRedeemed (): void { this.redeemed.inc(); this.totals.redeemed++ }

  /** Times `fn` as one store operation (failures too). */
  async timeStore<T> (op: StoreOp, fn: () => Promise<T>): Promise<T> {
    const end = this.storeLatency.startTimer({ op })
    try { return await fn() } finally { end() }
  }

  refused (code: string, op: string, n = 1): void {
    this.refusals.inc({ code, op }, n)
    this.totals.refused += n
  }

  /** The Prometheus text exposition. */
  async text (): Promise<string> { return await this.registry.metrics() }

  get contentType (): string { return this.registry.contentType }

  /** Current counter values, for `stats` and the console's traffic samples. */
  snapshot (): MetricsSnapshot { return { ...this.totals } }
}

/** the counters as the relay's stats name them */
export type MetricsSnapshot = RelayCounters
