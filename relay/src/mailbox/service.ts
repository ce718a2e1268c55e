/**
 * The mailbox service: the relay's RPC handlers (redeem, status, deposit,
 * fetch, ack, directory), admission, the metrics, and the sweeper that deletes expired
 * mail. It checks signatures and addressing, never content, and answers a
 * deposit only once its write is durable.
 */
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { verifyEnvelope } from '../../../core/crypto/envelope.js'
import { foldAccount, verifyAccountRecord } from '../../../core/crypto/account.js'
import { parseAccountRecord } from '../../../core/protocol/account.js'
import {
  parseAckMail, parseDeposit, parseFetch, parsePublish, parseRedeem,
  type DepositAnswer, type OfficePerson, type FetchResult, type RelayRpcMethod, type RelayStatus
} from '../../../core/protocol/relay-rpc.js'
import { AckAfterWrite, type RpcChannel } from '../../../core/rpc/channel.js'
import type { Logger } from '../../../core/util/log.js'
import type { DepartmentNode } from '../../../core/protocol/directory.js'
import type { RelayMetrics } from '../admin/metrics.js'
import type { MailboxStore } from '../store/types.js'
import type { Federation } from '../federation/federation.js'
import type { FederationStore } from '../federation/types.js'
import type { RelayCounters } from '../types.js'

export interface MailboxServiceComponents {
  store: MailboxStore
  log: Logger
  /** closes the peer's reservation and connections (after its admission is withdrawn) */
  disconnect: (peerId: string) => Promise<void>
  /**
   * the counters and the store latency histogram (Prometheus /metrics, stats, the console's charts); owned by the
   * caller, so the counts outlive a stop() and start() of the service
   */
  metrics: RelayMetrics
  /** the company directory the admin imported. @default an empty one */
  directory?: () => Promise<DepartmentNode>
  /** a peer spoke to the relay (last seen) */
  seen?: (peerId: string) => void
  /** federation (relay/src/federation/): recipients of other offices are queued for their home relay */
  federation?: FederationRoom
}

/** What the mailbox service needs of federation. */
export type FederationRoom = Pick<Federation, 'route' | 'lookup' | 'enqueue' | 'offices'>

export interface MailboxServiceInit {
  /** how often expired mail is deleted */
  sweepIntervalMs: number
}

/** What each relay RPC method answers; `deposit` only after the durable write. */
export interface RelayRpcAnswers {
  redeem: { admitted: true, since: number }
  relayStatus: RelayStatus
  deposit: AckAfterWrite<DepositAnswer>
  fetch: FetchResult
  ackMail: { deleted: number }
  directory: DepartmentNode
  mailWaiting: never
  publish: AckAfterWrite<{ listed: boolean }>
  offices: { people: OfficePerson[] }
}

export type RelayRpcHandlers = { [M in RelayRpcMethod]: (remote: string, body: unknown) => Promise<RelayRpcAnswers[M]> }

export class MailboxService {
  private sweeper?: NodeJS.Timeout
  private readonly metrics: RelayMetrics

  /** One handler per relay RPC method. */
  readonly handlers: RelayRpcHandlers = {
    redeem: async (remote, body) => {
      const { token } = parseRedeem(body)
      const user = await this.metrics.timeStore('redeem', async () => await this.c.store.redeem(token, remote))
      this.metrics.inviteRedeemed()
      this.c.log.info('invite redeemed', { peerId: remote })
      return { admitted: true, since: user.admittedAt }
    },
    relayStatus: async (remote, body) => {
      await this.accountOf(remote, body)
      const admitted = this.c.store.isAdmitted(remote)
      // a node that takes `mailWaiting` says so (an older one would reset the stream on a method it does not know)
      if (admitted && wantsWake(body)) this.wakeable.add(remote)
      return { admitted, queued: admitted ? await this.c.store.queued(remote) : 0 }
    },
    deposit: async (remote, body) => {
      this.requireAdmitted(remote, 'deposit')
      const { to, envelope, home } = parseDeposit(body)
      if (envelope.author !== remote) throw new ParleyError('ERR_INVALID_ENVELOPE', 'only the author may deposit an envelope')
      for (const t of to) {
        if (!envelope.keys.some(k => k.to === t)) throw new ParleyError('ERR_INVALID_ENVELOPE', 'the envelope is not sealed for every recipient named')
      }
      verifyEnvelope(envelope)
      // fan-out: one copy per admitted recipient; recipients homed at a paired relay are queued for it; the others are named back
      const known = to.filter(t => this.c.store.isAdmitted(t))
      const byRelay = new Map<string, string[]>()
      const unknown: string[] = []
      for (const t of to) {
        if (this.c.store.isAdmitted(t)) continue
        // a route this instance has not seen: another instance may have learned it (shared store); the channel
        // handles its requests one at a time, so waiting here keeps the deposits in order
        const relay = this.c.federation?.route(t, home[t]) ?? await this.c.federation?.lookup(t, home[t])
        if (relay === undefined) { unknown.push(t); continue }
        byRelay.set(relay, [...(byRelay.get(relay) ?? []), t])
      }
      const forwarded = [...byRelay.values()].flat()
      if (known.length === 0 && forwarded.length === 0) throw new ParleyError('ERR_UNKNOWN_RECIPIENT', 'no recipient has an account on this relay')
      // checked and staged in arrival order now; answered once the write is on disk
      const bytes = JSON.stringify(envelope).length
      const written = known.length === 0
        ? Promise.resolve({ stored: 0, full: [], shareFull: [] })
        : this.metrics.timeStore('deposit', async () => await this.c.store.depositAll(known, remote, envelope, bytes))
      const queued = forwarded.length === 0 ? Promise.resolve() : this.c.federation!.enqueue(byRelay, envelope, bytes)
      queued.catch(() => {})
      // `full` names every recipient refused for room (what older nodes read), `shareFull` those refused by the sender's share
      return new AckAfterWrite(written.then(async ({ stored, full, shareFull }): Promise<DepositAnswer> => {
        await queued
        this.metrics.deposited(stored, known.length - stored - full.length, full.length)
        const kept = stored + forwarded.length
        return { status: kept > 0 ? 'stored' : 'duplicate', stored: kept, unknown, full, shareFull, ...(forwarded.length > 0 ? { forwarded } : {}) }
      }, (err: unknown) => {
        const code = toParleyError(err).code
        if (code === 'ERR_SENDER_SHARE_FULL') this.c.log.warn('sender share of a mailbox full', { sender: remote, recipients: known.length })
        throw err
      }))
    },
    fetch: async (remote, body) => {
      this.requireAdmitted(remote, 'fetch')
      const { after, limit } = parseFetch(body)
      const result = await this.metrics.timeStore('fetch', async () => await this.c.store.fetch(remote, after, limit))
      this.metrics.mailFetched(result.items.length)
      return result
    },
    ackMail: async (remote, body) => {
      this.requireAdmitted(remote, 'ackMail')
      const ack = parseAckMail(body)
      const store = this.c.store
      const n = await this.metrics.timeStore('ack', async () => 'upTo' in ack ? await store.ack(remote, ack.upTo) : await store.ackCursors(remote, ack.cursors))
      this.metrics.mailDelivered(n)
      return { deleted: n }
    },
    directory: async (remote) => {
      this.requireAdmitted(remote, 'directory')
      return await (this.c.directory?.() ?? { name: '', people: [], departments: [] })
    },
    mailWaiting: async () => { throw new ParleyError('ERR_NOT_FOUND', 'mailWaiting is sent by the relay, not to it') },
    // federation directory: the user's own choice to be listed for the other offices
    publish: async (remote, body) => {
      this.requireAdmitted(remote, 'publish')
      const p = parsePublish(body)
      const listing = p.listed ? { peerId: remote, name: p.name, ...(p.department !== undefined ? { department: p.department } : {}),
        updatedAt: Date.now() } : null
      const store = this.c.store as MailboxStore & Partial<FederationStore>
      if (store.putListing === undefined) throw new ParleyError('ERR_NOT_FOUND', 'this relay keeps no directory for other offices')
      return new AckAfterWrite(store.putListing(remote, listing).then(() => ({ listed: p.listed })))
    },
    offices: async (remote, body) => {
      this.requireAdmitted(remote, 'offices')
      const o = typeof body === 'object' && body !== null ? body as { q?: unknown } : {}
      const q = typeof o.q === 'string' ? o.q.slice(0, 100) : ''
      return { people: this.c.federation?.offices(q) ?? [] }
    }
  }

  /**
   * Admission per account (issue 11): a node sends its account record beside `relayStatus`. A current
   * device of an account with an admitted device is admitted too; the devices the record revoked lose
   * their admission. A record that does not verify changes nothing.
   */
  private async accountOf (remote: string, body: unknown): Promise<void> {
    const value = typeof body === 'object' && body !== null ? (body as { account?: unknown }).account : undefined
    if (value === undefined) return
    let state
    try {
      const record = parseAccountRecord(value)
      verifyAccountRecord(record)
      state = foldAccount(record.account, record.ops)
    } catch (err) {
      this.c.log.warn('account record refused', { peerId: remote, err: toParleyError(err).message })
      return
    }
    for (const d of state.revoked) {
      if (this.c.store.isAdmitted(d) && await this.c.store.removeUser(d)) {
        this.wakeable.delete(d)
        this.c.log.info('revoked device: admission dropped', { peerId: d, account: state.account })
      }
    }
    if (this.c.store.isAdmitted(remote) || !state.devices.includes(remote)) return
    if (state.devices.some(d => this.c.store.isAdmitted(d))) {
      await this.c.store.admit(remote, 'account', state.account.slice(-12))
      this.c.log.info('device admitted with its account', { peerId: remote, account: state.account })
    }
  }

  /** peers that asked for `mailWaiting` (relayStatus { wake: true }) */
  private readonly wakeable = new Set<string>()
  /** peers with a `mailWaiting` unanswered, and those of them with more mail since it was sent */
  private readonly waking = new Set<string>()
  private readonly wakeAgain = new Set<string>()
  /** the open relay channels of each connected peer: where `mailWaiting` is pushed */
  private readonly channels = new Map<string, Set<RpcChannel<RelayRpcMethod>>>()
  private unwatch?: () => void

  constructor (private readonly c: MailboxServiceComponents, private readonly init: MailboxServiceInit) {
    this.metrics = c.metrics
  }

  /** Starts the sweeper and the push of new mail; idempotent. */
  start (): void {
    if (this.sweeper !== undefined) return
    this.sweeper = setInterval(() => { void this.sweep() }, this.init.sweepIntervalMs)
    this.sweeper.unref()
    this.unwatch = this.c.store.watch({
      mail: (recipient) => { this.wake(recipient) },
      // withdrawn on another instance sharing the store: this one cuts its connections too
      removed: (peerId) => { this.wakeable.delete(peerId); void this.c.disconnect(peerId).catch(() => {}) },
      resync: () => { for (const peer of this.channels.keys()) this.wake(peer) }
    })
  }

  stop (): void {
    clearInterval(this.sweeper)
    this.sweeper = undefined
    this.unwatch?.()
    this.unwatch = undefined
    this.channels.clear()
    this.wakeable.clear()
    this.wakeAgain.clear()
  }

  /** A peer's relay channel: new mail for that peer is announced on it. */
  attach (remote: string, channel: RpcChannel<RelayRpcMethod>): void {
    const open = [...(this.channels.get(remote) ?? [])].filter(ch => ch.isOpen)
    this.channels.set(remote, new Set([...open, channel]))
  }

  /** Tells `peer`, when connected here, that mail waits (one open channel is enough). */
  private wake (peer: string): void {
    const chs = this.channels.get(peer)
    if (chs === undefined || !this.wakeable.has(peer)) return
    // a burst of deposits is one wake in flight and at most one more after it (the node drains it all anyway)
    if (this.waking.has(peer)) { this.wakeAgain.add(peer); return }
    for (const ch of [...chs].reverse()) {
      if (!ch.isOpen) { chs.delete(ch); continue }
      this.waking.add(peer)
      ch.call('mailWaiting', {}).catch(() => {}).finally(() => {
        this.waking.delete(peer)
        if (this.wakeAgain.delete(peer)) this.wake(peer)
      })
      break
    }
    if (chs.size === 0) this.channels.delete(peer)
  }

  /** A request of an admitted-or-not peer on RELAY_PROTOCOL: the peer was seen; a refusal is counted by its code. */
  async answer (remote: string, method: RelayRpcMethod, body: unknown): Promise<unknown> {
    this.c.seen?.(remote)
    const count = (err: unknown): never => {
      const code = toParleyError(err).code
      // ERR_NOT_ADMITTED is counted where it is decided (requireAdmitted)
      if (code !== 'ERR_NOT_ADMITTED') this.metrics.refused(code, method)
      throw err
    }
    try {
      const r: unknown = await this.handlers[method](remote, body)
      return r instanceof AckAfterWrite ? new AckAfterWrite((r as AckAfterWrite<unknown>).durable.catch(count)) : r
    } catch (err) {
      return count(err)
    }
  }

  /** A peer the host refused (a reservation or a circuit). */
  refused (what: 'reservation' | 'circuit', peerId: string): void {
    this.metrics.refused('ERR_NOT_ADMITTED', what)
    this.c.log.warn('refused unadmitted peer', { what, peerId })
  }

  /** Withdraws admission: the user record goes, and so do its reservation and connections. */
  async removeUser (peerId: string): Promise<boolean> {
    const removed = await this.c.store.removeUser(peerId)
    await this.c.disconnect(peerId)
    if (removed) this.c.log.info('user removed', { peerId })
    return removed
  }

  snapshot (): RelayCounters { return this.metrics.snapshot() }

  private async sweep (): Promise<void> {
    try {
      const n = await this.metrics.timeStore('sweep', async () => await this.c.store.sweep())
      if (n > 0) { this.metrics.mailExpired(n); this.c.log.info('expired mail deleted', { count: n }) }
    } catch (err) {
      this.c.log.warn('sweep failed', { err: toParleyError(err).message })
    }
  }

  private requireAdmitted (peer: string, op: RelayRpcMethod): void {
    if (!this.c.store.isAdmitted(peer)) {
      this.metrics.refused('ERR_NOT_ADMITTED', op)
      throw new ParleyError('ERR_NOT_ADMITTED',
        'this relay serves admitted peers only: redeem an invite from its admin (parley start --relay ADDR --invite TOKEN)')
    }
  }
}

const wantsWake = (body: unknown): boolean => typeof body === 'object' && body !== null && (body as { wake?: unknown }).wake === true
