/**
 * LAN discovery by RFC 6762/6763 multicast DNS: our responder and browser on
 * one socket. It replaces @libp2p/mdns, which answers every query by
 * multicast (an office of N hears N answers per query from every one of N
 * queriers) and queries at a fixed interval forever.
 *
 * Our records' TTL grows with the office (`minTtlS`, plus `ttlPerPeerS` for
 * every peer we know, at most `maxTtlS`): each record is refreshed once per
 * TTL, so the refresh traffic every node hears stays about the same from 50
 * to 500 colleagues. The price: a peer that vanishes without a goodbye (power
 * cut, kill -9) and that nobody is connected to stays listed up to one TTL;
 * a failed connection reconfirms it at once (RFC 6762 §10.4).
 */
import { MdnsBrowser, type BrowserEvents, type BrowserInit, type CachedPeer } from './browser.js'
import { MdnsResponder, type FullQuery } from './responder.js'
import { LegacyBrowse, type LegacyBrowseInit } from './legacy.js'
import type { MdnsTransport, PacketSource, ReceivedPacket } from './socket.js'
import type { Rr, SelfRecords, SignRecord, VerifyRecord } from './records.js'
import type { Logger } from '../../../../core/util/log.js'
import * as dnsPacket from 'dns-packet'

export interface MdnsDiscoveryInit extends BrowserInit {
  /** the least TTL on our records, seconds. @default 120 (RFC 6762 §10, host-name records) */
  minTtlS?: number
  /** TTL added for every peer in our cache, seconds. @default 2 */
  ttlPerPeerS?: number
  /** the browse for Parley 0.1.0 peers (legacy.ts), when `on.legacy` is given */
  legacy?: LegacyBrowseInit
}

/** What discovery reports: the browser's events, and Parley 0.1.0 peers heard (issue 11: "needs an update"). */
export type DiscoveryEvents = BrowserEvents & { legacy?: (peerId: string, addrs: string[]) => void }

export const DEFAULT_MIN_TTL_S = 120
export const DEFAULT_TTL_PER_PEER_S = 2
const SPREAD_PER_PEER_MS = 2
const MAX_SPREAD_MS = 2000
/** §7.2: a responder waits 400-500 ms for the rest of a known-answer list */
const KNOWN_ANSWER_WAIT_MS = 400

export interface MdnsDiscoveryComponents {
  transport: MdnsTransport
  log: Logger
  /** @default Math.random */
  random?: () => number
  /** signs our records / checks theirs (the host passes the device key); absent: unsigned */
  sign?: SignRecord
  verify?: VerifyRecord
}

/** The TTL of our records with `peers` colleagues known, seconds. */
export const recordTtlS = (peers: number, minTtlS = DEFAULT_MIN_TTL_S, ttlPerPeerS = DEFAULT_TTL_PER_PEER_S, maxTtlS = 4500): number =>
  Math.min(maxTtlS, Math.max(minTtlS, Math.ceil(peers * ttlPerPeerS)))

/** The window answers to browse questions are spread over with `peers` colleagues known, ms (MdnsDiscovery.spreadMs). */
export const answerSpreadMs = (peers: number): number => Math.min(MAX_SPREAD_MS, Math.max(100, peers * SPREAD_PER_PEER_MS))

const QU_CLASS = `UNKNOWN_${0x8001}`

const allRecords = new WeakMap<object, Rr[]>()
/** A response's answers and additionals, as one list per packet (so its parse is shared, see readInstances). */
export function recordsOf (packet: dnsPacket.Packet): Rr[] {
  let list = allRecords.get(packet)
  if (list === undefined) {
    list = [...(packet.answers ?? []), ...(packet.additionals ?? [])] as Rr[]
    allRecords.set(packet, list)
  }
  return list
}

/**
 * Queries as responders must see them (§7.2): a query whose known answers go
 * on in further packets (TC bit) is handed on once its last packet came, or
 * after 400-500 ms; QU questions marked `unicast`. One per socket user (a
 * discovery instance, or the office benchmark's emulated colleagues).
 */
export class QueryAssembly {
  private readonly assembling = new Map<string, { q: FullQuery, timer: NodeJS.Timeout }>()

  constructor (private readonly dispatch: (q: FullQuery, waited: boolean) => void) {}

  onPacket (packet: dnsPacket.Packet, from: PacketSource): void {
    const key = `${from.address}:${from.port}`
    const questions = (packet.questions ?? []) as Rr[]
    const pending = this.assembling.get(key)
    if (pending !== undefined && questions.length === 0) {
      // §7.2: the known answers continue
      pending.q.knownAnswers.push(...(packet.answers ?? []) as Rr[])
      pending.q.knownParts?.push((packet.answers ?? []) as Rr[])
      if (((packet.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE) === 0) this.finish(key)
      return
    }
    if (pending !== undefined) this.finish(key)
    if (questions.length === 0) return
    const q: FullQuery = {
      questions: questions.map(x => x.class === QU_CLASS ? { ...x, class: 'IN' } : x),
      knownAnswers: [...(packet.answers ?? [])] as Rr[],
      knownParts: [(packet.answers ?? []) as Rr[]],
      from,
      id: packet.id ?? 0,
      unicast: questions.every(x => x.class === QU_CLASS)
    }
    if (((packet.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE) !== 0) {
      const timer = setTimeout(() => { this.finish(key) }, KNOWN_ANSWER_WAIT_MS + Math.random() * 100)
      timer.unref()
      this.assembling.set(key, { q, timer })
      return
    }
    this.dispatch(q, false)
  }

  clear (): void {
    for (const a of this.assembling.values()) clearTimeout(a.timer)
    this.assembling.clear()
  }

  private finish (key: string): void {
    const a = this.assembling.get(key)
    if (a === undefined) return
    clearTimeout(a.timer)
    this.assembling.delete(key)
    this.dispatch(a.q, true)
  }
}

export class MdnsDiscovery {
  private readonly browser: MdnsBrowser
  private readonly responder: MdnsResponder
  private readonly legacy?: LegacyBrowse
  private readonly token: number
  private readonly minTtlS: number
  private readonly ttlPerPeerS: number
  private readonly maxTtlS: number
  private unsubscribe?: () => void
  private readonly queries = new QueryAssembly((q, waited) => { this.dispatch(q, waited) })

  constructor (private readonly c: MdnsDiscoveryComponents, readonly peerId: string, on: DiscoveryEvents, init: MdnsDiscoveryInit = {}) {
    const random = c.random ?? Math.random
    this.token = c.transport.token()
    this.minTtlS = init.minTtlS ?? DEFAULT_MIN_TTL_S
    this.ttlPerPeerS = init.ttlPerPeerS ?? DEFAULT_TTL_PER_PEER_S
    this.maxTtlS = init.maxTtlS ?? 4500
    if (!(this.minTtlS >= 1 && this.minTtlS <= this.maxTtlS)) throw new RangeError(`mDNS TTL must be 1..${this.maxTtlS} s, got ${this.minTtlS}`)
    // the refresh points (80-95 % of the TTL) must not fall between two sweeps
    const sweepMs = init.sweepMs ?? Math.min(1000, this.minTtlS * 25)
    const verify = c.verify !== undefined ? { verify: c.verify } : {}
    const sign = c.sign !== undefined ? { sign: c.sign } : {}
    this.browser = new MdnsBrowser({ transport: c.transport, token: this.token, random, self: peerId, ...verify }, on, { ...init, sweepMs })
    this.responder = new MdnsResponder({ transport: c.transport, token: this.token, random, ttl: () => this.ttl(), spreadMs: () => this.spreadMs(), ...sign })
    this.browser.onMassLoss = () => { this.responder.reannounce() }
    if (on.legacy !== undefined) this.legacy = new LegacyBrowse({ transport: c.transport, token: this.token, self: peerId, random }, on.legacy, init.legacy)
  }

  /** The TTL our records carry now, seconds. */
  ttl (): number {
    return recordTtlS(this.browser.size, this.minTtlS, this.ttlPerPeerS, this.maxTtlS)
  }

  /**
   * The window our answers to browse questions are spread over, ms: 100 (the
   * RFC's 20-120 ms) up to 50 colleagues, then 2 ms per colleague, at most
   * 2 s, so the answers a newcomer gets arrive at about 500 a second at most.
   */
  spreadMs (): number { return answerSpreadMs(this.browser.size) }

  get running (): boolean { return this.unsubscribe !== undefined }

  start (self: SelfRecords): void {
    if (this.unsubscribe !== undefined) return
    const unsubscribe = this.c.transport.subscribe((p) => { this.onPacket(p) })
    // a new interface (Wi-Fi back, a cable plugged in): browse from 1 s and announce again (§8.3)
    const offChange = this.c.transport.onNetworkChange?.(() => { this.networkChanged() })
    this.unsubscribe = () => { unsubscribe(); offChange?.() }
    this.browser.start()
    this.legacy?.start()
    this.responder.update(self)
  }

  /** The network changed under us: the cache may be wrong and others may not have our records. */
  networkChanged (): void {
    if (this.unsubscribe === undefined) return
    this.browser.restartQueries()
    this.responder.reannounce()
  }

  /** New addresses or advert: announced when they differ. */
  update (self: SelfRecords): void {
    if (this.unsubscribe === undefined) return
    this.responder.update(self)
  }

  /** Sends the goodbye and forgets the cache. */
  stop (): void {
    if (this.unsubscribe === undefined) return
    this.responder.stop()
    this.browser.stop()
    this.legacy?.stop()
    this.unsubscribe()
    this.unsubscribe = undefined
    this.queries.clear()
  }

  get rejected (): number { return this.browser.rejected }
  has (peerId: string): boolean { return this.browser.get(peerId) !== undefined }
  get (peerId: string): CachedPeer | undefined { return this.browser.get(peerId) }
  peers (): CachedPeer[] { return this.browser.peers() }
  reconfirm (peerId: string): void { this.browser.reconfirm(peerId) }
  restartQueries (): void { this.browser.restartQueries() }
  /** browse restarts so far (network changes, mass losses) */
  get restarts (): number { return this.browser.restarts }
  /** questions for Parley 0.1.0 peers sent so far */
  get legacyQueries (): number { return this.legacy?.sent ?? 0 }

  private onPacket ({ packet, from, sentBy }: ReceivedPacket): void {
    if (sentBy === this.token) return
    if (packet.type === 'response') {
      this.browser.onResponse(recordsOf(packet))
      this.legacy?.onResponse(recordsOf(packet))
      return
    }
    this.queries.onPacket(packet, from)
  }

  private dispatch (q: FullQuery, waited: boolean): void {
    this.responder.onQuery(q, waited)
    this.browser.onForeignQuery(q)
    this.legacy?.onForeignQuery(q.questions)
  }
}
