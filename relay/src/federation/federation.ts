/**
 * Federation: this relay paired with other offices' relays. It holds the
 * pairings (pinned peer IDs), answers the relay-to-relay protocol
 * (FED_PROTOCOL, protocol.ts), routes deposits for recipients homed at a
 * paired relay into that relay's durable queue and forwards the queue in
 * order, in batches, with capped backoff and jitter while the other relay is
 * away; an item leaves the queue only once the other relay has stored it
 * durably (its receipt). It keeps the directories the paired relays publish
 * and the routes (recipient -> home relay) they give or forwarded mail shows.
 * It never opens an envelope.
 */
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { verifyEnvelope, verifyReceipt, verifySlotTaken } from '../../../core/crypto/envelope.js'
import { accountOpValid, foldAccount } from '../../../core/crypto/account.js'
import { mergeOps, type AccountOp, type AccountRecord } from '../../../core/protocol/account.js'
import {
  MAX_NOTICE_IDS, MAX_NOTICES, parseFedNotices, parseSignedReceipt, type Notice, type NoticeBody, type SignedReceipt
} from '../../../core/protocol/fed-notice.js'
import type { Envelope } from '../../../core/protocol/envelope.js'
import { PEER_ID } from '../../../core/protocol/validate.js'
import { RpcChannel, remoteCode } from '../../../core/rpc/channel.js'
import type { RawStream } from '../../../core/rpc/stream.js'
import type { Logger } from '../../../core/util/log.js'
import type { MailboxStore } from '../store/types.js'
import {
  FED_BATCH_BYTES, FED_FORWARD_BYTES, FED_METHODS, FED_PROTOCOL, MAX_FED_BATCH, encodePairingToken, newPairingSecret, parseFedDirectory, parseFedReceipt,
  parseForward, parsePair, parsePairAnswer, parsePairingToken, secretHash, type FedListed, type FedMethod, type FedPerson
} from './protocol.js'
import {
  DEFAULT_FED_POLICY, MAX_KEPT_NOTICES, type FedInstance, type FedPeer, type FedQueueItem, type FedPolicy, type FederationStore, type KeptNotice, type Listing
} from './types.js'
import type { FedPeerView } from '../../../core/protocol/admin-api.js'
import { MAX_OFFICES_DOWN, type OfficeDown } from '../../../core/protocol/relay-rpc.js'
import * as acctAdm from '../store/account-admission.js'

export interface FederationHost {
  openStream: (peerId: string, addrs: string[], protocol: string, signal: AbortSignal) => Promise<RawStream>
  addresses: () => string[]
  disconnect: (peerId: string) => Promise<void>
}

export interface FederationComponents {
  store: MailboxStore & FederationStore
  host: FederationHost
  log: Logger
  /** this relay's peer ID */
  self: () => string
  /** the policy's federationAllowed, read on every use (the console may change it) */
  allowed: () => boolean
  /** new mail was taken for a recipient (its node is told at once) */
  received?: (stored: number) => void
  /** a notice (receipt, bounce) was kept for one of our devices: tell it now */
  notify?: (device: string) => void
}

export interface FederationInit {
  /** what the other offices see this relay called. @default 'Parley relay' */
  name: string
  /** how often each queue is looked at, and each link retried once its backoff is over. @default 1000 */
  tickMs: number
  /** first and longest wait after a failed forward (jitter: half to all of it). @default 1 s, 60 s */
  retryMinMs: number
  retryMaxMs: number
  /** how often the paired relays' directories are fetched again. @default 5 min */
  directoryRefreshMs: number
}

export const DEFAULT_FEDERATION_INIT: FederationInit = { name: 'Parley relay', tickMs: 1000, retryMinMs: 1000, retryMaxMs: 60_000, directoryRefreshMs: 300_000 }
/** @default 24 hours */
export const DEFAULT_PAIRING_TTL_MS = 24 * 3600_000
/** routes learned from forwarded mail that are kept, at most (the oldest go first) */
const MAX_LEARNED_ROUTES = 100_000
/** bytes of account chains kept to judge route claims (the merged chain of each account seen), at most */
const MAX_CHAIN_BYTES = 8 * 1024 * 1024
const FORWARD_TIMEOUT_MS = 30_000
/**
 * An item whose author's signed record does not name this relay as home yet waits this long at most
 * before it is forwarded anyway (the other relay then refuses it: ERR_FED_NOT_HOME, bounced to the sender).
 * A node sends its record with its home right after admission, so this is only a start-up moment.
 */
const HOME_WAIT_MS = 10_000
const HOME_WAIT_RETRY_MS = 250
/**
 * The pairings are read from the store again this often: with several
 * instances on one database, a pairing, unpairing or policy change made on
 * one reaches the others (and their loops) within it.
 */
const PEERS_RELOAD_MS = 5_000

export type { FedPeerView }

export interface OfficePerson extends FedPerson { office: string, relay: string }

interface Link {
  busy: boolean
  nextAt: number
  backoffMs: number
  channel?: RpcChannel<FedMethod>
  /** the instance of that relay that answered last (tried first next time) */
  via?: string
  lastContact: number | null
  lastError: string | null
  ok: boolean | null
  /** when the link last went from up (or never tried) to down */
  downSince: number | null
  counts: FedPeerView['counts']
  dirAt: number
}

export const notPaired = (peerId: string): ParleyError => new ParleyError('ERR_FED_NOT_PAIRED',
  `relay ${peerId} is not paired with this relay: its admin must run \`parley-relay federation add TOKEN\` ` +
  'with a token from `parley-relay federation invite` here')

export class Federation {
  private readonly peers = new Map<string, FedPeer>()
  /** another instance of a paired relay (peer ID) -> the peer ID it was paired under */
  private readonly aliases = new Map<string, string>()
  private reloadedAt = 0
  /** bumped by every pairing change made here: a reload that read the store before one is dropped */
  private changes = 0
  private readonly links = new Map<string, Link>()
  /** recipient -> home relay, from the paired relays' directories */
  private readonly listed = new Map<string, string>()
  /** author -> the relay its forwarded mail came from (replies go back there) */
  private readonly learned = new Map<string, string>()
  private readonly dirs = new Map<string, { name: string, people: FedPerson[] }>()
  private timer?: NodeJS.Timeout
  private readonly init: FederationInit

  constructor (private readonly c: FederationComponents, init: Partial<FederationInit> = {}) {
    this.init = { ...DEFAULT_FEDERATION_INIT, ...init }
  }

  private loaded = false

  /**
   * Loads the pairings and routes: before the relay answers its first
   * deposit, or a deposit for a remote user made in that moment would be
   * refused as unknown while later ones are queued (out of order).
   */
  async load (): Promise<void> {
    if (this.loaded) return
    await this.ownInstances().catch(() => [])
    for (const p of (await this.c.store.listFedPeers()).sort((x, y) => x.pairedAt - y.pairedAt)) this.setPeer(p)
    this.reloadedAt = Date.now()
    // routes saved whole by older versions (now in the store, written with the forwarded mail: fedRouteOf)
    const routes = await this.c.store.getMeta('fedRoutes')
    if (Array.isArray(routes)) for (const [a, r] of routes as Array<[string, string]>) if (this.peers.has(r)) this.learned.set(a, r)
    type Kept = { seq?: number, notices?: Array<[string, Notice[]]>, out?: Array<[string, SignedReceipt[]]> } | undefined
    const kept = await this.c.store.getMeta('fedNotices') as Kept
    if (kept !== undefined && kept !== null) {
      // what an older version kept here (in one meta value): moved to the store's rows, once
      const old: KeptNotice[] = [
        ...(kept.notices ?? []).flatMap(([device, list]) => list.map(({ n: _n, ...notice }) => ({ device, notice: notice as NoticeBody }))),
        ...(kept.out ?? []).flatMap(([r, list]) => this.peers.has(r) ? list.map(receipt => ({ device: outKey(r), notice: { receipt } })) : [])
      ]
      if (old.length > 0) await this.c.store.addFedNotices(old, MAX_KEPT_NOTICES)
      await this.c.store.putMeta('fedNotices', null)
    }
    this.loaded = true
  }

  /** Loads (if not yet) and starts forwarding and the directory fetches. */
  async start (): Promise<void> {
    await this.load()
    this.timer = setInterval(() => { this.tick() }, this.init.tickMs)
    this.timer.unref()
    this.tick()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    for (const l of this.links.values()) { await l.channel?.close().catch(() => {}); l.channel = undefined }
  }

  private link (peerId: string): Link {
    let l = this.links.get(peerId)
    if (l === undefined) {
      l = { busy: false, nextAt: 0, backoffMs: 0, lastContact: null, lastError: null, ok: null, downSince: null, counts: { forwarded: 0, received: 0,
        refused: 0,
        expired: 0, listed: 0 }, dirAt: 0 }
      this.links.set(peerId, l)
    }
    return l
  }

  private requireAllowed (): void {
    if (!this.c.allowed()) {
      throw new ParleyError('ERR_FEDERATION_OFF',
        'federation is turned off on this relay: its admin can turn it on with `parley-relay policy set federationAllowed=true`')
    }
  }

  // ---- pairing (the admin) ----------------------------------------------------------

  /** A one-time pairing token for another relay's admin (`federation add TOKEN` there). */
  async invite (ttlMs = DEFAULT_PAIRING_TTL_MS): Promise<{ token: string, id: string, expiresAt: number }> {
    this.requireAllowed()
    const addrs = this.c.host.addresses()
    if (addrs.length === 0) throw new ParleyError('ERR_NOT_STARTED', 'the relay has no listening address yet')
    const secret = newPairingSecret()
    const now = Date.now()
    const hash = secretHash(secret)
    const expiresAt = now + ttlMs
    await this.c.store.putFedInvite({ id: hash.slice(0, 8), secretHash: hash, createdAt: now, expiresAt })
    const instances = await this.ownInstances()
    return {
      token: encodePairingToken({ v: 1, peerId: this.c.self(), addrs, secret, exp: expiresAt, ...(instances.length > 1 ? { instances } : {}) }),
      id: hash.slice(0, 8),
      expiresAt
    }
  }

  /** Completes a pairing with the relay that made `token`: both sides then pin each other's peer ID. */
  async add (token: string): Promise<FedPeerView> {
    this.requireAllowed()
    const t = parsePairingToken(token)
    if (t.peerId === this.c.self()) throw new ParleyError('ERR_FED_PAIRING', 'this token was made by this relay: run `federation add` on the other relay')
    if (t.exp < Date.now()) throw new ParleyError('ERR_FED_PAIRING', 'this pairing token has expired; ask for a new one (parley-relay federation invite)')
    const stream = await this.c.host.openStream(t.peerId, t.addrs, FED_PROTOCOL, AbortSignal.timeout(15_000))
    const ch = new RpcChannel<FedMethod>(stream, async () => { throw new ParleyError('ERR_NOT_FOUND', 'nothing is asked on a pairing stream') },
      this.c.log, { methods: FED_METHODS })
    let answer
    try {
      const instances = await this.ownInstances()
      answer = parsePairAnswer(await ch.call('pair', { secret: t.secret, name: this.init.name, addrs: this.c.host.addresses(),
        ...(instances.length > 1 ? { instances } : {}) }))
    } finally {
      await ch.close().catch(() => {})
    }
    const peer = await this.pinned(t.peerId, answer.name, answer.addrs.length > 0 ? answer.addrs : t.addrs, answer.instances ?? t.instances)
    this.c.log.info('relay paired', { peerId: t.peerId, name: answer.name })
    return (await this.list()).find(p => p.peerId === peer.peerId)!
  }

  private async pinned (peerId: string, name: string, addrs: string[], instances?: FedInstance[]): Promise<FedPeer> {
    const old = this.peers.get(peerId)
    const others = otherInstances(peerId, instances ?? old?.instances)
    const peer: FedPeer = { peerId, name, addrs, pairedAt: old?.pairedAt ?? Date.now(), policy: old?.policy ?? { ...DEFAULT_FED_POLICY },
      ...(others.length > 0 ? { instances: others } : {}) }
    await this.c.store.putFedPeer(peer)
    this.changes++
    this.setPeer(peer)
    const l = this.link(peerId)
    l.nextAt = 0; l.backoffMs = 0; l.dirAt = 0
    return peer
  }

  async list (): Promise<FedPeerView[]> {
    const stats = await this.c.store.fedQueueStats()
    const now = Date.now()
    return [...this.peers.values()].map(p => {
      const l = this.link(p.peerId)
      const q = stats.get(p.peerId)
      return {
        peerId: p.peerId,
        name: p.name,
        addrs: p.addrs,
        pairedAt: p.pairedAt,
        policy: p.policy,
        state: l.ok === null ? 'idle' : l.ok ? 'up' : 'down',
        queue: { depth: q?.depth ?? 0, bytes: q?.bytes ?? 0, oldestAgeMs: q === undefined ? 0 : Math.max(0, now - q.oldestAt) },
        lastContact: l.lastContact,
        lastError: l.lastError,
        nextRetryMs: Math.max(0, l.nextAt - now),
        counts: { ...l.counts, listed: this.dirs.get(p.peerId)?.people.length ?? 0 },
        ...((p.instances?.length ?? 0) > 0 ? { instances: p.instances!.map(i => i.peerId) } : {})
      }
    })
  }

  /** `ref`: a peer ID or its first 8+ characters. */
  private find (ref: string): FedPeer {
    const hits = [...this.peers.values()].filter(p => ref.length >= 8 && p.peerId.startsWith(ref))
    if (hits.length === 1) return hits[0]!
    throw new ParleyError('ERR_NOT_FOUND',
      hits.length === 0 ? `no paired relay ${ref} (see parley-relay federation list)` : `${ref} names several paired relays: give more of its peer ID`)
  }

  /**
   * Unpairs: its queue is dropped and each sender is told (a bounce, ERR_FED_NOT_PAIRED, kept in the same
   * durable write: the message shows failed with the reason, in the sender's words), its connections cut.
   */
  async remove (ref: string): Promise<{ peerId: string, dropped: number }> {
    const p = this.find(ref)
    const authors = new Set<string>()
    this.unpaired = true
    const dropped = await this.c.store.removeFedPeer(p.peerId, (items) => {
      for (const i of items) authors.add(i.envelope.author)
      return bounces(items.flatMap(i => i.to.map(t => ({ author: i.envelope.author, id: i.envelope.id, peer: t }))), 'ERR_FED_NOT_PAIRED', p.name)
    })
    this.changes++
    this.dropPeer(p.peerId)
    const l = this.links.get(p.peerId)
    await l?.channel?.close().catch(() => {})
    this.links.delete(p.peerId)
    this.dirs.delete(p.peerId)
    await this.c.store.takeFedNotices(outKey(p.peerId), Number.MAX_SAFE_INTEGER, 1)
    for (const [k, v] of this.listed) if (v === p.peerId) this.listed.delete(k)
    for (const [k, v] of this.learned) if (v === p.peerId) this.learned.delete(k)
    for (const i of [p.peerId, ...(p.instances ?? []).map(x => x.peerId)]) await this.c.host.disconnect(i)
    if (dropped > 0) this.c.log.warn('relay unpaired with mail queued to it; its senders are told (failed)', { peerId: p.peerId, dropped })
    this.told(authors)
    return { peerId: p.peerId, dropped: Math.max(0, dropped) }
  }

  /** Changes what one paired relay may see and queue. */
  async setPolicy (ref: string, change: unknown): Promise<FedPeerView> {
    const p = this.find(ref)
    const policy = parseFedPolicy(change, p.policy)
    const next = { ...p, policy }
    await this.c.store.putFedPeer(next)
    this.changes++
    this.setPeer(next)
    return (await this.list()).find(x => x.peerId === p.peerId)!
  }

  /** Paired: the relay itself, or one of its instances. */
  isPaired (peerId: string): boolean { return this.primaryOf(peerId) !== undefined }

  // ---- several instances (issue 14) ----------------------------------------------------

  /** The peer ID a relay was paired under, for it or any instance of it it told us of. */
  private primaryOf (peerId: string): string | undefined {
    return this.peers.has(peerId) ? peerId : this.aliases.get(peerId)
  }

  private setPeer (peer: FedPeer): void {
    const old = this.peers.get(peer.peerId)
    for (const i of old?.instances ?? []) if (this.aliases.get(i.peerId) === peer.peerId) this.aliases.delete(i.peerId)
    this.peers.set(peer.peerId, peer)
    for (const i of peer.instances ?? []) {
      // an instance claim never names us or our instances, a pinned relay, nor an instance another pairing
      // claimed first (its users' homes would then count as the claimer's: M5 of review s5)
      const holder = this.aliases.get(i.peerId)
      const first = holder === undefined || holder === peer.peerId ? undefined : this.peers.get(holder)
      if (i.peerId === this.c.self() || this.ownIds.has(i.peerId) || this.peers.has(i.peerId) || (first !== undefined && first.pairedAt <= peer.pairedAt)) {
        this.c.log.warn('a paired relay named an instance that is not its own; ignored', { peerId: peer.peerId, instance: i.peerId })
        continue
      }
      this.aliases.set(i.peerId, peer.peerId)
    }
  }

  /** the peer IDs of this relay's own instances, as last read (`ownInstances`) */
  private ownIds = new Set<string>()

  private dropPeer (peerId: string): void {
    for (const i of this.peers.get(peerId)?.instances ?? []) if (this.aliases.get(i.peerId) === peerId) this.aliases.delete(i.peerId)
    this.peers.delete(peerId)
  }

  /**
   * Every instance of this relay registered in the store (itself included),
   * as the other offices are told them: with several instances on one
   * PostgreSQL database, they take any of them as this relay.
   */
  private async ownInstances (): Promise<FedInstance[]> {
    const self = this.c.self()
    const registered = (await this.c.store.listInstances()).filter(i => i.peerId !== self && i.addrs.length > 0)
    for (const i of registered) this.ownIds.add(i.peerId)
    return [{ peerId: self, addrs: this.c.host.addresses().slice(0, 16) }, ...registered.map(i => ({ peerId: i.peerId, addrs: i.addrs.slice(0, 16) }))]
      .slice(0, 16)
  }

  /** Reads the pairings again (made, changed or removed on another instance of this relay). */
  private async reloadPeers (): Promise<void> {
    this.reloadedAt = Date.now()
    const before = this.changes
    try {
      const now = await this.c.store.listFedPeers()
      // a pairing changed here while it read: what it read may be older than that change; the next reload catches up
      if (this.changes !== before) return
      const ids = new Set(now.map(p => p.peerId))
      for (const id of [...this.peers.keys()]) {
        if (ids.has(id)) continue
        this.dropPeer(id)
        const l = this.links.get(id)
        void l?.channel?.close().catch(() => {})
        this.links.delete(id)
        this.dirs.delete(id)
      }
      for (const p of now) if (JSON.stringify(this.peers.get(p.peerId)) !== JSON.stringify(p)) this.setPeer(p)
    } catch (err) {
      this.c.log.debug('pairings not read again', { err: toParleyError(err).message })
    }
  }

  /**
   * Nodes take receipts and bounces (`notices`): while some relay is paired, and after an unpairing or while
   * federation is off with mail still queued (the bounces of what was dropped or expired must reach them).
   */
  get enabled (): boolean { return this.peers.size > 0 || this.unpaired }

  /**
   * `enabled`, or `device` has notices kept in the store: bounces of an unpairing outlive a restart of
   * this relay, and reach a node connected to another instance on the shared store.
   */
  async noticesFor (device: string): Promise<boolean> {
    if (this.enabled) return true
    try { return (await this.c.store.takeFedNotices(device, 0, 1)).length > 0 } catch { return false }
  }

  /** a relay was unpaired since start (its bounces wait for the senders) */
  private unpaired = false

  // ---- routing (deposits) --------------------------------------------------------

  /** The paired relay that is `recipient`'s home: the one the depositor named, else one the directories or mail showed. */
  route (recipient: string, home?: string): string | undefined {
    if (!this.c.allowed()) return undefined
    const named = home ?? this.listed.get(recipient) ?? this.learned.get(recipient)
    // the home named may be any instance of that relay (the one its user was connected to)
    const r = named === undefined ? undefined : this.primaryOf(named)
    return r !== undefined && r !== this.c.self() ? r : undefined
  }

  /**
   * `route` for a recipient it knows nothing of here: the route another
   * instance on the shared store learned from forwarded mail (or this one
   * before a restart), read from the store and kept.
   */
  async lookup (recipient: string, home?: string): Promise<string | undefined> {
    const known = this.route(recipient, home)
    if (known !== undefined || !this.c.allowed()) return known
    try {
      const r = await this.c.store.fedRouteOf(recipient)
      if (r !== undefined && this.primaryOf(r) !== undefined) this.learn(recipient, r)
    } catch (err) {
      this.c.log.debug('route not read', { err: toParleyError(err).message })
    }
    return this.route(recipient, home)
  }

  /** Queues `envelope` for recipients homed at paired relays (durably, per relay), then starts forwarding. */
  async enqueue (byRelay: Map<string, string[]>, envelope: Envelope, bytes: number): Promise<void> {
    for (const [relay, to] of byRelay) {
      const p = this.peers.get(relay)
      if (p === undefined) throw notPaired(relay)
      await this.c.store.enqueueFed(relay, to, envelope, bytes, { messages: p.policy.quotaMessages, bytes: p.policy.quotaBytes })
      const l = this.link(relay)
      if (l.backoffMs === 0) setImmediate(() => { void this.pump(relay) })
    }
  }

  // ---- the loop ---------------------------------------------------------------------

  private tick (): void {
    const now = Date.now()
    // federation turned off: nothing is forwarded, but what waits still expires (its senders are told)
    if (!this.c.allowed()) {
      for (const peerId of this.peers.keys()) void this.expire(peerId).catch(err => { this.c.log.debug('expiry not run', { err: toParleyError(err).message }) })
      return
    }
    if (now - this.reloadedAt >= PEERS_RELOAD_MS) void this.reloadPeers()
    for (const peerId of this.peers.keys()) {
      const l = this.link(peerId)
      if (now >= l.nextAt) void this.pump(peerId)
      if (now - l.dirAt >= this.init.directoryRefreshMs) { l.dirAt = now; void this.fetchDirectory(peerId) }
    }
  }

  private async channel (peer: FedPeer): Promise<RpcChannel<FedMethod>> {
    const l = this.link(peer.peerId)
    if (l.channel?.isOpen === true) return l.channel
    // a relay of several instances: whichever answers (the one that answered last first)
    const all = [{ peerId: peer.peerId, addrs: peer.addrs }, ...(peer.instances ?? [])]
    const order = [...all.filter(i => i.peerId === l.via), ...all.filter(i => i.peerId !== l.via)]
    let stream: RawStream | undefined
    let last: unknown
    for (const i of order) {
      try {
        stream = await this.c.host.openStream(i.peerId, i.addrs, FED_PROTOCOL, AbortSignal.timeout(15_000))
        l.via = i.peerId
        break
      } catch (err) { last = err }
    }
    if (stream === undefined) throw last
    l.channel = new RpcChannel<FedMethod>(stream, async (m, body) => await this.answer(peer.peerId, m, body), this.c.log,
      { methods: FED_METHODS, callTimeoutMs: FORWARD_TIMEOUT_MS })
    return l.channel
  }

  private failed (peerId: string, err: unknown): void {
    const l = this.link(peerId)
    const e = toParleyError(err)
    if (l.ok !== false) l.downSince = Date.now()
    l.ok = false
    l.lastError = e.message
    l.backoffMs = Math.min(Math.max(l.backoffMs * 2, this.init.retryMinMs), this.init.retryMaxMs)
    // jitter: half to all of the backoff, so relays coming back are not retried in step
    l.nextAt = Date.now() + l.backoffMs * (0.5 + Math.random() / 2)
    void l.channel?.close().catch(() => {})
    l.channel = undefined
    // the connection itself may be dead without libp2p knowing (a link that went down, then up): new streams on
    // it fail at once; cut it, so the next try dials afresh. Not on a typed answer of the other relay (it is
    // alive, and the connection also carries its forwards to us)
    if (remoteCode(err) === undefined) void this.c.host.disconnect(l.via ?? peerId).catch(() => {})
    this.c.log.info('forwarding to a paired relay paused', { peerId, err: e.message, retryInMs: Math.round(l.nextAt - Date.now()) })
  }

  private contact (peerId: string): void {
    const l = this.link(peerId)
    l.ok = true; l.lastError = null; l.lastContact = Date.now(); l.backoffMs = 0; l.nextAt = 0; l.downSince = null
  }

  /** The paired relays we cannot reach now (their users' mail waits in our queue): told to our nodes with their mail. */
  unreachable (): OfficeDown[] {
    const out: OfficeDown[] = []
    for (const p of this.peers.values()) {
      const l = this.links.get(p.peerId)
      if (l?.ok !== false || l.downSince === null) continue
      out.push({ office: this.dirs.get(p.peerId)?.name ?? p.name, relay: p.peerId, since: l.downSince,
        ...(l.lastError !== null ? { error: l.lastError.slice(0, 300) } : {}) })
      if (out.length >= MAX_OFFICES_DOWN) break
    }
    return out
  }

  /** The items of `peerId`'s queue older than its TTL go, and their bounces are kept, in one durable write. */
  private async expire (peerId: string): Promise<void> {
    const peer = this.peers.get(peerId)
    if (peer === undefined) return
    const expired = await this.c.store.expireFed(peerId, Date.now() - peer.policy.ttlMs,
      (old) => bounces(old.flatMap(i => i.to.map(t => ({ author: i.envelope.author, id: i.envelope.id, peer: t }))), 'ERR_FED_EXPIRED', peer.name))
    if (expired.length === 0) return
    this.link(peerId).counts.expired += expired.length
    this.c.log.warn('queued mail expired before the paired relay took it; its senders are told (failed)', { peerId, count: expired.length })
    this.told(new Set(expired.map(i => i.envelope.author)))
  }

  /** Forwards the queue to `peerId` until it is empty, another instance holds it, or the other relay fails. */
  private async pump (peerId: string): Promise<void> {
    const peer = this.peers.get(peerId)
    const l = this.link(peerId)
    if (peer === undefined || l.busy || !this.c.allowed()) return
    l.busy = true
    try {
      await this.expire(peerId)
      for (;;) {
        let full = false
        let asked = false
        let held = false
        const n = await this.c.store.drainFed(peerId, MAX_FED_BATCH, FED_BATCH_BYTES, async (queued) => {
          asked = true
          // the authors' signed records go beside the batch; an item whose author's record does not name this
          // relay as home yet waits a little (its node sends it right after admission), in order
          const { accounts, ready } = await this.accountsOf(queued)
          const items = queued.slice(0, ready)
          if (items.length === 0) { held = true; return queued[0]!.seq - 1 }
          const ch = await this.channel(peer)
          const batch = `${items[0]!.seq}-${items[items.length - 1]!.seq}`
          const r = parseFedReceipt(await ch.call('forward', { batch, items: items.map(i => ({ seq: i.seq, to: i.to, envelope: i.envelope })),
            ...(accounts.length > 0 ? { accounts } : {}) }))
          const bySeq = new Map(items.map(i => [i.seq, i]))
          if ((r.refused?.length ?? 0) > 0) {
            l.counts.refused += r.refused!.length
            this.c.log.warn('the paired relay refused items; their senders are told', { peerId, count: r.refused!.length,
              codes: [...new Set(r.refused!.map(x => x[1]))] })
            // each refused item bounces for all its recipients there, with the other relay's typed reason
            const byCode = new Map<string, Array<{ author: string, id: string, peer: string }>>()
            for (const [seq, code] of r.refused!) {
              const i = bySeq.get(seq)
              if (i === undefined) continue
              byCode.set(code, [...(byCode.get(code) ?? []), ...i.to.map(t => ({ author: i.envelope.author, id: i.envelope.id, peer: t }))])
            }
            for (const [code, list] of byCode) this.told(await this.c.store.addFedNotices(bounces(list, code, peer.name), MAX_KEPT_NOTICES))
          }
          if (r.unknown.length > 0) {
            l.counts.refused += r.unknown.length
            this.c.log.warn('the paired relay has no such recipients; nothing kept for them, their senders are told', { peerId, count: r.unknown.length })
            // only for a recipient of that item we sent it for (the other relay cannot bounce anybody else);
            // kept before the items leave the queue (drainFed deletes them after this answer)
            this.told(await this.c.store.addFedNotices(bounces(r.unknown.flatMap(([seq, t]) => {
              const i = bySeq.get(seq); return i === undefined || !i.to.includes(t) ? [] : [{ author: i.envelope.author, id: i.envelope.id, peer: t }]
            }), 'ERR_UNKNOWN_RECIPIENT', peer.name), MAX_KEPT_NOTICES))
          }
          full = r.full
          return r.lastSeq
        })
        if (n === null || !asked) break
        if (held) { l.nextAt = Date.now() + HOME_WAIT_RETRY_MS; break }
        this.contact(peerId)
        l.counts.forwarded += n
        if (n === 0) break
        if (full) break
      }
      await this.sendReceipts(peer)
    } catch (err) {
      this.failed(peerId, err)
    } finally {
      l.busy = false
    }
  }

  // ---- the other side: answering a relay ------------------------------------------------

  /** A FED_PROTOCOL stream a relay opened to us. */
  attach (stream: RawStream, remote: string): void {
    const ch = new RpcChannel<FedMethod>(stream, async (m, body) => await this.answer(remote, m, body), this.c.log, { methods: FED_METHODS })
    void ch
  }

  private async answer (caller: string, method: FedMethod, body: unknown): Promise<unknown> {
    this.requireAllowed()
    if (method === 'pair') {
      const req = parsePair(body)
      // the invite is used (durably) before we pin: a second try by the same relay is allowed, any other refused
      await this.c.store.useFedInvite(secretHash(req.secret), caller, Date.now())
      await this.pinned(caller, req.name, req.addrs, req.instances)
      this.c.log.info('relay paired', { peerId: caller, name: req.name })
      const instances = await this.ownInstances()
      return { name: this.init.name, addrs: this.c.host.addresses(), ...(instances.length > 1 ? { instances } : {}) }
    }
    // a pairing made on another instance of this relay is read from the store at most once a second
    if (this.primaryOf(caller) === undefined && Date.now() - this.reloadedAt >= 1000) await this.reloadPeers()
    // any instance of a paired relay speaks for it: one queue, one high-water mark, one set of routes
    const remote = this.primaryOf(caller)
    const peer = remote === undefined ? undefined : this.peers.get(remote)
    if (remote === undefined || peer === undefined) {
      this.c.log.warn('refused an unpaired relay', { peerId: caller, method })
      throw notPaired(caller)
    }
    this.contact(remote)
    if (method === 'directory') {
      const people = peer.policy.directory === 'none' ? [] : await Promise.all((await this.c.store.listListings()).map(async l => await this.withRecord(l)))
      const instances = await this.ownInstances()
      return { name: this.init.name, people, ...(instances.length > 1 ? { instances } : {}) }
    }
    if (method === 'notices') {
      const keep: KeptNotice[] = []
      for (const r of parseFedNotices(body)) {
        // signed by the recipient device; for an author of ours: anything else is dropped
        try { verifyReceipt(r) } catch { continue }
        if (!this.c.store.isAdmitted(r.author)) continue
        keep.push({ device: r.author, notice: { receipt: r } })
      }
      // kept durably before the other relay is answered (it drops what it sent once answered)
      this.told(new Set(await this.c.store.addFedNotices(keep, MAX_KEPT_NOTICES)))
      return { taken: keep.length }
    }
    const { items, accounts } = parseForward(body)
    const homed = this.homedAt(remote, accounts)
    const refused: Array<[number, string]> = []
    const checked = items.map(item => {
      try {
        if (!item.to.every(t => item.envelope.keys.some(k => k.to === t))) throw new ParleyError('ERR_INVALID_ENVELOPE', 'not sealed for every recipient named')
        verifyEnvelope(item.envelope)
        // a "slot taken" notice (issue 9) goes to the envelope's author, signed by the device that gives it back
        // (its author is ours: checked by the notice, not by the home below)
        if (item.envelope.taken !== undefined) givenBackToAuthor(item.envelope, item.to)
        // only mail of the caller's own users: their signed account record names it as home (a forged origin,
        // or a user of ours or of a third office, is refused; so no relay can claim a route to someone it does not host)
        else if (!homed(item.envelope)) throw new ParleyError('ERR_FED_NOT_HOME', 'its author\'s account record does not name that relay as home')
        return item
      } catch (err) {
        refused.push([item.seq, toParleyError(err, 'ERR_INVALID_ENVELOPE').code])
        return { ...item, to: [] }
      }
    })
    const receipt = await this.c.store.receiveFed(remote, checked)
    const l = this.link(remote)
    l.counts.received += receipt.stored
    l.counts.refused += receipt.unknown.length + refused.length
    if (receipt.stored > 0) this.c.received?.(receipt.stored)
    // replies to these authors go back to the relay their mail came from (its own users: checked above)
    // (not from an envelope given back to its author: its author is ours, the relay it came from is not its home)
    for (const item of checked) {
      if (item.to.length > 0 && item.envelope.taken === undefined && !this.listed.has(item.envelope.author)) this.learn(item.envelope.author, remote)
    }
    if (receipt.unknown.length + refused.length > 0) this.c.log.warn('forwarded mail for no user of ours, or not valid: nothing kept', { peerId: remote,
      count: receipt.unknown.length + refused.length, refused: [...new Set(refused.map(r => r[1]))] })
    return { ...receipt, refused }
  }

  /**
   * Whether an envelope's author is a user of paired relay `remote`: a current device of an account whose
   * signed chain names `remote`, or one of its instances, as home. The chain judged is the MERGED one: the
   * ops given beside the batch, the envelope's own `acct`, and the newest verified ops this relay has seen
   * for that account (`chains`), so a relay cannot win with a stale prefix (a former home). Ops that do
   * not verify count for nothing.
   */
  private homedAt (remote: string, accounts: AccountRecord[]): (who: { author: string, acct?: AccountRecord }) => boolean {
    // per account: homed here by its merged chain, and its current devices; per device: the accounts naming it
    const verdicts = new Map<string, { ok: boolean, devices: Set<string> }>()
    const byDevice = new Map<string, Set<string>>()
    const judge = (account: string, ops: AccountOp[]): void => {
      if (ops.length === 0) return
      const st = foldAccount(account, ops)
      verdicts.set(account, { ok: st.home.some(h => this.primaryOf(h.relay) === remote), devices: new Set(st.devices) })
      for (const d of st.devices) byDevice.set(d, (byDevice.get(d) ?? new Set()).add(account))
    }
    for (const r of accounts) this.chainOf(r)
    for (const account of new Set(accounts.map(r => r.account))) judge(account, this.chains.get(account)?.ops ?? [])
    return (envelope) => {
      if (this.c.store.isAdmitted(envelope.author)) return false
      if (envelope.acct !== undefined) judge(envelope.acct.account, this.chainOf(envelope.acct))
      for (const a of byDevice.get(envelope.author) ?? []) {
        const v = verdicts.get(a)
        if (v !== undefined && v.ok && v.devices.has(envelope.author)) return true
      }
      return false
    }
  }

  /** verified ops per account seen in forwards and directories, merged (the most recently used kept, MAX_CHAIN_BYTES in all) */
  private readonly chains = new Map<string, { ops: AccountOp[], bytes: number }>()
  private chainBytes = 0

  /** `r`'s verified ops merged into the chain kept for its account; the merged chain. */
  private chainOf (r: AccountRecord): AccountOp[] {
    const valid = r.ops.filter(op => op.account === r.account && accountOpValid(op))
    const old = this.chains.get(r.account)
    if (valid.length === 0) return old?.ops ?? []
    const ops = old === undefined ? mergeOps([], valid) : mergeOps(old.ops, valid)
    if (old !== undefined) { this.chains.delete(r.account); this.chainBytes -= old.bytes }
    const bytes = JSON.stringify(ops).length
    this.chains.set(r.account, { ops, bytes })
    this.chainBytes += bytes
    for (const [k, v] of this.chains) {
      if (this.chainBytes <= MAX_CHAIN_BYTES || k === r.account) break
      this.chains.delete(k); this.chainBytes -= v.bytes
    }
    return ops
  }

  /** A listing as the other offices get it: with the person's signed account record (its home names this relay). */
  private async withRecord (l: Listing): Promise<FedListed> {
    const p = listedPerson(l)
    try {
      const account = await acctAdm.accountOfDevice(this.c.store, l.peerId) ?? l.peerId
      const ops = await acctAdm.getAccountOps(this.c.store, account)
      return ops.length > 0 ? { ...p, acct: { v: 1, account, ops } } : p
    } catch {
      return p
    }
  }

  /**
   * Our authors' signed account records, beside a batch for another relay (bounded), and how many items
   * of the batch may go now: up to the first whose author's record does not name this relay (or one of its
   * instances) as home yet, unless that item has waited HOME_WAIT_MS (then it goes, and is refused there).
   */
  private async accountsOf (items: FedQueueItem[]): Promise<{ accounts: AccountRecord[], ready: number }> {
    const out: AccountRecord[] = []
    const homed = new Map<string, boolean>()
    const read = new Set<string>()
    const sent = new Set<string>()
    const mine = new Set((await this.ownInstances()).map(i => i.peerId))
    // one budget for the records, the envelopes and their `to` under the frame; the batch is cut before the
    // first item that does not fit with its author's record (never sent without it: refused there)
    let bytes = 0
    let cut = items.length
    for (const [n, i] of items.entries()) {
      const author = i.envelope.author
      let record: AccountRecord | undefined
      if (!read.has(author)) {
        read.add(author)
        try {
          const account = await acctAdm.accountOfDevice(this.c.store, author) ?? author
          const ops = await acctAdm.getAccountOps(this.c.store, account)
          const st = foldAccount(account, ops)
          homed.set(author, st.devices.includes(author) && st.home.some(h => mine.has(h.relay)))
          if (ops.length > 0 && !sent.has(account)) record = { v: 1, account, ops }
        } catch (err) {
          this.c.log.debug('account record not read', { author, err: toParleyError(err).message })
        }
      }
      const more = i.bytes + JSON.stringify(i.to).length + (record === undefined ? 0 : JSON.stringify(record).length)
      if (n > 0 && bytes + more > FED_FORWARD_BYTES) { cut = n; break }
      bytes += more
      if (record !== undefined) { out.push(record); sent.add(record.account) }
    }
    const now = Date.now()
    // (an envelope given back to its author with a slot notice is not our user's: it goes at once, checked by its notice there)
    const wait = items.slice(0, cut).findIndex(i =>
      homed.get(i.envelope.author) !== true && i.envelope.acct === undefined && i.envelope.taken === undefined && now - i.queuedAt < HOME_WAIT_MS)
    return { accounts: out, ready: wait === -1 ? cut : wait }
  }

  private learn (author: string, relay: string): void {
    if (this.learned.get(author) === relay) return
    this.learned.delete(author)
    this.learned.set(author, relay)
    if (this.learned.size > MAX_LEARNED_ROUTES) this.learned.delete(this.learned.keys().next().value as string)
  }

  // ---- receipts and bounces (core/protocol/fed-notice.ts) --------------------------------

  /** The name of the other office whose relay is `peer`'s home, when it is one. */
  officeOf (peer: string): string | undefined {
    const r = this.route(peer)
    return r === undefined ? undefined : this.dirs.get(r)?.name ?? this.peers.get(r)?.name
  }

  /** A receipt one of our devices (`remote`) signed for an author of another office: queued for that office's relay. */
  async receiptFrom (remote: string, body: unknown): Promise<boolean> {
    const r = parseSignedReceipt(body)
    if (r.by !== remote) throw new ParleyError('ERR_INVALID_ARGUMENT', 'a receipt is signed by the device that sends it')
    verifyReceipt(r)
    const relay = this.route(r.author)
    // an author of this relay, or of no office we know: its own path (direct ack, read receipt) applies
    if (relay === undefined) return false
    // kept durably (in the store every instance shares) before the node is answered
    await this.c.store.addFedNotices([{ device: outKey(relay), notice: { receipt: r } }], MAX_KEPT_NOTICES)
    if (this.link(relay).backoffMs === 0) setImmediate(() => { void this.pump(relay) })
    return true
  }

  /** The notices kept for `device` after `ack` (those up to it are deleted), from the store every instance shares. */
  async takeNotices (device: string, ack: number): Promise<Notice[]> {
    return await this.c.store.takeFedNotices(device, ack, MAX_NOTICES)
  }

  /** These devices got notices: told now (mailWaiting). */
  private told (devices: Iterable<string>): void {
    for (const d of devices) this.c.notify?.(d)
  }

  /** Our users' receipts for `peer`'s users, sent; deleted once it answered (a relay that does not take them, an older one, drops them). */
  private async sendReceipts (peer: FedPeer): Promise<void> {
    const key = outKey(peer.peerId)
    const batch = await this.c.store.takeFedNotices(key, 0, MAX_NOTICES)
    if (batch.length === 0) return
    try {
      const ch = await this.channel(peer)
      await ch.call('notices', { receipts: batch.flatMap(n => 'receipt' in n ? [n.receipt] : []) })
    } catch (err) {
      this.c.log.debug('receipts not forwarded', { peerId: peer.peerId, err: toParleyError(err).message })
      const l = this.link(peer.peerId)
      void l.channel?.close().catch(() => {})
      l.channel = undefined
      return
    }
    const more = await this.c.store.takeFedNotices(key, batch[batch.length - 1]!.n, 1)
    if (more.length > 0) setImmediate(() => { void this.pump(peer.peerId) })
  }

  // ---- the directory ---------------------------------------------------------------------

  private async fetchDirectory (peerId: string): Promise<void> {
    const peer = this.peers.get(peerId)
    if (peer === undefined) return
    try {
      const ch = await this.channel(peer)
      const dir = parseFedDirectory(await ch.call('directory', {}))
      // a route claim each: only people whose signed record names that relay as home (none of ours, none of a third office's)
      const homed = this.homedAt(peerId, dir.people.flatMap(p => p.acct !== undefined ? [p.acct] : []))
      const people = dir.people.filter(p => homed({ author: p.peerId })).map(({ acct: _a, ...p }) => p)
      if (people.length < dir.people.length) {
        this.c.log.warn('a paired relay listed people it is not the home of: left out', { peerId, count: dir.people.length - people.length })
      }
      this.dirs.set(peerId, { name: dir.name, people })
      // its instances as it names them now (one added or gone since the pairing)
      if (dir.instances !== undefined) {
        const others = otherInstances(peerId, dir.instances)
        const key = (l: FedInstance[]): string => l.map(i => `${i.peerId} ${i.addrs.join(',')}`).join(';')
        if (key(others) !== key(peer.instances ?? [])) {
          const next: FedPeer = { ...peer, instances: others }
          await this.c.store.putFedPeer(next)
          this.changes++
          this.setPeer(next)
        }
      }
      for (const [k, v] of this.listed) if (v === peerId) this.listed.delete(k)
      for (const p of people) this.listed.set(p.peerId, peerId)
      this.contact(peerId)
    } catch (err) {
      const l = this.link(peerId)
      if (l.ok !== false) l.downSince = Date.now()
      l.ok = false
      l.lastError = toParleyError(err).message
      l.dirAt = Date.now() - this.init.directoryRefreshMs + Math.min(this.init.directoryRefreshMs, Math.max(this.init.retryMinMs, 5000))
      this.c.log.debug('directory of a paired relay not fetched', { peerId, err: toParleyError(err).message })
    }
  }

  /** Fetches every paired relay's directory now (after a change there, or in tests). */
  async refreshDirectories (): Promise<void> {
    await Promise.all([...this.peers.keys()].map(async p => { await this.fetchDirectory(p) }))
  }

  /** People of the other offices who chose to be listed, matching `q` (name, department or peer ID; empty: all). */
  offices (q = ''): OfficePerson[] {
    if (!this.c.allowed()) return []
    const needle = q.trim().toLocaleLowerCase()
    const out: OfficePerson[] = []
    for (const [relay, d] of this.dirs) {
      if (!this.peers.has(relay)) continue
      for (const p of d.people) {
        const hay = `${p.name}\n${p.department ?? ''}\n${p.peerId}\n${d.name}`.toLocaleLowerCase()
        if (needle === '' || hay.includes(needle)) out.push({ ...p, office: d.name, relay })
        if (out.length >= 500) return out
      }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name))
  }
}

/** The instances of relay `peerId` other than itself, deduplicated, at most 16. */
function otherInstances (peerId: string, instances: FedInstance[] | undefined): FedInstance[] {
  const seen = new Set([peerId])
  const out: FedInstance[] = []
  for (const i of instances ?? []) {
    if (seen.has(i.peerId)) continue
    seen.add(i.peerId)
    out.push({ peerId: i.peerId, addrs: i.addrs })
  }
  return out.slice(0, 16)
}

/** the store's notice key of our users' receipts waiting to go to paired relay `peerId` */
const outKey = (peerId: string): string => `fed-out:${peerId}`

/** Our authors' messages that will never reach `peer` through federation: a bounce each author's devices see (failed, with the reason). */
function bounces (items: Array<{ author: string, id: string, peer: string }>, code: string, office: string): KeptNotice[] {
  const byKey = new Map<string, { author: string, peer: string, ids: string[] }>()
  for (const i of items) {
    const k = `${i.author} ${i.peer}`
    const b = byKey.get(k) ?? { author: i.author, peer: i.peer, ids: [] }
    b.ids.push(i.id)
    byKey.set(k, b)
  }
  const out: KeptNotice[] = []
  for (const b of byKey.values()) {
    for (let i = 0; i < b.ids.length; i += MAX_NOTICE_IDS) {
      out.push({ device: b.author, notice: { bounce: { ids: b.ids.slice(i, i + MAX_NOTICE_IDS), peer: b.peer, code, office } } })
    }
  }
  return out
}

const listedPerson = (l: Listing): FedPerson => ({ peerId: l.peerId, name: l.name, ...(l.department !== undefined ? { department: l.department } : {}) })

/** A per-peer policy change checked against the current one. */
export function parseFedPolicy (value: unknown, current: FedPolicy): FedPolicy {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ParleyError('ERR_INVALID_ARGUMENT', 'policy must be an object')
  const next = { ...current }
  for (const [k, v] of Object.entries(value)) {
    if (k === 'directory') {
      if (v !== 'none' && v !== 'listed') throw new ParleyError('ERR_INVALID_ARGUMENT', 'directory must be "none" or "listed"')
      next.directory = v
    } else if (k === 'quotaMessages' || k === 'quotaBytes' || k === 'ttlMs') {
      const min = k === 'ttlMs' ? 60_000 : 1
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new ParleyError('ERR_INVALID_ARGUMENT',
        `${k} must be a whole number of at least ${min}`)
      next[k] = v
    } else {
      throw new ParleyError('ERR_INVALID_ARGUMENT', `unknown federation policy "${k}" (known: directory, quotaMessages, quotaBytes, ttlMs)`)
    }
  }
  return next
}

export const isPeerId = (s: unknown): s is string => typeof s === 'string' && PEER_ID.test(s)

/** A "slot taken" notice forwarded by a paired relay: for the envelope's author only, and signed by its `by`. */
function givenBackToAuthor (envelope: Envelope, to: string[]): void {
  if (to.length !== 1 || to[0] !== envelope.author) throw new ParleyError('ERR_INVALID_ENVELOPE', 'a slot notice goes to the envelope\'s author only')
  const by = envelope.taken?.by
  if (!envelope.keys.some(k => k.to === by)) throw new ParleyError('ERR_NOT_A_RECIPIENT', 'a slot notice comes from a recipient of the envelope')
  verifySlotTaken(envelope)
}
