/**
 * Finding Parley 0.1.0 peers on the LAN (issue 11, migration: "needs an update" instead of silent
 * failure). Parley 0.1.0 browsed and announced `_parley._udp.local` with @libp2p/mdns, which answers
 * every query by multicast: one question from anyone brings every old peer's answer to everyone. So
 * this side asks rarely (1 s, 2 s, 4 s ... up to `maxIntervalMs`), and a question someone else asked
 * postpones ours (RFC 6762 §7.3): in an office of updated nodes about one legacy question goes out per
 * interval in all. An old peer heard is reported once per `reportEveryMs` (the host dials it once; its
 * profile then says it is old).
 */
import * as dnsPacket from 'dns-packet'
import { LEGACY_SERVICE_TYPE, readLegacyInstances, sameName, type Rr } from './records.js'
import type { MdnsTransport } from './socket.js'

export interface LegacyBrowseInit {
  /** @default 300_000 */
  maxIntervalMs?: number
  /** @default 600_000 */
  reportEveryMs?: number
}

/** old peers remembered at most (a flood of invented ones costs a bounded map) */
const MAX_LEGACY = 256
const FIRST_INTERVAL_MS = 1000

export class LegacyBrowse {
  private timer?: NodeJS.Timeout
  private interval = FIRST_INTERVAL_MS
  private readonly reported = new Map<string, number>()
  private readonly maxIntervalMs: number
  private readonly reportEveryMs: number
  /** legacy questions this side sent (tests, stats) */
  sent = 0

  constructor (private readonly c: { transport: MdnsTransport, token: number, self: string, random: () => number },
    private readonly onPeer: (peerId: string, addrs: string[]) => void, init: LegacyBrowseInit = {}) {
    this.maxIntervalMs = init.maxIntervalMs ?? 300_000
    this.reportEveryMs = init.reportEveryMs ?? 600_000
  }

  start (): void {
    if (this.timer !== undefined) return
    this.interval = FIRST_INTERVAL_MS
    this.schedule(20 + this.c.random() * 100)
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.reported.clear()
  }

  onResponse (records: Rr[]): void {
    if (this.timer === undefined || !records.some(r => r.name.toLowerCase().endsWith(LEGACY_SERVICE_TYPE))) return
    const now = Date.now()
    for (const seen of readLegacyInstances(records)) {
      if (seen.peerId === this.c.self || seen.ttl === 0) continue
      const last = this.reported.get(seen.peerId)
      if (last !== undefined && now - last < this.reportEveryMs) continue
      if (last === undefined && this.reported.size >= MAX_LEGACY) continue
      this.reported.set(seen.peerId, now)
      this.onPeer(seen.peerId, seen.addrs)
    }
  }

  /** Someone asked for the old service: its answers reach us too, so ours waits a full interval. */
  onForeignQuery (questions: Rr[]): void {
    if (this.timer === undefined) return
    if (!questions.some(q => sameName(q.name, LEGACY_SERVICE_TYPE) && (q.type === 'PTR' || q.type === 'ANY'))) return
    this.schedule(this.interval + this.c.random() * this.interval * 0.2)
  }

  private schedule (ms: number): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { this.ask() }, ms)
    this.timer.unref()
  }

  private ask (): void {
    this.sent++
    this.c.transport.send(dnsPacket.encode({ type: 'query', id: 0, questions: [{ name: LEGACY_SERVICE_TYPE, type: 'PTR', class: 'IN' }] }), this.c.token)
    this.interval = Math.min(this.interval * 2, this.maxIntervalMs)
    this.schedule(this.interval)
  }
}
