/**
 * The Messenger: builds the messaging parts from one components object (as
 * js-libp2p's connection manager builds its dial queue and pruner), wires the
 * host's events to them, and keeps what is its own: start / stop, send,
 * history, waiting for a message state, and the events.
 *
 *   peer-channels.ts  one lazy RPC channel per peer
 *   push-loop.ts      per-peer delivery loop, retry pass, dial backoff, deposits (deposits.ts)
 *   delivery.ts       envelopes to a peer in windows, acks and refusals
 *   sync.ts           have-vector sync, `getHave`
 *   receive.ts        the receive pipeline (group turn, checks, durable write), mail from the relay
 *   peers.ts          presence, profiles and names, safety numbers
 *   receipts.ts       read receipts and typing
 *   group-service.ts  group commands and the fold of their ops
 */
import { DEFAULT_NAME, STATE_RANK } from '../api/contract.js'
import { setMaxListeners } from 'node:events'
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { newMessageId } from '../../../core/crypto/envelope.js'
import {
  MAX_RECIPIENTS, MAX_TEXT_CHARS, bodyFields, conversationMembers, dmConversationId, isGroupConv,
  type Body, type EnvelopeKind, type MessageChange, type PresenceStatus, type Profile, type Quote
} from '../../../core/protocol/envelope.js'
import { textLength } from '../../../core/protocol/limits.js'
import type { PeerRpcMethod } from '../../../core/protocol/peer-rpc.js'
import type { FileManifest } from '../../../core/protocol/file-manifest.js'
import { PEER_ID } from '../../../core/protocol/validate.js'
import type { RpcChannelInit } from '../../../core/rpc/channel.js'
import type { AbortOptions } from '../../../core/util/abort.js'
import { TypedEventEmitter } from '../../../core/util/events.js'
import { compareHlc } from '../clock/hlc.js'
import type { HistoryQuery, MessageState, StoredMessage } from '../store/types.js'
import { Deposits } from './deposits.js'
import { Delivery } from './delivery.js'
import { GroupService } from './group-service.js'
import type { GroupState } from './groups.js'
import { PeerChannels } from './peer-channels.js'
import { Peers } from './peers.js'
import { PushLoop } from './push-loop.js'
import { ReceivePipeline } from './receive.js'
import { Receipts } from './receipts.js'
import { applyNotices } from './fed-notices.js'
import type { Notice } from '../../../core/protocol/fed-notice.js'
import type { AcceptMail, RelayState } from './relay-client.js'
import { peerOfAddr, relayAddrs } from '../../../core/keys.js'
import { Sync } from './sync.js'
import { SlotNotices } from './slot-notices.js'
import { answered } from '../../../core/rpc/channel.js'
import type { Envelope } from '../../../core/protocol/envelope.js'
import { Reconciler } from './reconcile.js'
import { Accounts } from './accounts.js'
import { Linking } from './linking.js'
import { MAX_HOME_RELAYS, type AccountState } from '../../../core/protocol/account.js'
import { outboxPages } from '../store/pages.js'
import type { MessagingComponents, MessengerComponents, MessengerEvents, PeerRpcHandlers, PeerView } from './types.js'

/** addresses per home relay in a `home` op, at most (parseHome in core/protocol/account.ts) */
const MAX_HOME_ADDRS = 8

export type { MessengerComponents, MessengerEvents, PeerView } from './types.js'
export { DEFAULT_NAME } from './peers.js'

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
  /** after a clean start, sends in a group are held until every member answered, at most this long (reconcile.ts). @default 5000 */
  reconcileWaitMs?: number
  /** after store damage, sends are held until the conversation's peers answered, at most this long. @default 60000 */
  damagedReconcileWaitMs?: number
  /** `parley link CODE`: how long the new device keeps dialling the other one while discovery runs. @default 10000 */
  linkDialWaitMs?: number
}

export const DEFAULT_RETRY_INTERVAL_MS = 2000
export const DEFAULT_MAX_REDIAL_BACKOFF_MS = 30_000
export const DEFAULT_SEND_WINDOW = 32
export const DEFAULT_DEPOSIT_AFTER_MS = 1000
/** how long a stop waits for queued messages to reach the relay (flushDeposits) */
export const DEFAULT_FLUSH_DEPOSITS_MS = 3000

/** `reply`: the message answered (quoted); `change`: an edit or recall of one of my messages (see api/changes.ts) */
/** `file`: the manifest of a file message (node/src/files/) */
export interface SendOptions extends AbortOptions { reply?: Quote, change?: MessageChange, file?: FileManifest }

export class Messenger extends TypedEventEmitter<MessengerEvents> {
  readonly peerId: string
  private readonly c: MessengerComponents
  private readonly channels: PeerChannels
  private readonly groups: GroupService
  private readonly deposits: Deposits
  private readonly pushLoop: PushLoop
  private readonly receiver: ReceivePipeline
  private readonly slotNotices: SlotNotices
  private readonly peers: Peers
  private readonly receipts: Receipts
  private readonly reconciler: Reconciler
  readonly accounts: Accounts
  readonly linking: Linking
  /** every peer RPC method, answered by the part it belongs to */
  private readonly handlers: PeerRpcHandlers
  private running = false

  constructor (components: MessengerComponents, init: MessengerInit = {}) {
    super()
    // one listener per API client and per waitForState call is expected
    setMaxListeners(Infinity, this)
    for (const k of ['store', 'host', 'identity', 'clock', 'log'] as const) {
      if (components[k] == null) throw new ParleyError('ERR_INVALID_ARGUMENT', `Messenger needs components.${k}`)
    }
    this.c = components
    this.peerId = components.identity.peerId
    const sendWindow = init.sendWindow ?? DEFAULT_SEND_WINDOW
    const accounts = new Accounts(components)
    this.accounts = accounts
    components.relay?.useAccount(() => accounts.ownRecord())
    const c: MessagingComponents = { ...components, events: this, accounts }
    const self = this.peerId
    this.channels = new PeerChannels(c, { ...init, serve: this.answer })
    this.peers = new Peers({ ...c, channels: this.channels, accountSeen: (a) => { void this.linking.seen(a) } }, init)
    this.linking = new Linking({ ...c, channels: this.channels, joined: async (s) => { await this.joined(s) } }, { dialWaitMs: init.linkDialWaitMs })
    this.groups = new GroupService({
      ...c,
      // our account: it changes once, when this device joins an account (linking)
      get self () { return accounts.account },
      accountOf: (d) => accounts.accountOf(d),
      accountOfAccepted: (d) => accounts.accountOfAccepted(d),
      devicesOf: (a) => accounts.devicesOf(a),
      selfName: () => this.peers.name,
      send: async (conv, recipients, body, kind) => await this.append(conv, recipients, body, kind),
      syncWith: (peer) => { this.pushLoop.requestSync(peer) },
      isConnected: (peer) => this.c.host.isConnected(peer)
    })
    this.reconciler = new Reconciler({
      ...c,
      // group members are accounts (issue 11); a device's answer counts for its account
      members: (conv) => this.groups.get(conv)?.members.filter(m => m !== accounts.account),
      accountOf: (device) => accounts.accountOf(device) ?? device,
      seal: (input) => accounts.seal(input),
      released: (m) => { this.released(m) },
      // a moved message goes again to every recipient device but our own revoked ones
      sendable: (device) => device !== self && accounts.accountOf(device) !== null
    }, { startWaitMs: init.reconcileWaitMs, damagedWaitMs: init.damagedReconcileWaitMs })
    const delivery = new Delivery({ ...c, seqConflict: async (peer, ch, env) => await this.reconciler.seqConflict(peer, ch, env) }, { sendWindow })
    const sync = new Sync({
      ...c,
      self,
      account: () => accounts.account,
      groups: this.groups,
      delivery,
      reconciler: this.reconciler,
      released: (m) => { this.released(m) },
      requestSync: (p) => { this.pushLoop.requestSync(p) }
    })
    this.deposits = new Deposits({ ...c, changed: (m) => { this.emit('messageStateChanged', m) } }, {
      sendWindow,
      depositAfterMs: init.depositAfterMs ?? DEFAULT_DEPOSIT_AFTER_MS
    })
    this.pushLoop = new PushLoop({
      ...c,
      channels: this.channels,
      sync,
      delivery,
      deposits: this.deposits,
      forget: (peer) => { this.peers.forget(peer) }
    }, {
      retryIntervalMs: init.retryIntervalMs ?? DEFAULT_RETRY_INTERVAL_MS,
      maxRedialBackoffMs: init.maxRedialBackoffMs ?? DEFAULT_MAX_REDIAL_BACKOFF_MS
    })
    this.receiver = new ReceivePipeline({ ...c, groups: this.groups })
    this.slotNotices = new SlotNotices({
      ...c,
      reconciler: this.reconciler,
      receive: async (from, env) => await answered(await this.receiver.receive(from, env, 'mailbox')).then(v => v.status),
      redeposit: async (peer, envs) => { for (const e of envs) await this.c.relay?.deposit([peer], e) }
    })
    this.receipts = new Receipts({ ...c, get self () { return accounts.account }, channels: this.channels, groups: this.groups })
    this.handlers = { ...this.receiver.handlers, ...sync.handlers, ...this.peers.handlers, ...this.receipts.handlers, ...this.linking.handlers }
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    const { store, host, clock } = this.c
    await this.accounts.load()
    this.accounts.onChange((s) => { this.accountChanged(s.account, s.revoked) })
    await this.linking.start()
    this.c.relay?.addEventListener('relayChanged', this.onRelayChanged)
    for (const conv of await store.listConversations()) clock.observe(conv.lastHlc)
    await this.reconciler.start()
    await this.groups.load()
    await this.peers.loadProfile()
    await this.channels.start()
    host.addEventListener('peerConnected', this.onConnected)
    host.addEventListener('peerDisconnected', this.onDisconnected)
    host.addEventListener('presenceChanged', this.onPresence)
    host.addEventListener('peerDiscovered', this.onDiscovered)
    await this.preferRecent()
    // the retry passes start only once the clock, groups, profile and handler are in place
    this.pushLoop.start()
    for (const p of host.connectedPeers()) this.peerConnected(p)
    for (const p of host.onlinePeers()) {
      this.presenceChanged(p, true)
      // records heard before we listened: their profiles too
      const advert = host.advertOf(p)
      if (advert !== undefined && !this.peers.isRelay(p)) this.peers.discovered(p, advert)
    }
  }

  /** The peers of the most recent direct conversations stay connected while present (the host bounds how many). */
  private async preferRecent (): Promise<void> {
    const convs = (await this.c.store.listConversations()).filter(c => !isGroupConv(c.conv)).sort((a, b) => compareHlc(b.lastHlc, a.lastHlc))
    const me = this.accounts.account
    const others = convs.map(c => conversationMembers(c.conv).find(m => m !== me)).filter((p): p is string => p !== undefined)
    this.c.host.setPreferred(others.flatMap(a => this.accounts.devicesOf(a)))
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.pushLoop.stop()
    this.reconciler.stop()
    this.linking.stop()
    this.c.relay?.removeEventListener('relayChanged', this.onRelayChanged)
    this.c.host.removeEventListener('peerConnected', this.onConnected)
    this.c.host.removeEventListener('peerDisconnected', this.onDisconnected)
    this.c.host.removeEventListener('presenceChanged', this.onPresence)
    this.c.host.removeEventListener('peerDiscovered', this.onDiscovered)
    this.peers.stop()
    await this.channels.stop()
  }

  /**
   * Before stopping (ParleyNode calls it while the relay client is still up): messages still queued
   * for peers we are not connected to go to the relay's mailbox now, without the deposit wait, so a
   * message sent just before the app is closed reaches an offline colleague before we return. At most
   * `timeoutMs`; never rejects.
   */
  async flushDeposits (timeoutMs = DEFAULT_FLUSH_DEPOSITS_MS): Promise<void> {
    if (!this.running || this.c.relay?.canDeposit !== true) return
    try {
      const peers = (await this.c.store.outboxPeers()).filter(p => p !== this.peerId && !this.c.host.isConnected(p))
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<void>(resolve => { timer = setTimeout(resolve, timeoutMs) })
      await Promise.race([this.deposits.flush(peers, Date.now()), timeout]).finally(() => { clearTimeout(timer) })
    } catch (err) {
      this.c.log.info('queued messages not deposited at stop', { err: toParleyError(err).message })
    }
  }

  get name (): string { return this.peers.name }
  /** after store damage: our sequence numbers are still being checked with some conversation's peers (reconcile.ts) */
  get reconciling (): boolean { return this.reconciler.damaged }
  async setName (name: string): Promise<Profile> { return await this.peers.setName(name) }
  /** ours as peers see it: active, away (idle) or do not disturb */
  get presenceStatus (): PresenceStatus { return this.peers.presenceStatus }
  setPresenceStatus (status: PresenceStatus): void { this.peers.setStatus(status) }

  /**
   * Stores the message durably (state `queued`) and starts delivering it.
   * `to` is a peer ID (direct conversation) or a group conversation id (`g:...`).
   */
  async sendMessage (to: string, text: string, options: SendOptions = {}): Promise<StoredMessage> {
    const recall = options.change?.type === 'recall'
    if (typeof text !== 'string' || (text.length === 0 && !recall)) throw new ParleyError('ERR_INVALID_ARGUMENT', 'message text must not be empty')
    if (recall && text !== '') throw new ParleyError('ERR_INVALID_ARGUMENT', 'a recall has no text')
    if (textLength(text) > MAX_TEXT_CHARS) throw new ParleyError('ERR_INVALID_ARGUMENT', `message text is longer than ${MAX_TEXT_CHARS} characters`)
    // a reply or a change (checked by the caller against the store) travels inside the signed body
    const body: Body = { text, ...bodyFields({ text, reply: options.reply, change: options.change, file: options.file }) }
    const me = this.accounts.account
    if (typeof to === 'string' && isGroupConv(to)) {
      const g = this.groups.requireMember(to)
      return await this.append(to, g.members.filter(m => m !== me), body, 'text', options)
    }
    if (typeof to !== 'string' || !PEER_ID.test(to)) throw new ParleyError('ERR_INVALID_ARGUMENT', 'recipient must be a peer ID or a group id')
    // a device of an account names the account: one conversation per person
    const account = this.accounts.requireAccountOf(to)
    if (account === me) throw new ParleyError('ERR_INVALID_ARGUMENT', 'cannot send a message to yourself')
    return await this.append(dmConversationId(me, account), [account], body, 'text', options)
  }

  /**
   * Seals to every current device of every recipient account and of our own
   * account, stores durably with one outbox entry per device, and starts
   * delivery. `recipients` are accounts.
   */
  private async append (conv: string, recipients: string[], body: Body, kind: EnvelopeKind, options: AbortOptions = {}): Promise<StoredMessage> {
    const recipientAccounts: Record<string, string> = {}
    for (const a of recipients) for (const d of this.accounts.devicesOf(a)) if (d !== this.peerId) recipientAccounts[d] = a
    // our other devices get it too (our side of the conversation on every device); they are no recipients
    const own = this.accounts.devicesOf(this.accounts.account).filter(d => d !== this.peerId && recipientAccounts[d] === undefined)
    const devices = [...Object.keys(recipientAccounts), ...own]
    // an envelope carries one key per device, ours included: past the bound every receiver would refuse it (issue 18)
    if (devices.length + 1 > MAX_RECIPIENTS) {
      const n = devices.length + 1
      throw new ParleyError('ERR_INVALID_ARGUMENT', `this conversation reaches ${n} devices; a message reaches at most ${MAX_RECIPIENTS} (MAX_RECIPIENTS)`)
    }
    const multi = own.length > 0 || Object.keys(recipientAccounts).some(d => d !== recipientAccounts[d])
    const msg = await this.c.store.appendOutgoing(conv, this.peerId, devices, (seq) => {
      const id = newMessageId()
      const hlc = this.c.clock.tick()
      // sealed to our own device too: peers can give it back after our store lost it
      const envelope = this.accounts.seal({ id, conv, seq, hlc, recipients: [...devices, this.peerId], body, kind })
      return {
        id,
        conv,
        author: this.peerId,
        seq,
        hlc,
        text: body.text,
        ...bodyFields(body),
        outgoing: true,
        state: recipients.length === 0 ? 'delivered' : 'queued',
        storedAt: Date.now(),
        envelope,
        // delivered once one device of each recipient account has it (store: deliveredIfSettled)
        ...(multi ? { recipientAccounts } : {}),
        // after store damage, held until a peer confirmed our numbers here (reconcile.ts)
        ...(recipients.length > 0 && this.reconciler.holds(conv) ? { held: true } : {})
      }
    }, options)
    if (msg.op !== undefined) this.groups.applyOp(msg)
    this.emit('messageStored', msg)
    for (const r of devices) {
      this.deposits.poke(r)
      this.pushLoop.schedule(r)
    }
    // a device of another office is never reachable directly: its copy goes to our relay now (federation)
    const remote = devices.filter(d => this.c.relay?.officeOf(d) !== undefined && !this.c.host.isConnected(d))
    if (remote.length > 0) this.deposits.now(remote)
    return msg
  }

  /**
   * An account record changed: nothing more goes to its revoked devices (what
   * waited for them is taken out of their outboxes; a message then counts as
   * delivered by the account's other devices), and the UI hears of it.
   */
  private accountChanged (account: string, revoked: string[]): void {
    this.emit('accountUpdated', { account })
    // our own record changed (a device added or revoked): everyone connected learns it now
    if (account === this.accounts.account) { this.peers.republish(); this.c.relay?.accountChanged() }
    if (revoked.length === 0) return
    void (async () => {
      for (const device of revoked) {
        for await (const page of outboxPages(this.c.store, device, 1000)) {
          for (const m of page) {
            const changed = await this.c.store.markFailed(m.id, device, 'ERR_NOT_A_MEMBER')
            if (changed !== undefined) this.emit('messageStateChanged', changed)
          }
        }
      }
    })().catch((err) => { this.c.log.warn('could not clear the outbox of a revoked device', { err: toParleyError(err).message }) })
  }

  /** A held message was released by reconciliation (with its final seq): deliver it now. */
  private released (m: StoredMessage): void {
    this.emit('messageStateChanged', m)
    for (const k of m.envelope.keys) {
      if (k.to === this.peerId) continue
      this.deposits.poke(k.to)
      this.pushLoop.schedule(k.to)
    }
  }

  /**
   * The relay that admitted us is our account's home (PROTOCOL.md, "Addresses"): the first device signs
   * a `home` op when it changes, so peers elsewhere (federation) know where our devices' mail waits.
   * A relay of several instances (issue 14) is named with every configured instance, in the configured
   * order: a failover changes nothing to sign, and a colleague can reach us through any of their circuits.
   */
  private readonly onRelayChanged = (evt: CustomEvent<RelayState>): void => {
    const st = evt.detail
    if (!this.accounts.holdsAccountKey || st.admitted !== true || st.peerId === null || st.addr === null) return
    const byRelay = new Map<string, string[]>()
    for (const a of relayAddrs(st.addr)) {
      const relay = peerOfAddr(a)
      const addrs = byRelay.get(relay) ?? []
      if (addrs.length < MAX_HOME_ADDRS) addrs.push(a)
      byRelay.set(relay, addrs)
    }
    const home = [...byRelay].slice(0, MAX_HOME_RELAYS).map(([relay, addrs]) => ({ relay, addrs }))
    if (JSON.stringify(this.accounts.ownState().home) === JSON.stringify(home)) return
    void this.accounts.setHome(home).catch((err) => { this.c.log.warn('home relay not recorded', { err: toParleyError(err).message }) })
  }

  /** This device joined an account: peers learn our certificate chain, our other devices sync with us. */
  private async joined (s: AccountState): Promise<void> {
    // a new device without a name of its own takes the account's (its first device's signed profile), before
    // the link is answered: the first-run screen then shows the person's name
    try {
      // linked through the relay, the first device's profile may not have come yet: ask for it
      if ((await this.c.store.getPeer(s.account))?.profile === undefined) await this.peers.fetchProfile(s.account, { signal: AbortSignal.timeout(5000) })
      const name = (await this.c.store.getPeer(s.account))?.profile?.name
      if (name !== undefined && this.peers.name === DEFAULT_NAME) await this.peers.setName(name)
    } catch (err) { this.c.log.debug('account name not taken', { err: toParleyError(err).message }) }
    this.peers.republish()
    for (const d of s.devices) if (d !== this.peerId && this.c.host.isConnected(d)) this.pushLoop.requestSync(d)
  }

  /** our account ID (our peer ID for a one-device account) */
  get account (): string { return this.accounts.account }

  // ---- groups, peers, receipts: the parts' commands ------------------------

  group (conv: string): GroupState | null { return this.groups.get(conv) }
  listGroups (): GroupState[] { return this.groups.list() }
  async createGroup (name: string, members: string[]): Promise<GroupState> { return await this.groups.create(name, members) }
  async addMember (conv: string, member: string): Promise<GroupState> { return await this.groups.addMember(conv, member) }
  async removeMember (conv: string, member: string): Promise<GroupState> { return await this.groups.removeMember(conv, member) }
  async renameGroup (conv: string, name: string): Promise<GroupState> { return await this.groups.rename(conv, name) }
  async leaveGroup (conv: string): Promise<GroupState> { return await this.groups.leave(conv) }
  async listPeers (): Promise<PeerView[]> { return await this.peers.listPeers() }
  async setVerified (peer: string, verified: boolean): Promise<PeerView> { return await this.peers.setVerified(peer, verified) }
  async markSeen (peerOrGroup: string): Promise<number> { return await this.receipts.markSeen(peerOrGroup) }
  async sendTyping (peerOrGroup: string): Promise<boolean> { return await this.receipts.sendTyping(peerOrGroup) }

  /** An envelope from the relay's mailbox (see ReceivePipeline.acceptMail); one of ours given back with a "slot taken" notice: slot-notices.ts. */
  readonly acceptMail: AcceptMail = async (envelope, from, office) => envelope.taken !== undefined
    ? await this.slotNotices.accept(envelope, from)
    : await this.receiver.acceptMail(envelope, from, office)

  /** Mail refused for a number its author gave out twice (none: the next page of a run): what to give back to the authors (slot-notices.ts). */
  async slotTaken (refused: Envelope[]): Promise<Envelope[]> { return await this.slotNotices.noticesFor(refused) }
  /** Envelopes `slotTaken` gave that the relay did not take for now: given again on a later drain. */
  async slotNotGiven (envs: Envelope[]): Promise<void> { await this.slotNotices.notGiven(envs) }

  /** Receipts and bounces from other offices, through the relays (fed-notices.ts). */
  async applyNotices (items: Notice[]): Promise<void> { await applyNotices({ ...this.c, events: this }, items) }

  /** Resolves when message `id` reaches `state` (or a later one). */
  async waitForState (id: string, state: 'sent' | 'delivered' | 'read', options: AbortOptions = {}): Promise<StoredMessage> {
    const reached = (m: StoredMessage): boolean => STATE_RANK[m.state] >= STATE_RANK[state]
    return await new Promise<StoredMessage>((resolve, reject) => {
      const onChange = (evt: CustomEvent<StoredMessage>): void => {
        if (evt.detail.id === id && reached(evt.detail)) { cleanup(); resolve(evt.detail) }
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

  convOf (peerOrGroup: string): string { return this.groups.conversationOf(peerOrGroup) }

  /** A request of a peer, answered by the part that owns the method. */
  private readonly answer = async (remote: string, method: PeerRpcMethod, body: unknown): Promise<unknown> => {
    return await this.handlers[method](remote, body)
  }

  private peerConnected (peerId: string): void {
    if (this.peers.isRelay(peerId)) return
    this.peers.peerConnected(peerId)
    this.pushLoop.peerConnected(peerId)
  }

  private readonly onConnected = (evt: CustomEvent<{ peerId: string }>): void => { this.peerConnected(evt.detail.peerId) }

  private presenceChanged (peerId: string, online: boolean): void {
    if (this.peers.isRelay(peerId)) return
    this.peers.presenceChanged(peerId, online)
    if (online) this.pushLoop.present(peerId)
  }

  private readonly onPresence = (evt: CustomEvent<{ peerId: string, online: boolean }>): void => { this.presenceChanged(evt.detail.peerId, evt.detail.online) }

  private readonly onDiscovered = (evt: CustomEvent<{ peerId: string, advert?: string }>): void => {
    const { peerId, advert } = evt.detail
    if (advert !== undefined && !this.peers.isRelay(peerId)) this.peers.discovered(peerId, advert)
  }

  private readonly onDisconnected = (evt: CustomEvent<{ peerId: string }>): void => {
    const { peerId } = evt.detail
    if (this.peers.isRelay(peerId)) return
    this.channels.reset(peerId)
    this.peers.peerDisconnected(peerId)
  }
}
