/**
 * The answering half of RFC 6762 for our own records: announcements on start
 * and on change (twice, one second apart, §8.3), goodbye with TTL 0 on stop
 * (§10.1), known-answer suppression (§7.1), a record multicast at most once a
 * second (§6), shared-record answers delayed 20-120 ms and aggregated (§6; the
 * window grows with the office, `spreadMs`),
 * 400-500 ms when the query's known answers continue in further packets
 * (§7.2), unicast answers to QU questions when the records were multicast
 * within a quarter of their TTL (§5.4) or when the querier is a newcomer (no
 * known answers), and legacy unicast answers to queries from a port other
 * than 5353 (§6.7). Unicast answers go to one address:port at most once a
 * second, and the queriers remembered for that are bounded.
 */
import * as dnsPacket from 'dns-packet'
import { MDNS_PORT, type MdnsTransport, type PacketSource } from './socket.js'
import {
  SERVICE_ENUMERATION, SERVICE_TYPE, hostName, instanceName, knownIndex, sameName, selfRecords,
  type Answer, type Rr, type SelfRecords, type SignRecord
} from './records.js'

export interface ResponderComponents {
  transport: MdnsTransport
  /** our token on the transport */
  token: number
  random: () => number
  /** the TTL to put on our records now, seconds */
  ttl: () => number
  sign?: SignRecord
  /**
   * The window, ms, over which an answer to a browse question (a shared PTR
   * record every colleague answers) is spread at random: 100 ms per the RFC
   * (§6: 20-120 ms) in a small office, growing with it, so a newcomer's
   * question in an office of 500 does not bring 500 answers within 100 ms
   * (more than a receive buffer holds). @default 100
   */
  spreadMs?: () => number
}

/** A query with its known answers from every packet (§7.2). */
export interface FullQuery {
  questions: Rr[]
  knownAnswers: Rr[]
  /** the same known answers as the packets' own lists (indexed once per packet, records.ts knownIndex); absent: [knownAnswers] */
  knownParts?: Rr[][]
  from: PacketSource
  id: number
  /** every question asked for a unicast answer (QU bit) */
  unicast: boolean
}

const ANNOUNCE_GAP_MS = 1000
const MIN_MULTICAST_GAP_MS = 1000
const LEGACY_UNICAST_TTL_S = 10
/** a unicast answer (QU or legacy) to one address:port at most this often */
const MIN_UNICAST_GAP_MS = 1000
/** queriers remembered for that limit, and unicast answers waiting for their delay, at most */
const MAX_UNICAST_SOURCES = 1024
/** unicast answers per second at most, to all queriers together (a newcomer gets one; an office's arrivals are far fewer) */
const MAX_UNICAST_PER_S = 200

type Want = 'ptr' | 'enum' | 'instance' | 'host'

export class MdnsResponder {
  private self?: SelfRecords
  private lastMulticastAt = -Infinity
  private pending?: { wants: Set<Want>, timer: NodeJS.Timeout }
  private readonly timers = new Set<NodeJS.Timeout>()

  constructor (private readonly c: ResponderComponents) {}

  /** Sets our records; announces them (twice) when they changed. */
  update (self: SelfRecords): void {
    const before = this.self === undefined ? '' : JSON.stringify(this.self)
    this.self = { ...self, addrs: [...self.addrs] }
    if (JSON.stringify(this.self) === before) return
    this.signedTxt = undefined
    this.announce()
  }

  /** Announces our records again (twice): a link change, or our side of the network was cut off (§8.3). */
  reannounce (): void {
    if (this.self !== undefined) this.announce()
  }

  private announce (): void {
    this.send(new Set<Want>(['ptr', 'instance', 'host']), this.c.ttl())
    this.later(ANNOUNCE_GAP_MS, () => { this.send(new Set<Want>(['ptr', 'instance', 'host']), this.c.ttl()) })
  }

  /** Goodbye: our records with TTL 0, so caches drop them at once. */
  stop (): void {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    this.unicastPending.clear()
    this.unicastSentAt.clear()
    if (this.pending !== undefined) { clearTimeout(this.pending.timer); this.pending = undefined }
    if (this.self !== undefined) this.send(new Set<Want>(['ptr', 'instance', 'host']), 0)
    this.self = undefined
    this.signedTxt = undefined
  }

  /** Answers what the query asks about us, unless the querier knows it already. */
  onQuery (q: FullQuery, delayed: boolean): void {
    const self = this.self
    if (self === undefined) return
    const ttl = this.c.ttl()
    const wants = this.wanted(q.questions, self)
    this.suppressKnown(wants, q.knownParts ?? [q.knownAnswers], self, ttl)
    if (wants.size === 0) return
    const now = Date.now()
    if (q.from.port !== MDNS_PORT) { this.legacyUnicast(q, wants, ttl); return }
    const recent = now - this.lastMulticastAt
    const shared = wants.has('ptr') || wants.has('enum')
    // a QU querier gets its own copy when we multicast within a quarter of the TTL (§5.4), and always when it is
    // a newcomer (a QU question with no known answers): everyone else's copy of our records is fresh (they are
    // refreshed at 80-95 % of the TTL), so a multicast would only make the whole office take in one answer per
    // colleague for every arrival (about 350 of 500 in a large office, whose TTL/4 window is minutes long)
    const newcomer = q.unicast && q.knownAnswers.length === 0
    if (q.unicast && (newcomer || recent < ttl * 1000 / 4 || recent < MIN_MULTICAST_GAP_MS)) { this.unicastAnswer(wants, q.from, shared && !delayed); return }
    if (recent < MIN_MULTICAST_GAP_MS) return
    // unique records (asked by instance name) at once; a shared PTR after a random delay, aggregated
    if (!shared) { this.send(wants, ttl); return }
    if (this.pending !== undefined) { for (const w of wants) this.pending.wants.add(w); return }
    const delay = delayed ? 0 : this.sharedDelay()
    const timer = setTimeout(() => {
      const p = this.pending
      this.pending = undefined
      this.timers.delete(timer)
      if (p !== undefined && Date.now() - this.lastMulticastAt >= MIN_MULTICAST_GAP_MS) this.send(p.wants, this.c.ttl())
    }, delay)
    this.timers.add(timer)
    this.pending = { wants, timer }
  }

  /** §6: 20 ms plus a random part of the spread window (100 ms in a small office). */
  private sharedDelay (): number { return 20 + this.c.random() * Math.max(100, this.c.spreadMs?.() ?? 100) }

  /** Unicast answers waiting for their random delay, by querier (a repeated question joins the waiting answer). */
  private readonly unicastPending = new Map<string, { wants: Set<Want>, timer: NodeJS.Timeout }>()

  /** when each querier (address:port) last got a unicast answer from us: at most one a second each (a spoofed source cannot use us as a reflector) */
  private readonly unicastSentAt = new Map<string, number>()
  private unicastWindow = { at: 0, n: 0 }

  /** May `to` get a unicast answer now? Counts it if so. Bounded: the oldest entries go first. */
  private unicastAllowed (to: PacketSource): boolean {
    const key = `${to.address}:${to.port}`
    const now = Date.now()
    const last = this.unicastSentAt.get(key)
    if (last !== undefined && now - last < MIN_UNICAST_GAP_MS) return false
    // and all together (spoofed sources by the thousand): a budget per second
    if (now - this.unicastWindow.at >= 1000) this.unicastWindow = { at: now, n: 0 }
    if (this.unicastWindow.n >= MAX_UNICAST_PER_S) return false
    this.unicastWindow.n++
    this.unicastSentAt.delete(key)
    this.unicastSentAt.set(key, now)
    if (this.unicastSentAt.size > MAX_UNICAST_SOURCES) {
      for (const [k, at] of this.unicastSentAt) {
        if (this.unicastSentAt.size <= MAX_UNICAST_SOURCES && now - at < MIN_UNICAST_GAP_MS) break
        this.unicastSentAt.delete(k)
      }
    }
    return true
  }

  private unicastAnswer (wants: Set<Want>, to: PacketSource, spread: boolean): void {
    const key = `${to.address}:${to.port}`
    const waiting = this.unicastPending.get(key)
    if (waiting !== undefined) { for (const w of wants) waiting.wants.add(w); return }
    // answers waiting for their delay are bounded too (a flood of spoofed sources): the rest ask again by multicast
    if (spread && this.unicastPending.size >= MAX_UNICAST_SOURCES) return
    if (!this.unicastAllowed(to)) return
    if (!spread) { this.sendTo(wants, this.c.ttl(), to); return }
    const timer = setTimeout(() => {
      const p = this.unicastPending.get(key)
      this.unicastPending.delete(key)
      this.timers.delete(timer)
      if (p !== undefined && this.self !== undefined) this.sendTo(p.wants, this.c.ttl(), to)
    }, this.sharedDelay())
    this.timers.add(timer)
    this.unicastPending.set(key, { wants, timer })
  }

  private wanted (questions: Rr[], self: SelfRecords): Set<Want> {
    const wants = new Set<Want>()
    const instance = instanceName(self.peerId)
    const host = hostName(self.peerId)
    for (const q of questions) {
      const any = q.type === 'ANY'
      if (sameName(q.name, SERVICE_TYPE) && (any || q.type === 'PTR')) wants.add('ptr')
      else if (sameName(q.name, SERVICE_ENUMERATION) && (any || q.type === 'PTR')) wants.add('enum')
      else if (sameName(q.name, instance) && (any || q.type === 'SRV' || q.type === 'TXT')) wants.add('instance')
      else if (sameName(q.name, host) && (any || q.type === 'A' || q.type === 'AAAA')) wants.add('host')
    }
    return wants
  }

  /** §7.1: a record the querier lists with at least half its TTL left is not sent again. */
  private suppressKnown (wants: Set<Want>, parts: Rr[][], self: SelfRecords, ttl: number): void {
    const instance = instanceName(self.peerId)
    const lower = instance.toLowerCase()
    const fresh = (r: Rr): boolean => (r.ttl ?? 0) >= ttl / 2
    for (const part of parts) {
      if (part.length === 0) continue
      const idx = knownIndex(part)
      if ((idx.ptr.get(lower) ?? 0) >= ttl / 2) wants.delete('ptr')
      for (const r of idx.others) {
        if (!fresh(r)) continue
        if (r.type === 'PTR' && sameName(r.name, SERVICE_ENUMERATION)) wants.delete('enum')
        if (r.type === 'TXT' && sameName(r.name, instance)) wants.delete('instance')
      }
    }
  }

  private signedTxt?: { ttl: number, txt: Answer }

  private packet (wants: Set<Want>, ttl: number, flush: boolean): { answers: Answer[], additionals: Answer[] } {
    const r = selfRecords(this.self as SelfRecords, ttl, this.signedTxt === undefined ? this.c.sign : undefined)
    // signed once per change of our records, not per answer
    if (this.signedTxt === undefined) this.signedTxt = { ttl, txt: r.txt }
    else r.txt = { ...this.signedTxt.txt, ttl } as Answer
    const unique = (a: Answer): Answer => flush ? a : { ...a, flush: false } as Answer
    const srv = r.srv !== null ? [unique(r.srv)] : []
    const txt = unique(r.txt)
    const hosts = r.hosts.map(unique)
    const answers: Answer[] = []
    if (wants.has('enum')) answers.push({ name: SERVICE_ENUMERATION, type: 'PTR', ttl, data: SERVICE_TYPE })
    if (wants.has('ptr')) answers.push(r.ptr)
    if (wants.has('instance')) answers.push(...srv, txt)
    if (wants.has('host')) answers.push(...hosts)
    // RFC 6763 §12: the records a browser needs next come along as additionals
    const additionals = wants.has('ptr') || wants.has('instance') ? [...srv, txt, ...hosts].filter(a => !answers.includes(a)) : []
    return { answers, additionals }
  }

  private send (wants: Set<Want>, ttl: number): void {
    if (this.self === undefined) return
    this.lastMulticastAt = Date.now()
    const { answers, additionals } = this.packet(wants, ttl, true)
    this.c.transport.send(dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers, additionals }), this.c.token)
  }

  private sendTo (wants: Set<Want>, ttl: number, to: PacketSource): void {
    const { answers, additionals } = this.packet(wants, ttl, true)
    this.c.transport.send(dnsPacket.encode({ type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER, answers, additionals }), this.c.token, to)
  }

  /** §6.7: a one-shot resolver (not on port 5353) gets its id and questions back, short TTLs, no cache-flush bits. */
  private legacyUnicast (q: FullQuery, wants: Set<Want>, ttl: number): void {
    if (!this.unicastAllowed(q.from)) return
    const { answers, additionals } = this.packet(wants, Math.min(ttl, LEGACY_UNICAST_TTL_S), false)
    const questions = q.questions as dnsPacket.Question[]
    const packet = dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.AUTHORITATIVE_ANSWER, questions, answers, additionals })
    this.c.transport.send(packet, this.c.token, q.from)
  }

  private later (ms: number, fn: () => void): void {
    const t = setTimeout(() => { this.timers.delete(t); fn() }, ms)
    t.unref()
    this.timers.add(t)
  }
}
