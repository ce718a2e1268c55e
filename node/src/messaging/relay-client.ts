/**
 * The node's side of the relay: redeem the invite once, drain the mailbox on
 * every connection to the relay (and by polling while connected), deposit
 * envelopes for peers we cannot reach. Mail is acked to the relay only after
 * it is durably stored here, so a crash between fetch and ack re-fetches
 * (and dedupe drops the copy).
 */
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { isPermanentRefusal, type Envelope } from '../../../core/protocol/envelope.js'
import {
  RELAY_PROTOCOL, RELAY_RPC_METHODS, parseFetchResult, parseRelayStatus, parseDepositAnswer, parseOffices,
  type DepositAnswer, type OfficeDown, type OfficePerson, type RelayRpcMethod
} from '../../../core/protocol/relay-rpc.js'
import { RpcChannel, remoteCode } from '../../../core/rpc/channel.js'
import { TypedEventEmitter } from '../../../core/util/events.js'
import { ChannelOpener } from './peer-channels.js'
import type { PeerHost } from '../host/types.js'
import type { Logger } from '../../../core/util/log.js'
import { parseDirectory, type DepartmentNode } from '../../../core/protocol/directory.js'
import { MAX_NOTICE_IDS, parseNotices, type Notice, type SignedReceipt } from '../../../core/protocol/fed-notice.js'

export interface RelayClientInit {
  /** how often the mailbox is polled while connected to the relay. @default 3000 */
  mailboxPollMs?: number
  /** items per fetch (at most MAX_FETCH_ITEMS, 500; the relay also caps an answer's bytes). @default 500 */
  fetchBatch?: number
  /**
   * How long mail that cannot be stored yet (a group or member not known yet)
   * is kept at the relay and retried, with backoff, before it is dropped
   * there. Nothing is lost by the drop: the sender keeps the message in its
   * outbox until this device acks it directly. @default 1 hour
   */
  keptMailMaxMs?: number
}

export const DEFAULT_KEPT_MAIL_MAX_MS = 60 * 60 * 1000
/** first retry of a kept mail item after this long, doubling up to KEPT_MAIL_MAX_BACKOFF_MS */
const KEPT_MAIL_FIRST_BACKOFF_MS = 2_000
const KEPT_MAIL_MAX_BACKOFF_MS = 5 * 60 * 1000

export const DEFAULT_MAILBOX_POLL_MS = 3000
export const DEFAULT_FETCH_BATCH = 500
/**
 * Batches of a drain handed over before the oldest one's writes settled (issue 15): with 2, the next
 * batch is fetched and checked while the one before it is written. Bounds what a drain holds in memory:
 * 2 batches being written plus the answer of the fetch after them (3 × DEFAULT_FETCH_BATCH envelopes,
 * each answer also capped in bytes by the relay).
 */
export const DRAIN_WINDOW_BATCHES = 2

type Fetched = ReturnType<typeof parseFetchResult>
type MailItem = Fetched['items'][number]
type Outcome = 'wait' | { ok: 'stored' | 'duplicate' } | { err: unknown }
/** what one drain counts across its batches */
interface DrainRun {
  total: number
  /** items kept at the relay for a retry, so far */
  keptNow: number
  /** cursors fetched in this drain */
  seen: Set<number>
  /** mail from another office: a delivery receipt goes back through the relays, per (author, conversation) */
  receipts: Map<string, { author: string, conv: string, ids: string[] }>
}

export interface RelayState {
  addr: string | null
  peerId: string | null
  connected: boolean
  /** null until the relay answered */
  admitted: boolean | null
  invitePending: boolean
  lastError: { code: string, message: string } | null
  /** mail for this device still at the relay, as last learned (relayStatus, then counted down while draining) */
  waiting: number
  /** federation: the other offices' relays our relay cannot reach now (mail for their users waits in its queue) */
  officesDown?: OfficeDown[]
}

/**
 * Checks one envelope from the mailbox and starts its durable write: resolves
 * once it is checked, with `durable` settling after the write. Must take its
 * place in line synchronously when called (calls are judged in call order).
 */
export type AcceptMail = (envelope: Envelope, from: string, office?: string) => Promise<{ durable: Promise<'stored' | 'duplicate'> }>

export interface RelayClientEvents {
  /** the relay's state as shown to the user changed (connection, admission, error, mail waiting) */
  relayChanged: CustomEvent<RelayState>
}

export interface RelayClientComponents {
  host: PeerHost
  log: Logger
  accept: AcceptMail
  saveInvite: (token: string | null) => Promise<void>
  /** federation: signs a receipt for mail from another office (it goes back through the relays) */
  signReceipt?: (r: Omit<SignedReceipt, 'sig' | 'by' | 'v'>) => SignedReceipt
  /** federation: receipts and bounces the relay kept for this device; settles once they are applied */
  notices?: (items: Notice[]) => Promise<void>
  /**
   * The home relay (peer ID) a device's account names in its signed record (issue 11, "addresses with a
   * home"), if any: a deposit for it names that home, so our relay forwards its copy there.
   */
  homeOf?: (device: string) => string | undefined
  /**
   * Mail refused with ERR_SEQ_CONFLICT (its author gave the number out twice): the envelopes to give back to
   * their authors through the relay, with a "slot taken" notice beside each (slot-notices.ts); called with none
   * once per drain for the next page of the runs still to give back
   */
  slotTaken?: (refused: Envelope[]) => Promise<Envelope[]>
  /** issue 9: notices `slotTaken` gave that the relay did not take for now (given again on a later drain) */
  slotNotGiven?: (envs: Envelope[]) => Promise<void>
  /** federation: where the homes and office names of other offices' devices are kept across restarts (the node's meta) */
  routes?: { load: () => Promise<unknown>, save: (value: KeptRoutes) => Promise<void> }
}

/** A read receipt for an author of another office that our relay has not taken yet. */
interface PendingReceipt { author: string, conv: string, ids: string[] }

/** What the node keeps of federation across restarts: homes and office names of other offices' devices, read receipts not yet sent. */
export interface KeptRoutes { homes: Array<[string, string]>, offices: Array<[string, string]>, reads?: PendingReceipt[] }

/** read receipts waiting for our relay, at most */
const MAX_PENDING_READS = 10_000

export class RelayClient extends TypedEventEmitter<RelayClientEvents> {
  private readonly opener: ChannelOpener<RelayRpcMethod>
  private draining = false
  private timer?: NodeJS.Timeout
  private readonly pollMs: number
  private readonly fetchBatch: number
  private readonly keptMailMaxMs: number
  /** mail items kept at the relay for a retry, by cursor */
  private readonly kept = new Map<number, { since: number, next: number, backoff: number }>()
  private state: RelayState = { addr: null, peerId: null, connected: false, admitted: null, invitePending: false, lastError: null, waiting: 0 }
  private invite: string | null = null
  /** the relay keeps federation receipts and bounces for us (its relayStatus said so) */
  private noticesOn = false

  constructor (private readonly c: RelayClientComponents, init: RelayClientInit = {}) {
    super()
    this.opener = new ChannelOpener(async () => {
      const relay = this.c.host.relayPeerId
      if (relay === null) throw new ParleyError('ERR_NOT_STARTED', 'no relay configured')
      const stream = await this.c.host.openStream(relay, RELAY_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
      // the relay's one request: mail was just kept for us (maybe on another instance of the relay): drain now
      return new RpcChannel<RelayRpcMethod>(stream, async (method) => {
        if (method !== 'mailWaiting') throw new ParleyError('ERR_NOT_FOUND', `a relay does not ask ${method}`)
        this.mailWaiting()
        return {}
      }, this.c.log, { methods: RELAY_RPC_METHODS })
    })
    this.pollMs = init.mailboxPollMs ?? DEFAULT_MAILBOX_POLL_MS
    this.fetchBatch = init.fetchBatch ?? DEFAULT_FETCH_BATCH
    this.keptMailMaxMs = init.keptMailMaxMs ?? DEFAULT_KEPT_MAIL_MAX_MS
  }

  private accountRecord?: () => unknown

  /** Our account's record, sent beside `relayStatus` (admission per account, issue 11). */
  useAccount (record: () => unknown): void { this.accountRecord = record }

  /** Our account record changed (a device linked or revoked): tell the relay now. */
  accountChanged (): void {
    if (!this.status().connected) return
    // a set-up under way sent the record before this change: it runs once more after it (the relay must
    // hold our signed home, or the other offices' relays refuse our mail: federation, issue 12)
    if (this.settingUp) { this.accountAgain = true; return }
    void this.onRelayUp()
  }

  private accountAgain = false

  status (): RelayState {
    const peerId = this.c.host.relayPeerId
    return { ...this.state, peerId, connected: peerId !== null && this.c.host.isConnected(peerId), invitePending: this.invite !== null,
      ...(this.down.size > 0 ? { officesDown: [...this.down.values()] } : {}) }
  }

  /** Points the node at a relay (null: none); an invite token is redeemed on the next connection. */
  configure (addr: string | null, invite: string | null): void {
    this.c.host.setRelay(addr)
    this.state = { ...this.state, addr, admitted: null, lastError: null, waiting: 0 }
    this.invite = invite
    this.opener.reset()
    if (addr !== null && this.c.host.relayPeerId !== null && this.c.host.isConnected(this.c.host.relayPeerId)) void this.onRelayUp()
  }

  start (): void {
    this.c.host.addEventListener('peerConnected', this.onConnected)
    this.c.host.addEventListener('peerDisconnected', this.onDisconnected)
    this.c.host.addEventListener('relayChanged', this.onRelayChanged)
    // also covers a connection made before start() and a failed setup: retried on every tick
    this.timer = setInterval(() => { void this.tick() }, this.pollMs)
    this.timer.unref()
    void this.tick()
  }

  private async tick (): Promise<void> {
    if (!this.status().connected) return
    if (this.state.admitted === true) await this.drain()
    else if (!this.settingUp) await this.onRelayUp()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.c.host.removeEventListener('peerConnected', this.onConnected)
    this.c.host.removeEventListener('peerDisconnected', this.onDisconnected)
    this.c.host.removeEventListener('relayChanged', this.onRelayChanged)
    await this.opener.close()
  }

  isRelay (peerId: string): boolean { return peerId === this.c.host.relayPeerId }

  /** True when deposits can be attempted now. */
  get canDeposit (): boolean { return this.status().connected && this.state.admitted === true }

  /**
   * One deposit, kept by the relay for every recipient in `to` that it serves;
   * recipients of another office whose home relay we know (setHome, offices,
   * or the home relay their account record names) are named with it (`home`),
   * and the relay forwards their copies there.
   */
  async deposit (to: string[], envelope: Envelope): Promise<DepositAnswer> {
    const ch = await this.rpc()
    const ours = this.c.host.relayPeerId
    const home = Object.fromEntries(to.flatMap(t => {
      // what we learned of federation first, else the home the recipient's account record names (not our own relay)
      const h = this.homes.get(t) ?? this.c.homeOf?.(t)
      return h !== undefined && h !== ours ? [[t, h]] : []
    }))
    const answer = parseDepositAnswer(await ch.call('deposit', { to, envelope, ...(Object.keys(home).length > 0 ? { home } : {}) }))
    for (const [peer, office] of Object.entries(answer.offices ?? {})) this.setOffice(peer, office)
    return answer
  }

  /** federation: peer -> the name of its office (another office's relay is its home), as our relay told us */
  private readonly offices_ = new Map<string, string>()

  /** The other office `peer` is homed at, as our relay said (route shown in the UI); undefined for our own office. */
  officeOf (peer: string): string | undefined { return this.offices_.get(peer) }

  /** federation: the other offices' relays our relay cannot reach now, by relay peer ID (as it said with our mail) */
  private down = new Map<string, OfficeDown>()

  private setDown (list: OfficeDown[]): void {
    const next = new Map(list.map(d => [d.relay, d]))
    if (JSON.stringify([...next]) === JSON.stringify([...this.down])) return
    this.down = next
    this.emit('relayChanged', this.status())
  }

  /**
   * Why mail for `peer` (of another office) waits in our relay's queue: that office's relay cannot be
   * reached (since when, the last error), as our relay last said; undefined when it is not waiting for that.
   */
  waitingFor (peer: string): OfficeDown | undefined {
    if (this.down.size === 0) return undefined
    const relay = this.homes.get(peer) ?? this.c.homeOf?.(peer)
    if (relay !== undefined && this.down.has(relay)) return this.down.get(relay)
    const office = this.offices_.get(peer)
    return office === undefined ? undefined : [...this.down.values()].find(d => d.office === office)
  }

  /**
   * Sends a receipt for `author`'s messages through the relays (an author of another office). Throws when
   * it was not taken by our relay (a delivery receipt is then sent again with the mail it is for).
   */
  async sendReceipt (author: string, conv: string, ids: string[], state: 'delivered' | 'read'): Promise<void> {
    if (this.c.signReceipt === undefined) return
    if (!this.noticesOn || !this.canDeposit) throw new ParleyError('ERR_PEER_UNREACHABLE', 'our relay cannot take receipts for another office now')
    const ch = await this.rpc()
    for (let i = 0; i < ids.length; i += MAX_NOTICE_IDS) {
      await ch.call('receipt', this.c.signReceipt({ author, conv, ids: ids.slice(i, i + MAX_NOTICE_IDS), state, at: Date.now() }))
    }
  }

  /** federation: read receipts for other offices' authors not yet taken by our relay (kept across restarts, retried on every drain) */
  private readonly pendingReads: PendingReceipt[] = []

  /**
   * A read receipt for an author of another office: kept (with the office routes, across restarts) and
   * sent, and sent again on every drain until our relay took it, like a delivery receipt is sent again
   * with the mail it is for.
   */
  queueReadReceipt (author: string, conv: string, ids: string[]): void {
    if (this.c.signReceipt === undefined || ids.length === 0) return
    this.pendingReads.push({ author, conv, ids })
    // bounded: the oldest go first (a receipt is a courtesy; the messages themselves are safe)
    if (this.pendingReads.length > MAX_PENDING_READS) this.pendingReads.splice(0, this.pendingReads.length - MAX_PENDING_READS)
    this.routesChanged()
    void this.flushReads()
  }

  private flushingReads = false
  private async flushReads (): Promise<void> {
    if (this.flushingReads || this.pendingReads.length === 0 || !this.noticesOn || !this.canDeposit) return
    this.flushingReads = true
    try {
      while (this.pendingReads.length > 0) {
        const r = this.pendingReads[0]!
        await this.sendReceipt(r.author, r.conv, r.ids, 'read')
        this.pendingReads.shift()
        this.routesChanged()
      }
    } catch (err) {
      this.c.log.debug('read receipt kept for a retry', { err: toParleyError(err).message, waiting: this.pendingReads.length })
    } finally {
      this.flushingReads = false
    }
  }

  /** federation: recipient device -> the peer ID of its home relay (another office's), as learned */
  private readonly homes = new Map<string, string>()

  /** Names `peer`'s home relay (another office's, paired with ours): its mail is forwarded there. */
  setHome (peer: string, relay: string): void {
    if (this.homes.get(peer) === relay) return
    this.homes.set(peer, relay)
    this.routesChanged()
  }

  private setOffice (peer: string, office: string): void {
    if (office === '' || this.offices_.get(peer) === office) return
    this.offices_.set(peer, office)
    this.routesChanged()
  }

  /** Loads the homes, office names and read receipts not yet sent kept by an earlier run (before start). */
  async restore (): Promise<void> {
    const v = await this.c.routes?.load().catch(() => undefined) as KeptRoutes | undefined
    for (const [p, r] of Array.isArray(v?.homes) ? v.homes : []) if (!this.homes.has(p)) this.homes.set(p, r)
    for (const [p, o] of Array.isArray(v?.offices) ? v.offices : []) if (!this.offices_.has(p)) this.offices_.set(p, o)
    for (const r of Array.isArray(v?.reads) ? v.reads.slice(-MAX_PENDING_READS) : []) {
      const ok = typeof r?.author === 'string' && typeof r.conv === 'string' && Array.isArray(r.ids) && r.ids.every(i => typeof i === 'string')
      if (ok) this.pendingReads.push(r)
    }
  }

  private routesSaving = false
  private routesDirty = false
  private routesChanged (): void {
    if (this.c.routes === undefined) return
    this.routesDirty = true
    if (this.routesSaving) return
    this.routesSaving = true
    setImmediate(() => { void this.saveRoutes() })
  }

  private async saveRoutes (): Promise<void> {
    try {
      while (this.routesDirty) {
        this.routesDirty = false
        await this.c.routes!.save({ homes: [...this.homes], offices: [...this.offices_], reads: [...this.pendingReads] })
      }
    } catch (err) {
      this.c.log.debug('office routes not saved', { err: toParleyError(err).message })
    } finally {
      this.routesSaving = false
    }
  }

  /** People of the other offices (paired relays) who chose to be listed, matching `q`; their home relays are remembered. */
  async offices (q = ''): Promise<OfficePerson[]> {
    const ch = await this.rpc()
    const { people } = parseOffices(await ch.call('offices', { q }))
    for (const p of people) { this.setHome(p.peerId, p.relay); this.setOffice(p.peerId, p.office) }
    return people
  }

  /** Lists this device in the other offices' directories (listed: false withdraws). */
  async publish (p: { listed: boolean, name?: string, department?: string }): Promise<void> {
    const ch = await this.rpc()
    await ch.call('publish', p)
  }

  /** The company directory the relay's admin imported (ERR_NOT_ADMITTED until admitted). */
  async directory (): Promise<DepartmentNode> {
    const ch = await this.rpc()
    return parseDirectory(await ch.call('directory', {}))
  }

  private readonly onConnected = (evt: CustomEvent<{ peerId: string }>): void => {
    if (this.isRelay(evt.detail.peerId)) void this.onRelayUp()
  }

  private readonly onDisconnected = (evt: CustomEvent<{ peerId: string }>): void => {
    if (this.isRelay(evt.detail.peerId)) {
      this.opener.reset()
      this.emit('relayChanged', this.status())
    }
  }

  /** failover to another instance of the relay (same store, same admission): the channel goes there, and the mail is fetched from there */
  private readonly onRelayChanged = (): void => {
    this.opener.reset()
    this.emit('relayChanged', this.status())
    if (this.status().connected) void this.onRelayUp()
  }

  private settingUp = false

  private async onRelayUp (): Promise<void> {
    if (this.settingUp) return
    this.settingUp = true
    try {
      const ch = await this.rpc()
      if (this.invite !== null) {
        await ch.call('redeem', { token: this.invite })
        this.invite = null
        await this.c.saveInvite(null)
        this.c.log.info('relay invite redeemed')
        // the reservation tried when we connected was refused (not yet admitted): reconnect for a fresh one
        this.settingUp = false
        await this.c.host.reconnectRelay()
        return
      }
      // wake: this node takes the relay's `mailWaiting` (fetch at once when mail comes in)
      // our account record beside it: the relay admits our account's other devices and drops revoked ones
      const account = this.accountRecord?.()
      const st = parseRelayStatus(await ch.call('relayStatus', { wake: true, ...(account !== undefined ? { account } : {}) }))
      const refused = { code: 'ERR_NOT_ADMITTED', message: 'the relay has not admitted this device: ask its admin for an invite' }
      this.state = { ...this.state, admitted: st.admitted, waiting: st.queued, lastError: st.admitted ? null : refused }
      this.noticesOn = st.notices === true
      this.emit('relayChanged', this.status())
      if (st.admitted) await this.drain()
    } catch (err) {
      const e = toParleyError(err)
      const code = remoteCode(e) ?? e.code
      this.state = { ...this.state, lastError: { code, message: e.message } }
      this.c.log.warn('relay setup failed', { code, err: e.message })
      this.emit('relayChanged', this.status())
    } finally {
      this.settingUp = false
      if (this.accountAgain) { this.accountAgain = false; void this.onRelayUp() }
    }
  }

  /**
   * Fetches, stores durably, then acks, until the mailbox is empty. An item
   * that cannot be stored yet (group not known yet, disk error) stays at the
   * relay without holding up the items after it, and is tried again with
   * backoff; after `keptMailMaxMs` it is dropped at the relay (its sender
   * still holds it and delivers it directly later).
   *
   * A window of batches (issue 15): the next batch is fetched, and handed to `accept`, while the writes of
   * the batches before it are still under way, so the fetch round trip, our checks and the store's group
   * commit overlap instead of taking turns. At most `DRAIN_WINDOW_BATCHES` batches are unsettled at once
   * (and the fetch of the one after them may be out), also across drains: on an error the drain waits for
   * what it started before it returns.
   * Acks still follow the durable writes, batch by batch in mailbox order (one chain), so a crash re-fetches
   * whatever was not acked (and dedupe drops the copy).
   */
  async drain (): Promise<number> {
    if (this.draining || this.state.admitted !== true) return 0
    this.draining = true
    const run: DrainRun = { total: 0, keptNow: 0, seen: new Set(), receipts: new Map() }
    // what this drain started (the next fetch, the batches' writes and ack chain): settled before it returns
    let next: Promise<Fetched> | undefined
    // acks in mailbox order: each batch's ack waits for the ack of the batch before it
    let acked: Promise<void> = Promise.resolve()
    const inFlight: Array<Promise<void>> = []
    try {
      const ch = await this.rpc()
      const fetch = async (after: number): Promise<Fetched> =>
        parseFetchResult(await ch.call('fetch', { after, limit: this.fetchBatch }))
      next = fetch(0)
      while (next !== undefined) {
        const fetched: Fetched = await next
        const { items, more, notices, down } = fetched
        this.noticesOn = notices === true
        this.setDown(down ?? [])
        if (items.length === 0) break
        next = more ? fetch(items[items.length - 1]!.cursor) : undefined
        next?.catch(() => {})
        const settled = this.acceptBatch(items, run)
        const previous = acked
        acked = (async () => { const r = await settled; await previous; await this.ackBatch(ch, items, r, run) })()
        acked.catch(() => {})
        inFlight.push(acked)
        if (inFlight.length >= DRAIN_WINDOW_BATCHES) await inFlight.shift()
        if (!more) {
          await acked
          this.setWaiting(run.keptNow)
          // forget retry state of items no longer at the relay (expired, or acked by another drain)
          for (const cursor of this.kept.keys()) if (!run.seen.has(cursor)) this.kept.delete(cursor)
        }
      }
      await acked
      if (run.total > 0) this.c.log.info('mailbox drained', { count: run.total, kept: run.keptNow })
      // the next page of the runs still to give back (slot notices), once per drain
      await this.giveBack([])
      await this.takeNotices(ch)
      await this.flushReads()
    } catch (err) {
      this.c.log.debug('mailbox drain paused', { err: toParleyError(err).message })
      // an error leaves up to DRAIN_WINDOW_BATCHES batches' writes and acks running: wait for them, so a
      // drain started after this one never runs beside them (each batch's ack still follows its writes)
      await Promise.allSettled([...inFlight, acked, next])
    } finally {
      this.draining = false
    }
    if (this.drainAgain) { this.drainAgain = false; void this.drain() }
    return run.total
  }

  /**
   * Hands a fetched batch to `accept`, in mailbox order without waiting for each: accept() takes its place
   * in line synchronously (group envelopes are judged in call order, each after the ops before it are
   * folded in), so checks and writes overlap. Settles with each item's outcome once every write settled.
   */
  private acceptBatch (items: MailItem[], run: DrainRun): Promise<Outcome[]> {
    const now = Date.now()
    const outcomes: Array<Promise<'stored' | 'duplicate'> | 'wait'> = []
    for (const item of items) {
      run.seen.add(item.cursor)
      const k = this.kept.get(item.cursor)
      if (k !== undefined && now < k.next) { outcomes.push('wait'); continue }
      if (item.office !== undefined) this.setOffice(item.envelope.author, item.office)
      const durable = this.c.accept(item.envelope, item.from, item.office).then(async r => await r.durable)
      durable.catch(() => {})
      outcomes.push(durable)
    }
    return Promise.all(outcomes.map(async o => o === 'wait' ? o : await o.then(v => ({ ok: v }), (err: unknown) => ({ err }))))
  }

  /** Sorts a settled batch into done and kept, sends the receipts of mail from another office, and acks what is done. */
  private async ackBatch (ch: RpcChannel<RelayRpcMethod>, items: MailItem[], settled: Outcome[], run: DrainRun): Promise<void> {
    const now = Date.now()
    const done: number[] = []
    const conflicts: MailItem[] = []
    /** kept at the relay for a later drain (false: kept too long, dropped: its sender still holds it) */
    const keep = (item: MailItem, code: string): boolean => {
      const k = this.kept.get(item.cursor) ?? { since: now, next: now, backoff: KEPT_MAIL_FIRST_BACKOFF_MS / 2 }
      if (now - k.since >= this.keptMailMaxMs) {
        this.c.log.warn('dropping mail that could not be stored for a long time; its sender still holds it', { from: item.from, code })
        this.kept.delete(item.cursor)
        return false
      }
      k.backoff = Math.min(k.backoff * 2, KEPT_MAIL_MAX_BACKOFF_MS)
      k.next = now + k.backoff
      this.kept.set(item.cursor, k)
      this.c.log.info('mail kept at the relay for later', { from: item.from, code, retryInMs: k.backoff })
      run.keptNow++
      return true
    }
    settled.forEach((r, i) => {
      const item = items[i]!
      if (r === 'wait') { run.keptNow++; return }
      if ('ok' in r) {
        done.push(item.cursor); this.kept.delete(item.cursor)
        if (item.office !== undefined) {
          const k = `${item.envelope.author} ${item.envelope.conv}`
          const rc = run.receipts.get(k) ?? { author: item.envelope.author, conv: item.envelope.conv, ids: [] }
          rc.ids.push(item.envelope.id)
          run.receipts.set(k, rc)
        }
        return
      }
      const e = toParleyError(r.err)
      const code = remoteCode(e) ?? e.code
      // refused with a number given out twice: answered with slot notices below, acked once they are given
      if (code === 'ERR_SEQ_CONFLICT') { conflicts.push(item); return }
      // an item that can never be stored is dropped (acked) so it cannot block the mailbox; logged
      if (isPermanentRefusal(code)) {
        this.c.log.warn('dropping undeliverable mail', { from: item.from, code })
        done.push(item.cursor); this.kept.delete(item.cursor); return
      }
      // anything else (disk full, group not known yet) is kept at the relay and tried again later
      if (!keep(item, code)) done.push(item.cursor)
    })
    // before the ack: a notice the relay did not take for a passing reason (the author's mailbox full, its
    // disk full, no route yet) keeps the refused mail there, refused and answered again after a backoff
    const notGiven = conflicts.length === 0 ? new Map<string, string>() : await this.giveBack(conflicts.map(i => i.envelope))
    for (const item of conflicts) {
      const passing = notGiven.get(`${item.envelope.conv} ${item.envelope.author}`)
      if (passing !== undefined && keep(item, passing)) continue
      this.c.log.warn('dropping undeliverable mail', { from: item.from, code: 'ERR_SEQ_CONFLICT' })
      done.push(item.cursor); this.kept.delete(item.cursor)
    }
    if (done.length === 0) return
    // exact cursors are acked in order
    done.sort((a, b) => a - b)
    // delivery receipts for mail from another office go before the ack: if one fails, the mail stays at
    // the relay and is taken again (a duplicate here, receipted again), so none is lost to a crash
    for (const r of run.receipts.values()) await this.sendReceipt(r.author, r.conv, r.ids, 'delivered')
    run.receipts.clear()
    // while nothing was kept, one range ack covers everything so far
    await ch.call('ackMail', run.keptNow === 0 ? { upTo: done[done.length - 1]! } : { cursors: done })
    run.total += done.length
    // progress for the UI on a long drain
    this.setWaiting(Math.max(run.keptNow, this.state.waiting - done.length))
  }

  /**
   * Issue 9: the authors of mail refused for a number given out twice get their own envelopes we hold there
   * back, with a signed notice (slot-notices.ts). Answers (conversation author) -> code for the groups a notice
   * of which the relay did not take for a passing reason (the author's mailbox or our share of it full, the
   * relay's disk full, no route to the author yet): their refused mail stays at the relay. A notice refused
   * for good (PERMANENT_REFUSALS: an old relay that drops the notice, a malformed one) is logged and let go;
   * a connection lost throws (the drain pauses; nothing acked).
   */
  private async giveBack (refused: Envelope[]): Promise<Map<string, string>> {
    const notGiven = new Map<string, string>()
    if (this.c.slotTaken === undefined) return notGiven
    const later: Envelope[] = []
    for (const env of await this.c.slotTaken(refused)) {
      const group = `${env.conv} ${env.author}`
      // the rest of a group whose notice could not be given now goes with it next time (the relay dedupes)
      if (notGiven.has(group)) { later.push(env); continue }
      try {
        await this.deposit([env.author], env)
      } catch (err) {
        const code = remoteCode(err)
        if (code === undefined) throw err
        if (isPermanentRefusal(code)) {
          this.c.log.warn('the relay refused a slot notice for its author for good', { author: env.author, id: env.id, code })
        } else {
          this.c.log.info('the relay did not take a slot notice now; the refused mail stays there for later', { author: env.author, id: env.id, code })
          notGiven.set(group, code)
          later.push(env)
        }
      }
    }
    await this.c.slotNotGiven?.(later)
    return notGiven
  }

  /** The receipts and bounces the relay kept for us: applied, then acked. */
  private async takeNotices (ch: RpcChannel<RelayRpcMethod>): Promise<void> {
    if (!this.noticesOn || this.c.notices === undefined) return
    let ack = 0
    for (let round = 0; round < 1000; round++) {
      const items = parseNotices(await ch.call('notices', ack > 0 ? { ack } : {}))
      if (items.length === 0) return
      await this.c.notices(items)
      ack = Math.max(...items.map(i => i.n))
    }
  }

  /** drain again when the current drain ends: mail came in while it ran */
  private drainAgain = false

  private mailWaiting (): void {
    if (this.draining) { this.drainAgain = true; return }
    void this.drain()
  }

  private setWaiting (n: number): void {
    if (n === this.state.waiting) return
    this.state = { ...this.state, waiting: n }
    this.emit('relayChanged', this.status())
  }

  private async rpc (): Promise<RpcChannel<RelayRpcMethod>> { return await this.opener.get() }
}
