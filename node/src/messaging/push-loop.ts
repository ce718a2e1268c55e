/**
 * The push loop: one delivery loop per connected peer (sync first when one
 * is due, then the whole outbox in windows), a retry pass on a timer for what
 * is still queued, dials with backoff to offline peers we owe messages, and
 * mailbox deposits for the ones we cannot reach.
 */
import { toParleyError } from '../../../core/errors.js'
import { outboxPages } from '../store/pages.js'
import type { Deposits } from './deposits.js'
import type { Delivery } from './delivery.js'
import type { PeerChannels } from './peer-channels.js'
import type { Sync } from './sync.js'
import type { MessagingComponents } from './types.js'

export interface PushLoopComponents extends Pick<MessagingComponents, 'store' | 'host' | 'log'> {
  channels: PeerChannels
  sync: Sync
  delivery: Delivery
  deposits: Deposits
  /** a peer that is gone and owed nothing is forgotten here too */
  forget: (peer: string) => void
}

export interface PushLoopInit {
  /** how often queued messages are retried */
  retryIntervalMs: number
  /** longest wait between dial attempts to an offline peer with queued messages */
  maxRedialBackoffMs: number
}

/** First wait between dials of an offline peer, doubling up to maxRedialBackoffMs. */
const FIRST_REDIAL_BACKOFF_MS = 1000
/** a present peer we owe messages is tried again at least this often (a restart keeps its record alive) */
const PRESENT_REDIAL_MAX_MS = 4000
/**
 * Up to this share of a backoff is added at random, so peers that lost the
 * same colleague (a restart, a whole office after a power cut) do not all dial
 * again at the same instant.
 */
const BACKOFF_JITTER = 0.25
const jittered = (ms: number): number => Math.round(ms * (1 + Math.random() * BACKOFF_JITTER))
/** Outbox entries read per page of a push. */
const PUSH_PAGE = 256
/** presence arrivals within this window share one outbox read */
const OWED_CHECK_MS = 50

interface PushState {
  /** a loop runs for this peer */
  pushing: boolean
  /** asked again while the loop ran: it makes one more pass */
  again: boolean
  /** the next pass syncs first */
  needSync: boolean
  nextDialAt: number
  dialBackoffMs: number
}

export class PushLoop {
  private readonly peers = new Map<string, PushState>()
  private timer?: NodeJS.Timeout
  private running = false
  private retrying = false

  constructor (private readonly c: PushLoopComponents, private readonly init: PushLoopInit) {}

  start (): void {
    if (this.running) return
    this.running = true
    this.timer = setInterval(() => { void this.retryAll() }, this.init.retryIntervalMs)
    this.timer.unref()
  }

  stop (): void {
    this.running = false
    clearInterval(this.timer)
    this.timer = undefined
    this.peers.clear()
  }

  /** A peer connected: sync it, dial it promptly next time, deposit afresh when it goes away. */
  peerConnected (peer: string): void {
    const s = this.state(peer)
    s.needSync = true
    s.dialBackoffMs = FIRST_REDIAL_BACKOFF_MS
    this.c.deposits.reset(peer)
    this.schedule(peer)
  }

  /** The peer became present (on the LAN, or connected): push now if we owe it messages. */
  present (peer: string): void {
    const s = this.state(peer)
    s.dialBackoffMs = FIRST_REDIAL_BACKOFF_MS
    s.nextDialAt = 0
    this.owedCheck.add(peer)
    if (this.owedCheck.size > 1) return
    // one outbox read for a burst of arrivals (a whole office appearing)
    setTimeout(() => {
      const peers = [...this.owedCheck]
      this.owedCheck.clear()
      void this.c.store.outboxPeers().then((owed) => {
        const set = new Set(owed)
        for (const p of peers) if (set.has(p)) this.schedule(p)
      }).catch(err => { this.c.log.debug('outbox check failed', { err: toParleyError(err).message }) })
    }, OWED_CHECK_MS)
  }

  private readonly owedCheck = new Set<string>()

  /** Connections are opened on demand: a present peer counts as reachable (the host dials, bounded). */
  private reachable (peer: string): boolean { return this.c.host.isConnected(peer) || this.c.host.isOnline(peer) }

  /** The next pass to `peer` syncs first. */
  requestSync (peer: string): void {
    this.state(peer).needSync = true
    this.schedule(peer)
  }

  /** Runs the peer's delivery loop unless it is already running (then it runs once more). */
  schedule (peer: string): void {
    const s = this.state(peer)
    if (s.pushing) { s.again = true; return }
    if (!this.reachable(peer)) return
    s.pushing = true
    void this.loop(peer, s).catch((err) => {
      this.c.log.debug('delivery paused', { peer, err: toParleyError(err).message })
    }).finally(() => {
      s.pushing = false
      // asked again while the loop was ending (a reconnect mid-call): run once more
      if (s.again && this.running) { s.again = false; this.schedule(peer) }
    })
  }

  private async loop (peer: string, s: PushState): Promise<void> {
    while (this.running && this.reachable(peer)) {
      s.again = false
      const ch = await this.c.channels.get(peer)
      if (s.needSync) {
        // cleared first so a request made while this sync runs is not lost; set again if it did not finish
        s.needSync = false
        let complete = false
        try {
          complete = await this.c.sync.syncTo(peer, ch)
        } finally {
          if (!complete) s.needSync = true
        }
      }
      // one pass over the whole outbox, a page at a time: entries the peer answers "not yet" (a group it
      // does not know yet) are passed over, so they never hold up what is queued behind them
      for await (const page of outboxPages(this.c.store, peer, PUSH_PAGE)) {
        await this.c.delivery.deliverAll(peer, ch, page.map(m => m.envelope))
      }
      // what is still queued waits for the retry timer, unless something new came meanwhile
      if (!s.again) return
    }
  }

  /** The retry pass: push to connected peers, dial offline ones (with backoff), deposit for the unreachable. */
  async retryAll (): Promise<void> {
    if (this.retrying) return
    this.retrying = true
    try {
      const now = Date.now()
      const unreachable: string[] = []
      const waitedFor = new Set(await this.c.store.outboxPeers())
      for (const [peer, s] of this.peers) {
        if (this.c.host.isConnected(peer)) {
          // a connected peer whose sync did not finish (a timeout, a flap) is synced again, outbox or not
          if (s.needSync && !s.pushing) this.schedule(peer)
        } else if (!waitedFor.has(peer) && !s.pushing && !this.c.channels.isOpening(peer) && !this.c.host.isOnline(peer)) {
          // gone and owed nothing: forget its state (it is made afresh when it connects)
          this.peers.delete(peer)
          this.c.channels.forget(peer)
          this.c.forget(peer)
        }
      }
      for (const peer of waitedFor) {
        if (this.c.host.isConnected(peer)) { this.schedule(peer); continue }
        // present on the LAN: pushed with a connection on demand, no mailbox copy; if its dials keep failing, the
        // host reconfirms its discovery record (RFC 6762 §10.4) and it stops being present within seconds
        if (this.c.host.isOnline(peer)) {
          this.pushPresent(peer, now)
          // still present after dials failed for a while (a firewall, a peer that answers mDNS but not TCP):
          // its messages go to the relay too, as for a peer that is away
          if (this.state(peer).dialBackoffMs < PRESENT_REDIAL_MAX_MS) continue
        }
        unreachable.push(peer)
        this.dialWithBackoff(peer, now)
      }
      void this.c.deposits.run(unreachable, now)
    } catch (err) {
      this.c.log.warn('retry pass failed', { err: toParleyError(err).message })
    } finally {
      this.retrying = false
    }
  }

  private pushPresent (peer: string, now: number): void {
    const s = this.state(peer)
    if (now < s.nextDialAt || s.pushing) return
    s.nextDialAt = now + jittered(s.dialBackoffMs)
    s.dialBackoffMs = Math.min(s.dialBackoffMs * 2, PRESENT_REDIAL_MAX_MS)
    this.schedule(peer)
  }

  private dialWithBackoff (peer: string, now: number): void {
    const s = this.state(peer)
    if (now < s.nextDialAt) return
    s.nextDialAt = now + jittered(s.dialBackoffMs)
    s.dialBackoffMs = Math.min(s.dialBackoffMs * 2, this.init.maxRedialBackoffMs)
    this.c.host.dial(peer).catch(() => {})
  }

  private state (peer: string): PushState {
    let s = this.peers.get(peer)
    if (s === undefined) {
      s = { pushing: false, again: false, needSync: true, nextDialAt: 0, dialBackoffMs: FIRST_REDIAL_BACKOFF_MS }
      this.peers.set(peer, s)
    }
    return s
  }
}
