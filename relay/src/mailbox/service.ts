/**
 * The mailbox service: the relay's RPC handlers (redeem, status, deposit,
 * fetch, ack, directory), admission, the metrics, and the sweeper that deletes expired
 * mail. It checks signatures and addressing, never content, and answers a
 * deposit only once its write is durable.
 */
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { verifyEnvelope, verifySlotTaken } from '../../../core/crypto/envelope.js'
import { accountOpValid, foldAccount } from '../../../core/crypto/account.js'
import { mergeOps, parseAccountRecord, type AccountRecord } from '../../../core/protocol/account.js'
import {
  parseAckMail, parseDeposit, parseFetch, parsePublish, parseRedeem,
  type DepositAnswer, type OfficePerson, type FetchResult, type RelayRpcMethod, type RelayStatus
} from '../../../core/protocol/relay-rpc.js'
import { AckAfterWrite, type RpcChannel } from '../../../core/rpc/channel.js'
import type { Logger } from '../../../core/util/log.js'
import type { DepartmentNode } from '../../../core/protocol/directory.js'
import type { Envelope } from '../../../core/protocol/envelope.js'
import type { RelayMetrics } from '../admin/metrics.js'
import type { MailboxStore } from '../store/types.js'
import * as acctAdm from '../store/account-admission.js'
import type { Federation } from '../federation/federation.js'
import { parseNoticesAsk, type Notice } from '../../../core/protocol/fed-notice.js'
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
export type FederationRoom = Pick<Federation,
  'route' | 'lookup' | 'enqueue' | 'offices' | 'officeOf' | 'receiptFrom' | 'takeNotices' | 'enabled' | 'noticesFor' | 'unreachable'>

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
  receipt: { forwarded: boolean }
  notices: { items: Notice[] }
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
      // a new invite lifts an admin's removal of the person's devices (never a revocation)
      for (const d of await this.devicesWith(remote)) await acctAdm.undeny(this.c.store, d)
      this.metrics.inviteRedeemed()
      this.c.log.info('invite redeemed', { peerId: remote })
      return { admitted: true, since: user.admittedAt }
    },
    relayStatus: async (remote, body) => {
      const refused = await this.accountOf(remote, body)
      const admitted = this.c.store.isAdmitted(remote)
      // a node that takes `mailWaiting` says so (an older one would reset the stream on a method it does not know)
      if (admitted && wantsWake(body)) this.wakeable.add(remote)
      const notices = await this.c.federation?.noticesFor(remote) === true
      return { admitted, queued: admitted ? await this.c.store.queued(remote) : 0, ...(notices ? { notices: true } : {}),
        ...(!admitted && refused !== undefined ? { refused } : {}) }
    },
    deposit: async (remote, body) => {
      this.requireAdmitted(remote, 'deposit')
      const { to, envelope, home } = parseDeposit(body)
      // a recipient gives the author its own envelope back with a "slot taken" notice it signed (issue 9): only to the author
      if (envelope.taken !== undefined) requireGivenBack(envelope, remote, to)
      else if (envelope.author !== remote) throw new ParleyError('ERR_INVALID_ENVELOPE', 'only the author may deposit an envelope')
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
        const offices = Object.fromEntries(forwarded.map(t => [t, this.c.federation?.officeOf(t) ?? '']))
        return { status: kept > 0 ? 'stored' : 'duplicate', stored: kept, unknown, full, shareFull, ...(forwarded.length > 0 ? { forwarded, offices } : {}) }
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
      this.metrics.mailWaited(remote, result.items)
      // the deposit times stay at the relay; mail forwarded from another office says which (the route shown in the UI)
      const plain = { items: result.items.map(({ cursor, from, envelope }) => ({ cursor, from, envelope })), more: result.more }
      const fed = this.c.federation
      if (fed === undefined || !await fed.noticesFor(remote)) return plain
      const items = plain.items.map(i => { const office = fed.officeOf(i.envelope.author); return office === undefined ? i : { ...i, office } })
      // the other offices' relays we cannot reach now: the node marks what waits for them ("queued: office B unreachable")
      const down = fed.unreachable()
      return { ...plain, items, notices: true, ...(down.length > 0 ? { down } : {}) }
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
    },
    // federation: a receipt for an author of another office, and the receipts and bounces kept for this device
    receipt: async (remote, body) => {
      this.requireAdmitted(remote, 'receipt')
      return { forwarded: await this.c.federation?.receiptFrom(remote, body) ?? false }
    },
    notices: async (remote, body) => {
      this.requireAdmitted(remote, 'notices')
      const { ack } = parseNoticesAsk(body)
      return { items: await this.c.federation?.takeNotices(remote, ack) ?? [] }
    }
  }

  /** Tells `peer`'s node that something is waiting for it (mail, a notice), as `mailWaiting`. */
  notify (peer: string): void { this.wake(peer) }

  /**
   * Admission per account (issue 11): a node sends its account record beside `relayStatus`. The relay
   * merges the record's verified ops into the ops it keeps for that account (its store), and judges by
   * that fold, never by the caller's record alone. An account counts only when its own first device (the
   * account key's device: account ID = that device's peer ID) is admitted here; then a current device of
   * it is admitted too (review s4-11b N1: a fresh key listing an admitted device admits no one). A device
   * belongs to one account at the relay: listed by a second one, it is refused there, in words (except the
   * key device of a one-device account of its own, which is how a device is linked). A device
   * revoked in any op the relay has seen loses its admission and is denied for good; a device of a person
   * the admin removed is denied until it redeems a new invite. An op that does not verify changes nothing.
   * Returns why the caller was refused, when it was by its account.
   */
  private async accountOf (remote: string, body: unknown): Promise<string | undefined> {
    const value = typeof body === 'object' && body !== null ? (body as { account?: unknown }).account : undefined
    const store = this.c.store
    let presented: AccountRecord | undefined
    if (value !== undefined) {
      try {
        presented = parseAccountRecord(value)
      } catch (err) {
        this.c.log.warn('account record refused', { peerId: remote, err: toParleyError(err).message })
      }
    }
    const account = presented?.account ?? await acctAdm.accountOfDevice(store, remote)
    if (account === undefined) return
    const stored = await acctAdm.getAccountOps(store, account)
    const known = new Set(stored.map(op => op.sig))
    const fresh = (presented?.ops ?? []).filter(op => !known.has(op.sig))
    if (fresh.some(op => !accountOpValid(op))) {
      this.c.log.warn('account record refused', { peerId: remote, err: 'an op is not signed by the account key' })
      return
    }
    const ops = fresh.length > 0 ? mergeOps(stored, fresh) : stored
    const state = foldAccount(account, ops)
    // kept only for an account the caller is (or was) a device of, whose own first device is admitted: strangers store nothing
    const members = [...state.devices, ...state.revoked]
    if (!members.includes(remote) || !store.isAdmitted(account)) return
    // a device already of another account here is not this one's (the account key's device included)
    const taken = new Map<string, string>()
    for (const d of members) {
      const of = await acctAdm.accountOfDevice(store, d)
      if (of === undefined || of === account) continue
      // the key device of a one-device account of its own is free to join this one (it is linked)
      if (of === d && foldAccount(d, await acctAdm.getAccountOps(store, d)).devices.length === 1) continue
      taken.set(d, of)
    }
    if (taken.has(account)) {
      this.c.log.warn('account refused: its key device belongs to another account', { peerId: remote, account, other: taken.get(account) })
      return 'this account\'s first device belongs to another account at this relay'
    }
    for (const [d, other] of taken) this.c.log.warn('device refused: it belongs to another account at this relay', { peerId: d, account, other })
    if (fresh.length > 0) {
      await acctAdm.putAccountOps(store, account, ops, members.filter(d => !taken.has(d)))
      const revoked = state.revoked.filter(d => !taken.has(d))
      await acctAdm.deny(store, revoked, 'revoked')
      for (const d of revoked) {
        if (!store.isAdmitted(d) || !await store.removeUser(d)) continue
        this.wakeable.delete(d)
        await this.c.disconnect(d).catch(() => {})
        this.c.log.info('revoked device: admission dropped', { peerId: d, account })
      }
    }
    if (taken.has(remote)) return 'this device belongs to another account at this relay; one device, one account'
    if (store.isAdmitted(remote) || !state.devices.includes(remote)) return
    if (await acctAdm.denied(store, remote) !== undefined) return
    await store.admit(remote, 'account', account.slice(-12))
    this.c.log.info('device admitted with its account', { peerId: remote, account })
  }

  /**
   * Every device linked to `device` at this relay: the current and revoked devices of its account, and,
   * for each of them that is an account key too (kept from before one device, one account), that
   * account's devices, and so on (bounded). Just `device` when none is known.
   */
  private async devicesWith (device: string): Promise<string[]> {
    const found = new Set<string>([device])
    const seenAccounts = new Set<string>()
    const queue = [device]
    while (queue.length > 0 && found.size < 4096) {
      const d = queue.shift() as string
      for (const account of new Set([await acctAdm.accountOfDevice(this.c.store, d), d])) {
        if (account === undefined || seenAccounts.has(account)) continue
        seenAccounts.add(account)
        const ops = await acctAdm.getAccountOps(this.c.store, account)
        if (ops.length === 0) continue
        const state = foldAccount(account, ops)
        for (const m of [...state.devices, ...state.revoked]) {
          if (!found.has(m)) { found.add(m); queue.push(m) }
        }
      }
    }
    return [...found]
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

  /**
   * Withdraws admission: the user record goes, and so do its reservation and connections. A person is an
   * account, so every device of the account the relay knows goes too, and none of them is let in again by
   * its account (only by a new invite). True when any was admitted.
   */
  async removeUser (peerId: string): Promise<boolean> {
    const devices = await this.devicesWith(peerId)
    await acctAdm.deny(this.c.store, devices, 'removed')
    let removed = false
    for (const d of devices) {
      if (await this.c.store.removeUser(d)) removed = true
      this.wakeable.delete(d)
      await this.c.disconnect(d)
    }
    if (removed) this.c.log.info('user removed', { peerId, devices: devices.length })
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

/**
 * A "slot taken" notice (core/protocol/slot-notice.ts) is deposited by the device that signed it, for the
 * envelope's author alone (it goes nowhere else), and verifies; the author's signature is checked with every deposit.
 */
function requireGivenBack (envelope: Envelope, remote: string, to: string[]): void {
  if (envelope.taken?.by !== remote) throw new ParleyError('ERR_INVALID_ENVELOPE', 'a slot notice is deposited by the device that signed it')
  if (to.length !== 1 || to[0] !== envelope.author) throw new ParleyError('ERR_INVALID_ENVELOPE', 'a slot notice goes to the envelope\'s author only')
  if (!envelope.keys.some(k => k.to === remote)) throw new ParleyError('ERR_NOT_A_RECIPIENT', 'a slot notice comes from a recipient of the envelope')
  verifySlotTaken(envelope)
}
