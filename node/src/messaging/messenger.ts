/**
 * One-to-one messaging: send (durable first), deliver over the peer's RPC
 * channel, ack after the recipient's durable write, dedupe by id, per-author
 * sequence numbers, outbox retry and have-vector sync on every (re)connect.
 */
import { setMaxListeners } from 'node:events'
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { newMessageId, openEnvelope, sealEnvelope, signProfile, verifyProfile, type SigningKeys } from '../../../core/crypto/envelope.js'
import { compareHlc, type HybridClock } from '../clock/hlc.js'
import { PERMANENT_REFUSALS, MAX_TEXT_CHARS, MAX_GROUP_MEMBERS, isGroupConv, type Body, type EnvelopeKind, conversationMembers, dmConversationId, parseDisplayName, parseEnvelope, parseProfile, type Envelope, type GroupOp, type Hlc, type Profile } from '../../../core/protocol/envelope.js'
import type { RpcMethod } from '../../../core/protocol/rpc-frame.js'
import { MSG_PROTOCOL, parseDeliverResult, parseHaveRequest, parseHaveVector, parseReceipt, parseTyping } from '../../../core/protocol/peer-rpc.js'
import { PEER_ID } from '../../../core/protocol/validate.js'
import { Later, RpcChannel, remoteCode, type RpcChannelInit } from '../../../core/rpc/channel.js'
import { withTimeout, type AbortOptions } from '../../../core/util/abort.js'
import type { MessageState, MessageStore, StoredMessage, HistoryQuery, PeerRecord } from '../store/types.js'
import { safetyNumber } from '../../../core/crypto/safety.js'
import type { PeerHost, Reach } from '../host/types.js'
import type { RelayClient } from './relay-client.js'
import { GroupBook, groupVerdict, memberAt, type GroupState } from './groups.js'
import { Deposits } from './deposits.js'
import { inWindows } from '../../../core/util/windows.js'
import { outboxPages } from '../store/pages.js'
import type { Logger } from '../../../core/util/log.js'

export interface MessengerComponents {
  store: MessageStore
  host: PeerHost
  identity: SigningKeys
  clock: HybridClock
  log: Logger
  /** optional: the mailbox path for peers we cannot reach */
  relay?: RelayClient
}

export interface MessengerInit extends RpcChannelInit {
  /** display name to publish; keeps the stored one when absent */
  name?: string
  /** how often queued messages are retried. @default 2000 */
  retryIntervalMs?: number
  /** longest wait between dial attempts to an offline peer with queued messages. @default 30000 */
  maxRedialBackoffMs?: number
  /** messages in flight per peer before waiting for acks. @default 32 */
  sendWindow?: number
  /** a message for an unreachable peer goes to the relay's mailbox after this long. @default 1000 */
  depositAfterMs?: number
}

export const DEFAULT_RETRY_INTERVAL_MS = 2000
export const DEFAULT_MAX_REDIAL_BACKOFF_MS = 30_000
export const DEFAULT_SEND_WINDOW = 32
export const DEFAULT_DEPOSIT_AFTER_MS = 1000

export const DEFAULT_NAME = 'Parley user'

export interface PeerView {
  peerId: string
  name: string | null
  online: boolean
  reach: Reach | null
  lastSeen: number | null
  /** compare out of band to verify the key (see crypto/safety.ts) */
  safetyNumber: string
  verified: boolean
  /** set when another key used this display name before: a new device, or an impostor */
  keyWarning: string | null
}

export interface MessengerEvents {
  messageStored: CustomEvent<StoredMessage>
  messageStateChanged: CustomEvent<StoredMessage>
  peerOnline: CustomEvent<PeerView>
  peerOffline: CustomEvent<PeerView>
  peerUpdated: CustomEvent<PeerView>
  groupUpdated: CustomEvent<GroupState>
  /** the peer is typing in a conversation with us (ephemeral, best effort) */
  peerTyping: CustomEvent<{ peerId: string, conv: string }>
}

interface PeerState {
  channel?: RpcChannel
  opening?: Promise<RpcChannel>
  pushing: boolean
  again: boolean
  needSync: boolean
  nextDialAt: number
  dialBackoffMs: number
}

export class Messenger extends EventTarget {
  readonly peerId: string
  private readonly c: MessengerComponents
  private readonly init: Required<Omit<MessengerInit, 'name' | keyof RpcChannelInit>> & RpcChannelInit & { name?: string }
  private readonly peers = new Map<string, PeerState>()
  private readonly groups: GroupBook
  private readonly deposits: Deposits
  /** peer\nconv\nauthor → how far a sync confirmed the peer holds what it can get, for the have value it reported */
  private readonly syncedUpTo = new Map<string, { have: number, upTo: number }>()
  /** Settles when the group envelope received last has been judged and, if an op, folded in. */
  private groupTurn: Promise<void> = Promise.resolve()
  private profile?: Profile
  private retryTimer?: NodeJS.Timeout
  private running = false

  constructor (components: MessengerComponents, init: MessengerInit = {}) {
    super()
    // one listener per API client and per waitForState call is expected
    setMaxListeners(Infinity, this)
    for (const k of ['store', 'host', 'identity', 'clock', 'log'] as const) {
      if (components[k] == null) throw new ParleyError('ERR_INVALID_ARGUMENT', `Messenger needs components.${k}`)
    }
    if (init.name !== undefined) parseDisplayName(init.name)
    this.c = components
    this.peerId = components.identity.peerId
    this.groups = new GroupBook(this.peerId)
    this.init = {
      ...init,
      retryIntervalMs: init.retryIntervalMs ?? DEFAULT_RETRY_INTERVAL_MS,
      maxRedialBackoffMs: init.maxRedialBackoffMs ?? DEFAULT_MAX_REDIAL_BACKOFF_MS,
      sendWindow: init.sendWindow ?? DEFAULT_SEND_WINDOW,
      depositAfterMs: init.depositAfterMs ?? DEFAULT_DEPOSIT_AFTER_MS
    }
    this.deposits = new Deposits({ store: this.c.store, relay: this.c.relay, log: this.c.log, changed: (m) => { this.emit('messageStateChanged', m) } }, this.init)
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    const { store, host, clock } = this.c
    for (const conv of await store.listConversations()) clock.observe(conv.lastHlc)
    await this.loadGroups()
    const stored = await store.getMeta('profile')
    let profile: Profile | undefined
    try { if (stored !== undefined) { profile = parseProfile(stored) } } catch { profile = undefined }
    if (profile === undefined || (this.init.name !== undefined && profile.name !== this.init.name)) {
      profile = signProfile(this.c.identity, this.init.name ?? profile?.name ?? DEFAULT_NAME, Math.max(Date.now(), (profile?.updatedAt ?? 0) + 1))
      await store.putMeta('profile', profile)
    }
    this.profile = profile
    await host.handle(MSG_PROTOCOL, (stream, remote) => {
      const ch = new RpcChannel(stream, async (m, body) => await this.onRequest(remote, m, body), this.c.log, this.init)
      void ch
    })
    host.addEventListener('peerConnected', this.onConnected)
    host.addEventListener('peerDisconnected', this.onDisconnected)
    this.retryTimer = setInterval(() => { void this.retryAll() }, this.init.retryIntervalMs)
    this.retryTimer.unref()
    for (const p of host.connectedPeers()) this.onConnected(new CustomEvent('peerConnected', { detail: { peerId: p, reach: 'lan' } }))
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    clearInterval(this.retryTimer)
    this.c.host.removeEventListener('peerConnected', this.onConnected)
    this.c.host.removeEventListener('peerDisconnected', this.onDisconnected)
    for (const s of this.peers.values()) { await s.channel?.close().catch(() => {}) }
    this.peers.clear()
  }

  get name (): string { return this.profile?.name ?? DEFAULT_NAME }

  async setName (name: string): Promise<Profile> {
    parseDisplayName(name)
    const profile = signProfile(this.c.identity, name, Math.max(Date.now(), (this.profile?.updatedAt ?? 0) + 1))
    await this.c.store.putMeta('profile', profile)
    this.profile = profile
    // connected peers learn the new name now; the others fetch it when they next connect
    for (const p of this.c.host.connectedPeers()) {
      if (this.c.relay?.isRelay(p) === true) continue
      void this.channelTo(p).then(async ch => await ch.call('announceProfile', profile)).catch(() => {})
    }
    return profile
  }

  /**
   * Stores the message durably (state `queued`) and starts delivering it.
   * `to` is a peer ID (direct conversation) or a group conversation id (`g:...`).
   */
  async sendMessage (to: string, text: string, options: AbortOptions = {}): Promise<StoredMessage> {
    if (typeof text !== 'string' || text.length === 0) throw new ParleyError('ERR_INVALID_ARGUMENT', 'message text must not be empty')
    if (text.length > MAX_TEXT_CHARS) throw new ParleyError('ERR_INVALID_ARGUMENT', `message text is longer than ${MAX_TEXT_CHARS} characters`)
    if (typeof to === 'string' && isGroupConv(to)) {
      const g = this.groups.requireMember(to)
      return await this.append(to, g.members.filter(m => m !== this.peerId), { text }, 'text', options)
    }
    if (typeof to !== 'string' || !PEER_ID.test(to)) throw new ParleyError('ERR_INVALID_ARGUMENT', 'recipient must be a peer ID or a group id')
    if (to === this.peerId) throw new ParleyError('ERR_INVALID_ARGUMENT', 'cannot send a message to yourself')
    return await this.append(dmConversationId(this.peerId, to), [to], { text }, 'text', options)
  }

  /** Seals, stores durably with outbox entries for `recipients`, and starts delivery. */
  private async append (conv: string, recipients: string[], body: Body, kind: EnvelopeKind, options: AbortOptions = {}): Promise<StoredMessage> {
    const msg = await this.c.store.appendOutgoing(conv, this.peerId, recipients, (seq) => {
      const id = newMessageId()
      const hlc = this.c.clock.tick()
      const envelope = sealEnvelope(this.c.identity, { id, conv, seq, hlc, recipients, body, kind })
      return { id, conv, author: this.peerId, seq, hlc, text: body.text, ...(body.op !== undefined ? { op: body.op } : {}), outgoing: true, state: recipients.length === 0 ? 'delivered' : 'queued', storedAt: Date.now(), envelope }
    }, options)
    if (msg.op !== undefined) this.applyOp(msg)
    this.emit('messageStored', msg)
    for (const r of recipients) {
      this.deposits.poke(r)
      this.schedulePush(r)
    }
    return msg
  }

  // ---- groups -------------------------------------------------------------

  group (conv: string): GroupState | null { return this.groups.get(conv) }
  listGroups (): GroupState[] { return this.groups.list() }

  private applyOp (m: StoredMessage): void {
    if (m.op === undefined) return
    const state = this.groups.apply({ id: m.id, conv: m.conv, author: m.author, hlc: m.hlc, op: m.op })
    if (state === null) return
    this.emit('groupUpdated', state)
    // new members need what they lack: sync with every member we are connected to
    for (const p of state.members) if (p !== this.peerId && this.c.host.isConnected(p)) { this.state(p).needSync = true; this.schedulePush(p) }
    // removed (or left): what we wrote after that can never be accepted; fail it instead of retrying forever
    // (while the ops are replayed at start, once per group at the end, from its final state)
    if (!this.loadingGroups) this.failSendsIfRemoved(state)
  }

  private loadingGroups = false

  private failSendsIfRemoved (state: GroupState): void {
    const ended = state.members.includes(this.peerId) ? undefined : state.spans[this.peerId]?.at(-1)?.to
    if (ended === undefined) return
    void this.failSendsAfter(state.conv, ended).catch((err) => { this.c.log.warn('could not fail sends after removal', { err: toParleyError(err).message }) })
  }

  /** Marks our queued messages in `conv` stamped at or after `since` failed for every recipient (ERR_NOT_A_MEMBER). */
  private async failSendsAfter (conv: string, since: Hlc): Promise<void> {
    for (const peer of await this.c.store.outboxPeers()) {
      for await (const page of outboxPages(this.c.store, peer, 1000)) {
        // judged by the group as it is now (replaying ops at start passes through removals later undone)
        const g = this.groups.get(conv)
        for (const m of page) {
          if (m.conv !== conv || m.author !== this.peerId || compareHlc(m.hlc, since) < 0) continue
          // our own leave op must still reach everyone; and a message from a time we are a member again is fine
          if (m.op?.type === 'leave' || g === null || memberAt(g, this.peerId, m.hlc) || g.members.includes(this.peerId)) continue
          const failed = await this.c.store.markFailed(m.id, peer, 'ERR_NOT_A_MEMBER')
          if (failed !== undefined) this.emit('messageStateChanged', failed)
        }
      }
    }
  }

  private async loadGroups (): Promise<void> {
    this.loadingGroups = true
    try {
      for (const c of await this.c.store.listConversations()) {
        if (!isGroupConv(c.conv)) continue
        for (const m of await this.c.store.history(c.conv, { limit: Number.MAX_SAFE_INTEGER })) if (m.op !== undefined) this.applyOp(m)
      }
    } finally {
      this.loadingGroups = false
    }
    for (const g of this.groups.list()) this.failSendsIfRemoved(g)
  }

  async createGroup (name: string, members: string[]): Promise<GroupState> {
    parseDisplayName(name)
    const list = [...new Set(members)].filter(m => m !== this.peerId)
    for (const m of list) if (!PEER_ID.test(m)) throw new ParleyError('ERR_INVALID_ARGUMENT', `not a peer ID: ${m}`)
    if (list.length === 0) throw new ParleyError('ERR_INVALID_ARGUMENT', 'a group needs at least one other member')
    if (list.length + 1 > MAX_GROUP_MEMBERS) throw new ParleyError('ERR_INVALID_ARGUMENT', `a group has at most ${MAX_GROUP_MEMBERS} members`)
    const conv = `g:${newMessageId()}`
    await this.append(conv, list, { text: `${this.name} created "${name}"`, op: { type: 'create', name, members: list } }, 'groupOp')
    return this.groups.get(conv) as GroupState
  }

  async addMember (conv: string, member: string): Promise<GroupState> {
    const g = this.groups.requireAdmin(conv)
    if (!PEER_ID.test(member)) throw new ParleyError('ERR_INVALID_ARGUMENT', 'member must be a peer ID')
    if (g.members.includes(member)) return g
    await this.append(conv, [...g.members, member].filter(m => m !== this.peerId), { text: `${this.name} added ${member.slice(-12)}`, op: { type: 'add', member, snapshot: { name: g.name, admin: g.admin, members: g.members } } }, 'groupOp')
    return this.groups.requireMember(conv)
  }

  async removeMember (conv: string, member: string): Promise<GroupState> {
    const g = this.groups.requireAdmin(conv)
    if (member === this.peerId) throw new ParleyError('ERR_INVALID_ARGUMENT', 'to leave your own group, use leave')
    if (!g.members.includes(member)) throw new ParleyError('ERR_NOT_FOUND', 'not a member of this group')
    // the removed member gets the removal itself; nothing sealed after it is addressed to them
    await this.append(conv, g.members.filter(m => m !== this.peerId), { text: `${this.name} removed ${member.slice(-12)}`, op: { type: 'remove', member } }, 'groupOp')
    return this.groups.requireMember(conv)
  }

  async renameGroup (conv: string, name: string): Promise<GroupState> {
    const g = this.groups.requireAdmin(conv)
    parseDisplayName(name)
    await this.append(conv, g.members.filter(m => m !== this.peerId), { text: `${this.name} renamed the group to "${name}"`, op: { type: 'rename', name } }, 'groupOp')
    return this.groups.requireMember(conv)
  }

  async leaveGroup (conv: string): Promise<GroupState> {
    const g = this.groups.requireMember(conv)
    await this.append(conv, g.members.filter(m => m !== this.peerId), { text: `${this.name} left`, op: { type: 'leave' } }, 'groupOp')
    return this.groups.get(conv) as GroupState
  }

  /** Resolves when message `id` reaches `state` (or a later one). */
  async waitForState (id: string, state: 'sent' | 'delivered' | 'read', options: AbortOptions = {}): Promise<StoredMessage> {
    const rank: Record<MessageState, number> = { queued: 0, received: 0, sent: 1, seen: 2, delivered: 2, read: 3, failed: 4 }
    const reached = (m: StoredMessage): boolean => rank[m.state] >= rank[state]
    return await new Promise<StoredMessage>((resolve, reject) => {
      const onChange = (evt: Event): void => {
        const m = (evt as CustomEvent<StoredMessage>).detail
        if (m.id === id && reached(m)) { cleanup(); resolve(m) }
      }
      const onAbort = (): void => { cleanup(); reject(toParleyError(options.signal?.reason ?? new Error('aborted'), 'ERR_ABORTED')) }
      const cleanup = (): void => { this.removeEventListener('messageStateChanged', onChange); options.signal?.removeEventListener('abort', onAbort) }
      this.addEventListener('messageStateChanged', onChange)
      options.signal?.addEventListener('abort', onAbort, { once: true })
      void this.c.store.getMessage(id).then((m) => {
        if (m === undefined) { cleanup(); reject(new ParleyError('ERR_NOT_FOUND', `no message ${id}`)) } else if (reached(m)) { cleanup(); resolve(m) }
      }, (err) => { cleanup(); reject(toParleyError(err, 'ERR_STORE')) })
    })
  }

  /** History of a direct conversation (peer ID) or a group (group conversation id). */
  async history (peerOrGroup: string, query?: HistoryQuery): Promise<StoredMessage[]> {
    return await this.c.store.history(this.convOf(peerOrGroup), query)
  }

  convOf (peerOrGroup: string): string {
    return isGroupConv(peerOrGroup) ? peerOrGroup : dmConversationId(this.peerId, peerOrGroup)
  }

  /** Marks the conversation with `peer` as shown and tells the author (best effort). */
  async markSeen (peerOrGroup: string): Promise<number> {
    const conv = this.convOf(peerOrGroup)
    const changed = await this.c.store.markSeen(conv)
    for (const m of changed) this.emit('messageStateChanged', m)
    // read receipts go to each author we are connected to (best effort)
    const byAuthor = new Map<string, string[]>()
    for (const m of changed) byAuthor.set(m.author, [...(byAuthor.get(m.author) ?? []), m.id])
    for (const [author, ids] of byAuthor) {
      if (!this.c.host.isConnected(author)) continue
      void this.channelTo(author).then(async ch => {
        for (let i = 0; i < ids.length; i += 1000) await ch.call('receipt', { conv, ids: ids.slice(i, i + 1000) })
      }).catch(err => { this.c.log.debug('read receipt not sent', { author, err: toParleyError(err).message }) })
    }
    return changed.length
  }

  /** Tells the peer, or every connected group member, that we are typing; best effort. */
  async sendTyping (peerOrGroup: string): Promise<boolean> {
    const conv = this.convOf(peerOrGroup)
    const to = isGroupConv(conv) ? this.groups.requireMember(conv).members.filter(m => m !== this.peerId) : [peerOrGroup]
    let sent = false
    for (const p of to.filter(p => this.c.host.isConnected(p))) {
      const ch = await this.channelTo(p)
      await ch.call('typing', { conv }, { signal: AbortSignal.timeout(3000) })
      sent = true
    }
    return sent
  }

  /** Is `peer` allowed to see and act on `conv`? (members of a direct conversation, current group members) */
  private inConversation (conv: string, peer: string): boolean {
    if (isGroupConv(conv)) return this.groups.isMember(conv, peer)
    return conversationMembers(conv).includes(peer)
  }

  async listPeers (): Promise<PeerView[]> {
    const records = (await this.c.store.listPeers()).filter(r => this.c.relay?.isRelay(r.peerId) !== true)
    const known = new Set(records.map(r => r.peerId))
    for (const p of this.c.host.connectedPeers()) if (!known.has(p) && this.c.relay?.isRelay(p) !== true) records.push({ peerId: p, lastSeen: Date.now() })
    // the first key seen with a name owns it; a later key with the same name gets a warning
    const owner = new Map<string, PeerRecord>()
    for (const r of [...records].sort((a, b) => (a.firstSeen ?? a.lastSeen ?? 0) - (b.firstSeen ?? b.lastSeen ?? 0))) {
      const name = r.profile?.name.toLowerCase()
      if (name !== undefined && !owner.has(name)) owner.set(name, r)
    }
    return records.map(r => {
      const name = r.profile?.name ?? null
      const first = name === null ? undefined : owner.get(name.toLowerCase())
      const warning = first !== undefined && first.peerId !== r.peerId
        ? `Another key (${first.peerId.slice(-8)}) used the name "${name ?? ''}" before. This may be a new device, or someone else: compare safety numbers before you trust it.`
        : null
      return this.view(r, warning)
    })
  }

  /** Records that the user compared safety numbers with `peer` (or withdraws it). */
  async setVerified (peer: string, verified: boolean): Promise<PeerView> {
    const existing = await this.c.store.getPeer(peer)
    if (existing === undefined) throw new ParleyError('ERR_UNKNOWN_PEER', `no known peer ${peer}`)
    await this.c.store.putPeer({ ...existing, verified })
    const v = await this.peerView(peer)
    this.emit('peerUpdated', v)
    return v
  }

  private readonly safetyCache = new Map<string, string>()

  private view (r: PeerRecord, keyWarning: string | null): PeerView {
    const online = this.c.host.isConnected(r.peerId)
    let sn = this.safetyCache.get(r.peerId)
    if (sn === undefined) { sn = safetyNumber(this.peerId, r.peerId); this.safetyCache.set(r.peerId, sn) }
    return { peerId: r.peerId, name: r.profile?.name ?? null, online, reach: this.c.host.reach(r.peerId), lastSeen: r.lastSeen ?? null, safetyNumber: sn, verified: r.verified === true, keyWarning }
  }

  private async peerView (peerId: string): Promise<PeerView> {
    const all = await this.listPeers()
    return all.find(p => p.peerId === peerId) ?? this.view({ peerId }, null)
  }

  private emit<K extends keyof MessengerEvents> (type: K, detail: MessengerEvents[K]['detail']): void {
    this.dispatchEvent(new CustomEvent(type, { detail }))
  }

  private state (peer: string): PeerState {
    let s = this.peers.get(peer)
    if (s === undefined) {
      s = { pushing: false, again: false, needSync: true, nextDialAt: 0, dialBackoffMs: 1000 }
      this.peers.set(peer, s)
    }
    return s
  }

  private readonly onConnected = (evt: Event): void => {
    const { peerId } = (evt as CustomEvent<{ peerId: string }>).detail
    if (this.c.relay?.isRelay(peerId) === true) return
    const s = this.state(peerId)
    s.needSync = true
    s.dialBackoffMs = 1000
    this.deposits.reset(peerId)
    void (async () => {
      const existing = await this.c.store.getPeer(peerId)
      const now = Date.now()
      await this.c.store.putPeer({ ...existing, peerId, lastSeen: now, firstSeen: existing?.firstSeen ?? now })
      this.emit('peerOnline', await this.peerView(peerId))
      await this.fetchProfile(peerId)
    })().catch(err => { this.c.log.debug('peer setup failed', { peerId, err: toParleyError(err).message }) })
    this.schedulePush(peerId)
  }

  private readonly onDisconnected = (evt: Event): void => {
    const { peerId } = (evt as CustomEvent<{ peerId: string }>).detail
    if (this.c.relay?.isRelay(peerId) === true) return
    const s = this.peers.get(peerId)
    if (s !== undefined) { s.channel = undefined; s.opening = undefined }
    void (async () => {
      const existing = await this.c.store.getPeer(peerId)
      await this.c.store.putPeer({ ...existing, peerId, lastSeen: Date.now() })
      this.emit('peerOffline', await this.peerView(peerId))
    })().catch(err => { this.c.log.debug('peer teardown failed', { peerId, err: toParleyError(err).message }) })
  }

  private async fetchProfile (peerId: string): Promise<void> {
    const ch = await this.channelTo(peerId)
    await this.acceptProfile(peerId, await ch.call('getProfile', {}))
  }

  /** A signed profile from `peerId`: kept when it is valid, its own, and newer than what we have. */
  private async acceptProfile (peerId: string, value: unknown): Promise<void> {
    const profile = parseProfile(value)
    if (profile.peerId !== peerId) throw new ParleyError('ERR_INVALID_ENVELOPE', 'peer sent a profile of another peer')
    verifyProfile(profile)
    const existing = await this.c.store.getPeer(peerId)
    if (existing?.profile !== undefined && existing.profile.updatedAt >= profile.updatedAt) return
    await this.c.store.putPeer({ ...existing, peerId, profile })
    this.emit('peerUpdated', await this.peerView(peerId))
  }

  private async channelTo (peer: string, options: AbortOptions = {}): Promise<RpcChannel> {
    const s = this.state(peer)
    if (s.channel?.isOpen === true) return s.channel
    if (s.opening !== undefined) return await s.opening
    s.opening = (async () => {
      const stream = await this.c.host.openStream(peer, MSG_PROTOCOL, { signal: withTimeout(options.signal, 10_000) })
      const ch = new RpcChannel(stream, async (m, body) => await this.onRequest(peer, m, body), this.c.log, this.init)
      s.channel = ch
      return ch
    })()
    try { return await s.opening } finally { s.opening = undefined }
  }

  /** Runs the per-peer delivery loop unless it is already running (then it runs once more). */
  private schedulePush (peer: string): void {
    const s = this.state(peer)
    if (s.pushing) { s.again = true; return }
    if (!this.c.host.isConnected(peer)) return
    s.pushing = true
    void this.pushLoop(peer, s).catch((err) => {
      this.c.log.debug('delivery paused', { peer, err: toParleyError(err).message })
      if (s.channel !== undefined && !s.channel.isOpen) s.channel = undefined
    }).finally(() => {
      s.pushing = false
      // asked again while the loop was ending (a reconnect mid-call): run once more
      if (s.again && this.running) { s.again = false; this.schedulePush(peer) }
    })
  }

  private async pushLoop (peer: string, s: PeerState): Promise<void> {
    while (this.running && this.c.host.isConnected(peer)) {
      s.again = false
      const ch = await this.channelTo(peer)
      if (s.needSync) {
        // cleared first so a request made while this sync runs is not lost; set again if it did not finish
        s.needSync = false
        let complete = false
        try {
          complete = await this.syncTo(peer, ch)
        } finally {
          if (!complete) s.needSync = true
        }
      }
      // one pass over the whole outbox, a page at a time: entries the peer answers "not yet" (a group it
      // does not know yet) are passed over, so they never hold up what is queued behind them
      for await (const page of outboxPages(this.c.store, peer, 256)) await this.deliverAll(peer, ch, page.map(m => m.envelope))
      // what is still queued waits for the retry timer, unless something new came meanwhile
      if (!s.again) return
    }
  }

  /**
   * What the peer lacks, by its have-vector: our own messages it lost, and in
   * groups every member's messages (any member can fill another's gaps). One
   * conversation failing does not stop the others; a closed channel stops the
   * sync. Returns false when something is to be tried again (a timeout, an
   * error at the peer), so the next push syncs again; a refusal is final.
   */
  private async syncTo (peer: string, ch: RpcChannel): Promise<boolean> {
    let complete = true
    const convs = [dmConversationId(this.peerId, peer), ...this.groups.shared(peer).map(g => g.conv)]
    for (const conv of convs) {
      try {
        const have = parseHaveVector(await ch.call('getHave', { conv }))
        const g = this.groups.get(conv)
        // the admin first: its ops (the group's start, adds) let the peer judge everyone else's messages
        const authors = g === null ? [this.peerId] : [g.admin, ...Object.keys(g.spans).filter(a => a !== g.admin)]
        for (const author of authors.filter(a => a !== peer)) {
          const peerHas = have[author] ?? 0
          // the peer's have-vector counts from seq 1, so a member added later (or one that refused a message)
          // reports the same low number for good; what an earlier sync confirmed up to, for that same number,
          // is not sent again. A different number (it got more, or lost data) syncs from its number again.
          const key = `${peer}\n${conv}\n${author}`
          const mark = this.syncedUpTo.get(key)
          let after = mark !== undefined && mark.have === peerHas ? Math.max(peerHas, mark.upTo) : peerHas
          let settledSoFar = true
          for (;;) {
            const envs = await this.c.store.envelopesAfter(conv, author, after, 256)
            if (envs.length === 0) break
            const forPeer = envs.filter(e => e.keys.some(k => k.to === peer))
            const settled = await this.deliverAll(peer, ch, forPeer)
            after = envs[envs.length - 1]!.seq
            // the watermark moves only over pages the peer settled completely (holds, or refused for good)
            if (settled < forPeer.length) settledSoFar = false
            if (settledSoFar) this.syncedUpTo.set(key, { have: peerHas, upTo: after })
          }
        }
      } catch (err) {
        if (!ch.isOpen) throw err
        const code = remoteCode(err)
        const refused = code === 'ERR_NOT_FOUND' || (code !== undefined && PERMANENT_REFUSALS.has(code))
        if (!refused) complete = false
        this.c.log.info('sync of one conversation skipped', { peer, conv, err: toParleyError(err).message, retry: !refused })
      }
    }
    return complete
  }

  /** Sends in windows; each ack (after the peer's durable write) marks the message delivered. Returns how many were settled (acked or refused for good). */
  private async deliverAll (peer: string, ch: RpcChannel, envs: Envelope[]): Promise<number> {
    let settled = 0
    await inWindows(envs, this.init.sendWindow, async env => {
      try {
        parseDeliverResult(await ch.call('deliver', env))
        return env.id
      } catch (err) {
        // a refusal that no retry can change must not block everything queued behind it
        const code = remoteCode(err)
        // the peer does not know the group yet: skip it for now, without blocking what follows
        if (code === 'ERR_UNKNOWN_GROUP') return null
        if (code === undefined || !PERMANENT_REFUSALS.has(code)) throw err
        this.c.log.warn('recipient refused a message for good', { peer, id: env.id, code })
        const failed = await this.c.store.markFailed(env.id, peer, code)
        if (failed !== undefined) this.emit('messageStateChanged', failed)
        settled++
        return null
      }
    }, async (ids) => {
      settled += ids.length
      for (const m of await this.c.store.markDelivered(ids, peer)) this.emit('messageStateChanged', m)
    })
    return settled
  }

  private retrying = false

  private async retryAll (): Promise<void> {
    if (this.retrying) return
    this.retrying = true
    try {
      const now = Date.now()
      const unreachable: string[] = []
      const waitedFor = new Set(await this.c.store.outboxPeers())
      for (const [peer, s] of this.peers) {
        if (this.c.host.isConnected(peer)) {
          // a connected peer whose sync did not finish (a timeout, a flap) is synced again, outbox or not
          if (s.needSync && !s.pushing) this.schedulePush(peer)
        } else if (!waitedFor.has(peer) && !s.pushing && s.opening === undefined) {
          // gone and owed nothing: forget its state (it is made afresh when it connects)
          this.peers.delete(peer)
          this.safetyCache.delete(peer)
        }
      }
      for (const peer of waitedFor) {
        if (this.c.host.isConnected(peer)) { this.schedulePush(peer); continue }
        unreachable.push(peer)
        const s = this.state(peer)
        if (now < s.nextDialAt) continue
        s.nextDialAt = now + s.dialBackoffMs
        s.dialBackoffMs = Math.min(s.dialBackoffMs * 2, this.init.maxRedialBackoffMs)
        this.c.host.dial(peer).catch(() => {})
      }
      this.deposits.run(unreachable, now)
    } catch (err) {
      this.c.log.warn('retry pass failed', { err: toParleyError(err).message })
    } finally {
      this.retrying = false
    }
  }

  /**
   * An envelope from the relay's mailbox: same checks as a direct delivery.
   * Resolves once checked; `durable` settles after the write.
   */
  async acceptMail (envelope: Envelope, from: string): Promise<{ durable: Promise<'stored' | 'duplicate'> }> {
    const r = await this.receive(from, envelope)
    const durable = r instanceof Later ? r.promise.then(v => (v as { status: 'stored' | 'duplicate' }).status) : Promise.resolve(r.status)
    durable.catch(() => {})
    return { durable }
  }

  private async onRequest (remote: string, method: RpcMethod, body: unknown): Promise<unknown> {
    switch (method) {
      case 'deliver': return await this.receive(remote, parseEnvelope(body))
      case 'getHave': {
        const { conv } = parseHaveRequest(body)
        // a group this device has not heard of yet: it has nothing of it (the caller then sends everything)
        if (isGroupConv(conv) && this.groups.get(conv) === null) return {}
        if (!this.inConversation(conv, remote) || !this.inConversation(conv, this.peerId)) throw new ParleyError('ERR_NOT_FOUND', 'no such conversation')
        return await this.c.store.haveVector(conv)
      }
      case 'getProfile': return this.profile
      case 'announceProfile': await this.acceptProfile(remote, body); return {}
      case 'receipt': {
        const { conv, ids } = parseReceipt(body)
        if (!this.inConversation(conv, remote)) throw new ParleyError('ERR_NOT_FOUND', 'no such conversation')
        const mine = []
        for (const id of ids) {
          const m = await this.c.store.getMessage(id)
          if (m?.conv === conv && m.outgoing) mine.push(id)
        }
        for (const m of await this.c.store.markRead(mine, remote)) this.emit('messageStateChanged', m)
        return {}
      }
      case 'typing': {
        const { conv } = parseTyping(body)
        if (!this.inConversation(conv, remote) || !this.inConversation(conv, this.peerId)) throw new ParleyError('ERR_NOT_FOUND', 'no such conversation')
        this.emit('peerTyping', { peerId: remote, conv })
        return {}
      }
      default: throw new ParleyError('ERR_NOT_FOUND', `peers do not answer ${method}`)
    }
  }

  /**
   * Verifies and decrypts now, in arrival order; answers (with a Later) once
   * the message is durably stored, so the ack never precedes the write.
   */
  private async receive (remote: string, env: Envelope): Promise<Later | { status: 'duplicate' }> {
    // group envelopes, from every channel and the mailbox, are judged one at a time, each after every
    // group op received before it is stored and folded in: the turn is taken before anything is awaited
    let release: (() => void) | undefined
    if (isGroupConv(env.conv)) {
      const previous = this.groupTurn
      this.groupTurn = new Promise<void>(resolve => { release = resolve })
      await previous
    }
    try {
      let groupCheck: ((body: Body) => void) | undefined
      if (isGroupConv(env.conv)) {
        // any member may forward (sync); the author's signature is what counts. Membership is judged at the
        // message's HLC against the folded ops, so the verdict does not depend on arrival order.
        const g = this.groups.get(env.conv)
        // an op still on its way (the group's start, an add, a re-add) may change the verdict: "not yet"
        // (ERR_UNKNOWN_GROUP, retried); refused for good only when no later op can help
        const verdict = (op?: GroupOp): void => {
          const v = groupVerdict(g, env.author, env.hlc, op)
          if (v === 'later') throw new ParleyError('ERR_UNKNOWN_GROUP', 'this device does not know the group, or the author as a member at that time, yet')
          if (v === 'never') throw new ParleyError('ERR_NOT_A_MEMBER', op === undefined ? 'the author was not a member of the group at that time' : 'the author may not change this group')
        }
        if (env.kind === 'text') verdict()
        else {
          groupCheck = (body) => {
            if (body.op === undefined) throw new ParleyError('ERR_INVALID_ENVELOPE', 'a groupOp envelope without an op')
            verdict(body.op)
          }
        }
      } else {
        const members = conversationMembers(env.conv)
        if (!members.includes(this.peerId)) throw new ParleyError('ERR_NOT_A_RECIPIENT', 'not a member of this conversation')
        if (!members.includes(env.author)) throw new ParleyError('ERR_INVALID_ENVELOPE', 'author is not a member of the conversation')
        if (!members.includes(remote)) throw new ParleyError('ERR_INVALID_ENVELOPE', 'sender is not a member of the conversation')
      }
      const same = await this.c.store.getMessage(env.id)
      if (same !== undefined) {
        if (same.author === env.author && same.conv === env.conv && same.seq === env.seq) return { status: 'duplicate' }
        throw new ParleyError('ERR_ID_CONFLICT', 'another message already has this id here')
      }
      const body = openEnvelope(this.c.identity, env)
      groupCheck?.(body)
      this.c.clock.observe(env.hlc)
      const outgoing = env.author === this.peerId
      const msg: StoredMessage = {
        id: env.id, conv: env.conv, author: env.author, seq: env.seq, hlc: env.hlc, text: body.text,
        ...(body.op !== undefined ? { op: body.op } : {}),
        outgoing, state: outgoing ? 'delivered' : 'received', storedAt: Date.now(), envelope: env
      }
      const stored = this.c.store.storeIncoming(msg).then((status) => {
        if (status === 'conflict') throw new ParleyError('ERR_SEQ_CONFLICT', `another message of this author already has sequence number ${msg.seq} here`)
        if (status === 'id-conflict') throw new ParleyError('ERR_ID_CONFLICT', 'another message already has this id here')
        if (status === 'stored') { this.applyOp(msg); this.emit('messageStored', msg) }
        return { status }
      })
      // an op keeps the turn until it is folded in (or failed); text gives it up now
      if (msg.op !== undefined && release !== undefined) {
        const done = release
        release = undefined
        void stored.then(done, done)
      }
      return new Later(stored)
    } finally {
      release?.()
    }
  }
}
