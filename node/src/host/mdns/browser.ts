/**
 * The asking half of RFC 6762 for `_parley._tcp.local`: a cache of the
 * instances heard, each for its TTL (§10; a goodbye removes it, §10.1);
 * continuous querying with known-answer lists (§7.1, split over several
 * packets with the TC bit, §7.2) at 1 s, 2 s, 4 s ... up to an hour (§5.2);
 * cache refresh queries at 80, 85, 90 and 95 % of a record's TTL plus 0-2 %
 * (§5.2); a query of someone else that asks what we would ask counts as ours
 * (duplicate question suppression, §7.3); and reconfirmation when a record
 * looks stale (a connection to the peer failed, §10.4). The first query asks
 * for unicast answers (QU, §5.4): joining a warm office costs the others one
 * answer each and no cache updates.
 */
import * as dnsPacket from 'dns-packet'
import { MAX_MDNS_PACKET_BYTES, type MdnsTransport } from './socket.js'
import {
  SERVICE_TYPE, instanceName, knownIndex, readInstances, recordKey, sameName, verifySeen,
  type Answer, type Rr, type SeenInstance, type VerifyRecord
} from './records.js'
import type { FullQuery } from './responder.js'

export interface BrowserComponents {
  transport: MdnsTransport
  /** our own peer ID: never cached */
  self: string
  /** checks a record's signature; absent: unsigned records are taken (tests) */
  verify?: VerifyRecord
  token: number
  random: () => number
}

export interface BrowserInit {
  /** the longest wait between two browse queries once the cache is warm. @default 3_600_000 (RFC 6762 §5.2) */
  maxQueryIntervalMs?: number
  /** records heard with a longer TTL are kept this long at most. @default 4500 */
  maxTtlS?: number
  /** how long a reconfirmed record may go unanswered before it is dropped. @default 10_000 (RFC 6762 §10.4) */
  reconfirmMs?: number
  /** instances kept at most (spoofed floods of invented peer IDs). @default 10_000 */
  maxInstances?: number
  /** how often the cache is checked for expiry and refresh points (a TTL of a few seconds needs less). @default 1000 */
  sweepMs?: number
}

export const DEFAULT_MAX_QUERY_INTERVAL_MS = 3_600_000
export const DEFAULT_MAX_TTL_S = 4500
export const DEFAULT_RECONFIRM_MS = 10_000
export const DEFAULT_MAX_INSTANCES = 10_000
const FIRST_QUERY_INTERVAL_MS = 1000
const SWEEP_MS = 1000
const RECONFIRM_REQUERY_MS = 2000
/** after a goodbye, one question this much later (a replayed goodbye is undone by the live peer's answer) */
const GOODBYE_RECHECK_MS = 1000
/**
 * Records lost without a goodbye within this window count as lost "at once":
 * when they are half the cache or more (our side of the network was cut off,
 * a laptop woke up), the browse starts again from 1 s. A single colleague
 * leaving silently restarts nothing: its record was asked for at 80-95 % of
 * its TTL and nobody answered, and every node loses it in the same second, so
 * a restart there would make the whole office query at once (an N² storm per
 * departure, with known-answer lists of several packets each).
 */
const MASS_LOSS_WINDOW_MS = 10_000
/** a suppressed browse query is next due this much (plus 0-10 % of the interval) after the one that suppressed it */
const SUPPRESSED_OFFSET_MS = 600
/** refresh points as fractions of the TTL (§5.2) */
const REFRESH_AT = [0.80, 0.85, 0.90, 0.95]

export interface CachedPeer {
  peerId: string
  instance: string
  addrs: string[]
  advert?: string
  ttlS: number
  receivedAt: number
  /** how many refresh queries (or others' equal ones) went out for this reception */
  refreshStep: number
  /** 0-2 % of the TTL, drawn per reception, so the whole office does not refresh at the same instant */
  jitter: number
  /** the TXT strings and signature as verified (a refresh with the same ones needs no second check) */
  strings: string
  reconfirmSince?: number
}

export type GoneReason = 'goodbye' | 'expired' | 'unconfirmed'

export interface BrowserEvents {
  /** a new peer, or new addresses or advert of a known one */
  peer: (p: CachedPeer, isNew: boolean) => void
  gone: (p: CachedPeer, reason: GoneReason) => void
}

export class MdnsBrowser {
  private readonly init: Required<BrowserInit>
  private readonly byPeer = new Map<string, CachedPeer>()
  private readonly byInstance = new Map<string, string>()
  private nextQueryAt = 0
  private interval = FIRST_QUERY_INTERVAL_MS
  private queryTimer?: NodeJS.Timeout
  private sweepTimer?: NodeJS.Timeout
  private readonly reconfirmTimers = new Set<NodeJS.Timeout>()
  private running = false
  private firstQuery = true
  /** instance questions to send with the next sweep */
  private readonly ask = new Set<string>()
  /** when records were lost without a goodbye, within the last MASS_LOSS_WINDOW_MS */
  private lostAt: number[] = []
  private massRestartAt = -Infinity
  private announceOnReturn = false
  /** called when the browse restarts after a mass loss (the owner announces again: others may have lost us too) */
  onMassLoss?: () => void
  /** browse restarts so far (a network change or a mass loss), for tests and stats */
  restarts = 0

  private readonly ownInstance: string

  constructor (private readonly c: BrowserComponents, private readonly on: BrowserEvents, init: BrowserInit = {}) {
    this.ownInstance = instanceName(c.self).toLowerCase()
    this.init = {
      maxQueryIntervalMs: init.maxQueryIntervalMs ?? DEFAULT_MAX_QUERY_INTERVAL_MS,
      maxTtlS: init.maxTtlS ?? DEFAULT_MAX_TTL_S,
      reconfirmMs: init.reconfirmMs ?? DEFAULT_RECONFIRM_MS,
      maxInstances: init.maxInstances ?? DEFAULT_MAX_INSTANCES,
      sweepMs: init.sweepMs ?? SWEEP_MS
    }
  }

  /** records refused for a missing or bad signature */
  rejected = 0
  get size (): number { return this.byPeer.size }
  get (peerId: string): CachedPeer | undefined { return this.byPeer.get(peerId) }
  peers (): CachedPeer[] { return [...this.byPeer.values()] }

  start (): void {
    if (this.running) return
    this.running = true
    this.firstQuery = true
    this.interval = FIRST_QUERY_INTERVAL_MS
    // §5.2: the first query after a random 20-120 ms (many hosts start together after a power cut)
    this.scheduleQuery(20 + this.c.random() * 100)
    this.sweepTimer = setInterval(() => { this.sweep() }, this.init.sweepMs)
    this.sweepTimer.unref()
  }

  stop (): void {
    if (!this.running) return
    this.running = false
    clearTimeout(this.queryTimer)
    clearInterval(this.sweepTimer)
    for (const t of this.reconfirmTimers) clearTimeout(t)
    this.reconfirmTimers.clear()
    this.byPeer.clear()
    this.byInstance.clear()
    this.ask.clear()
    this.lostAt = []
    this.announceOnReturn = false
  }

  /** Starts querying from 1 s again (a network change: the cache may be wrong). */
  restartQueries (): void {
    if (!this.running) return
    this.restarts++
    this.lostAt = []
    this.interval = FIRST_QUERY_INTERVAL_MS
    this.scheduleQuery(20 + this.c.random() * 100)
  }

  /** §10.4: the peer's record looks stale (a connection failed); ask, and drop it if nobody answers. */
  reconfirm (peerId: string): void {
    const p = this.byPeer.get(peerId)
    if (p === undefined || p.reconfirmSince !== undefined || !this.running) return
    const since = Date.now()
    p.reconfirmSince = since
    this.askNow(p.instance)
    this.timer(RECONFIRM_REQUERY_MS, () => { if (this.byPeer.get(peerId)?.reconfirmSince === since) this.askNow(p.instance) })
    this.timer(this.init.reconfirmMs, () => {
      const cur = this.byPeer.get(peerId)
      if (cur?.reconfirmSince === since && cur.receivedAt < since) this.remove(cur, 'unconfirmed')
    })
  }

  /** Records in a response (or in a query's known answers, which we do not trust as fresh: only responses count). */
  onResponse (records: Rr[]): void {
    if (!this.running) return
    for (const seen of readInstances(records)) {
      if (seen.peerId === this.c.self) continue
      // a record, a goodbye too, counts only with the peer's signature (else anyone could add or remove colleagues)
      if (!this.authentic(seen)) { this.rejected++; continue }
      if (seen.ttl === 0) {
        const p = this.byPeer.get(seen.peerId)
        if (p === undefined) continue
        this.remove(p, 'goodbye')
        // the TTL is not signed: a replayed goodbye is possible, so ask once; a peer still there answers
        this.timer(GOODBYE_RECHECK_MS, () => { if (!this.byPeer.has(p.peerId)) this.askNow(p.instance) })
        continue
      }
      this.upsert(seen)
    }
  }

  /** Signed by the peer it names (checked once per distinct record: refreshes repeat the same bytes). */
  private authentic (seen: SeenInstance): boolean {
    if (this.c.verify === undefined) return true
    if (seen.sig === undefined) return false
    const cached = this.byPeer.get(seen.peerId)
    if (cached !== undefined && cached.strings === recordKey(seen)) return true
    return verifySeen(this.c.verify, seen)
  }

  /** §7.3: someone asked what we were about to ask, with no known answer we lack: our query counts as sent. */
  onForeignQuery (q: FullQuery): void {
    if (!this.running || q.unicast) return
    const now = Date.now()
    for (const question of q.questions) {
      if (sameName(question.name, SERVICE_TYPE) && (question.type === 'PTR' || question.type === 'ANY')) {
        // only when our own query is due soon (checked first: the known-answer lists are long in a large office)
        if (this.firstQuery || this.nextQueryAt - now > this.interval / 2) continue
        if (this.wouldKnowAll(q.knownParts ?? [q.knownAnswers], now)) {
          this.interval = Math.min(this.interval * 2, this.init.maxQueryIntervalMs)
          // a little after the one who asked (who schedules exactly one interval on): next time its query, assembled
          // from all its packets (§7.2, 400-500 ms), reaches us before ours is due, and suppresses ours again.
          // Without the offset the whole office would be due in the same instant and everyone would ask.
          this.scheduleQuery(this.interval + SUPPRESSED_OFFSET_MS + this.c.random() * this.interval * 0.1)
        }
        continue
      }
      const peerId = this.byInstance.get(question.name.toLowerCase())
      const p = peerId === undefined ? undefined : this.byPeer.get(peerId)
      if (p === undefined) continue
      // a refresh of this record is under way: skip our own next refresh step
      const due = p.receivedAt + p.ttlS * 1000 * ((REFRESH_AT[p.refreshStep] ?? 2) + p.jitter)
      if (p.refreshStep < REFRESH_AT.length && due - now < p.ttlS * 1000 * 0.05) p.refreshStep++
    }
  }

  private upsert (seen: SeenInstance): void {
    if (seen.peerId === this.c.self) return
    const now = Date.now()
    const ttlS = Math.min(seen.ttl, this.init.maxTtlS)
    const old = this.byPeer.get(seen.peerId)
    if (old === undefined && this.byPeer.size >= this.init.maxInstances) return
    const strings = recordKey(seen)
    const p: CachedPeer = {
      peerId: seen.peerId,
      instance: seen.instance,
      addrs: seen.addrs,
      ...(seen.advert !== undefined ? { advert: seen.advert } : old?.advert !== undefined ? { advert: old.advert } : {}),
      ttlS,
      receivedAt: now,
      refreshStep: 0,
      jitter: this.c.random() * 0.02,
      strings
    }
    if (old !== undefined && old.instance !== p.instance) this.byInstance.delete(old.instance)
    this.byPeer.set(p.peerId, p)
    this.byInstance.set(p.instance, p.peerId)
    const changed = old === undefined || old.addrs.join(' ') !== p.addrs.join(' ') || old.advert !== p.advert
    if (changed) this.on.peer(p, old === undefined)
    if (old === undefined && this.announceOnReturn) {
      this.announceOnReturn = false
      this.onMassLoss?.()
    }
  }

  private remove (p: CachedPeer, reason: GoneReason): void {
    if (this.byPeer.get(p.peerId) !== p) return
    this.byPeer.delete(p.peerId)
    if (this.byInstance.get(p.instance) === p.peerId) this.byInstance.delete(p.instance)
    this.on.gone(p, reason)
    if (reason !== 'goodbye') this.noteLoss()
  }

  /**
   * No goodbye: a crash, or the network between us failed. One record lost is
   * a colleague gone (nothing to ask: its refresh questions went unanswered).
   * Half the cache or more lost within MASS_LOSS_WINDOW_MS is our network: the
   * browse restarts from 1 s and we announce again (RFC 6762 §8.3, a link
   * change), so both sides find each other once the network is back.
   */
  private noteLoss (): void {
    const now = Date.now()
    this.lostAt = this.lostAt.filter(t => now - t < MASS_LOSS_WINDOW_MS)
    this.lostAt.push(now)
    const lost = this.lostAt.length
    if (lost >= 2 && lost * 2 >= this.byPeer.size + lost) {
      // once per window: the rest of the same sweep's losses are the same event
      if (now - this.massRestartAt < MASS_LOSS_WINDOW_MS) return
      this.massRestartAt = now
      this.restartQueries()
      this.onMassLoss?.()
      // the network may still be down (then nobody heard that announcement): announce again at the first colleague heard
      this.announceOnReturn = true
    } else if (lost === 1 && this.byPeer.size === 0) {
      // our only colleague: a restart costs one small query
      this.restartQueries()
    }
  }

  /**
   * Every PTR of our service in these known-answer lists is one we would
   * list too (§7.3), our own aside: we never list ourselves, and a query of
   * ours would not bring our own record either (so in a warm office, where
   * every query lists us, suppression would otherwise never apply).
   */
  private wouldKnowAll (parts: Rr[][], now: number): boolean {
    const own = this.ownInstance
    for (const part of parts) {
      for (const name of knownIndex(part).ptr.keys()) {
        if (name === own) continue
        const peerId = this.byInstance.get(name)
        const p = peerId === undefined ? undefined : this.byPeer.get(peerId)
        if (p === undefined || p.ttlS - (now - p.receivedAt) / 1000 <= p.ttlS / 2) return false
      }
    }
    return true
  }

  /** PTR records we hold with more than half their TTL left (§7.1). */
  private knownAnswers (now: number): Answer[] {
    const out: Answer[] = []
    for (const p of this.byPeer.values()) {
      const left = p.ttlS - (now - p.receivedAt) / 1000
      if (left > p.ttlS / 2) out.push({ name: SERVICE_TYPE, type: 'PTR', ttl: Math.floor(left), data: p.instance })
    }
    return out
  }

  private scheduleQuery (ms: number): void {
    clearTimeout(this.queryTimer)
    this.nextQueryAt = Date.now() + ms
    this.queryTimer = setTimeout(() => { this.browse() }, ms)
    this.queryTimer.unref()
  }

  private browse (): void {
    if (!this.running) return
    const question: dnsPacket.Question = { name: SERVICE_TYPE, type: 'PTR', class: 'IN' }
    const ka = this.knownAnswers(Date.now())
    this.sendQuery([question], ka, this.firstQuery)
    if (!this.firstQuery) this.interval = Math.min(this.interval * 2, this.init.maxQueryIntervalMs)
    this.firstQuery = false
    this.scheduleQuery(this.interval)
  }

  /**
   * Sends the questions with their known answers, over several packets when
   * they do not fit in one (TC bit on all but the last, §7.2). `unicast` sets
   * the QU bit, which dns-packet cannot encode: it is set in the bytes.
   */
  private sendQuery (questions: dnsPacket.Question[], ka: Answer[], unicast: boolean): void {
    const chunks: Answer[][] = [[]]
    let size = 12 + questions.reduce((n, q) => n + nameBytes(q.name) + 4, 0)
    for (const a of ka) {
      // a PTR record: owner name, type, class, TTL, length, target name (dns-packet does not compress)
      const n = nameBytes(a.name) + 10 + nameBytes(String((a as Rr).data))
      if (size + n > MAX_MDNS_PACKET_BYTES && (chunks.at(-1) as Answer[]).length > 0) { chunks.push([]); size = 12 }
      ;(chunks.at(-1) as Answer[]).push(a)
      size += n
    }
    chunks.forEach((answers, i) => {
      const last = i === chunks.length - 1
      const buf = dnsPacket.encode({ type: 'query', id: 0, flags: last ? 0 : dnsPacket.TRUNCATED_RESPONSE, questions: i === 0 ? questions : [], answers })
      if (i === 0 && unicast) {
        let off = 12
        for (const q of questions) { off += nameBytes(q.name) + 4; buf[off - 2] = (buf[off - 2] as number) | 0x80 }
      }
      this.c.transport.send(buf, this.c.token)
    })
  }

  private askNow (instance: string): void {
    this.ask.add(instance)
    // batched: every instance asked in this turn of the event loop goes in one packet
    if (this.ask.size === 1) queueMicrotask(() => { this.flushAsk() })
  }

  private flushAsk (): void {
    if (this.ask.size === 0 || !this.running) return
    const names = [...this.ask]
    this.ask.clear()
    for (let i = 0; i < names.length; i += 100) {
      this.sendQuery(names.slice(i, i + 100).map(n => ({ name: n, type: 'TXT', class: 'IN' })), [], false)
    }
  }

  /** Expires records past their TTL; asks for those at a refresh point. */
  private sweep (): void {
    const now = Date.now()
    for (const p of [...this.byPeer.values()]) {
      const age = (now - p.receivedAt) / 1000
      if (age >= p.ttlS) { this.remove(p, 'expired'); continue }
      const at = REFRESH_AT[p.refreshStep]
      if (at !== undefined && age >= p.ttlS * (at + p.jitter)) {
        p.refreshStep++
        this.ask.add(p.instance)
      }
    }
    this.flushAsk()
  }

  private timer (ms: number, fn: () => void): void {
    const t = setTimeout(() => { this.reconfirmTimers.delete(t); fn() }, ms)
    t.unref()
    this.reconfirmTimers.add(t)
  }
}

/** Bytes of an uncompressed DNS name: a length byte per label, the labels, the final zero. */
const nameBytes = (name: string): number => Buffer.byteLength(name) + 2

export { instanceName }
