/**
 * The UI's event store: everything the views show, loaded from the API and kept
 * current by its events. Views read `store.state` and call the actions; every
 * change notifies the subscribers (the App re-renders).
 */
import { DEFAULT_CHANGE_WINDOWS, STATE_RANK, foldChanges, historyCursor } from '../../../node/src/api/contract.js'
import type {
  AccountView, ApiEvent, ChangeWindows, ConversationView, GroupView, IdentityView, MessageView, PeerView, RelayState, SearchHit, UiPrefs, TransferView
} from '../../../node/src/api/contract.js'
import { ApiError, type ApiClient } from './api.js'
import { isGroup } from './util.js'

/** first page of a chat; scrolling up asks for the PAGE messages before the oldest one shown each time */
export const PAGE = 100
/** a jump to an old message (search hit) pages back with pages growing up to this; opening a chat pages back until its first unread message, up to this many */
const MAX_JUMP_PAGE = 2000
const TYPING_SHOWN_MS = 4000
const TYPING_SENT_EVERY_MS = 2500
/** no key, pointer or focus for this long: the user is away (idle), and peers see it. @default 5 minutes */
export const DEFAULT_IDLE_MS = 5 * 60_000

/** our own node: reachable, not (yet) reachable, or reachable again after a break */
export type Link = 'connecting' | 'up' | 'down'

export interface ConvSummary { peer: string, unread: number, last: MessageView | null, lastAt: number }

export interface State {
  me: IdentityView | null
  /** our account and its devices (issue 11): `me.peerId` is this device only */
  account: AccountView | null
  link: Link
  peers: Map<string, PeerView>
  groups: Map<string, GroupView>
  convs: Map<string, ConvSummary>
  relay: RelayState | null
  prefs: UiPrefs
  /** the open conversation: a peer ID or a group id */
  current: string | null
  messages: MessageView[]
  /** the open chat may have messages before the first one loaded */
  hasOlder: boolean
  loadingOlder: boolean
  /** the first message that was unread when the chat was opened (the "new messages" divider) */
  unreadFrom: string | null
  /** a message to scroll to and mark (search result) */
  focusId: string | null
  /** the in-chat filter */
  filter: string
  typing: string | null
  /** a failure to show in the open chat */
  error: ApiError | null
  searchText: string
  searchHits: SearchHit[] | null
  /** the composer answers or edits this message */
  composing: { mode: 'reply' | 'edit', message: MessageView } | null
  changeWindows: ChangeWindows
  /** file transfers by message id (files, issue 13) */
  transfers: Map<string, TransferView>
}

type Listener = () => void

/** our account ID (this device's peer ID until the account is known) */
export const myAccount = (s: State): string => s.account?.account ?? s.me?.peerId ?? ''

/** the person an ID stands for: an account ID as it is, a device ID as its account (ours or a colleague's), else the ID itself */
export function accountOf (s: State, id: string): string {
  if (id === s.me?.peerId || id === s.account?.account || s.account?.devices.some(d => d.peerId === id) === true) return myAccount(s)
  if (s.peers.has(id)) return id
  for (const p of s.peers.values()) if (p.devices?.some(d => d.peerId === id) === true) return p.peerId
  return id
}

/** the ID (account or device) is us */
export const isMe = (s: State, id: string): boolean => id !== '' && accountOf(s, id) === myAccount(s)

/**
 * Where the "new messages" divider goes, given the chat's `unread` count: before the oldest still unseen (`received`)
 * one of the `unread` newest incoming messages (the count also holds edits, recalls and group events, which show as no
 * message of their own, so the newest `unread` may reach back into seen ones). `complete`: the first unread one is
 * among `messages` (`unread` incoming ones are in, or one already seen is).
 */
export function firstUnread (messages: readonly MessageView[], unread: number): { id: string | null, complete: boolean } {
  const incoming = messages.filter(m => !m.outgoing && m.op === undefined)
  const newest = unread > 0 ? incoming.slice(Math.max(0, incoming.length - unread)) : []
  const id = newest.find(m => m.state === 'received')?.id ?? null
  return { id, complete: incoming.length >= unread || incoming.some(m => m.state === 'seen') }
}

/** display order: HLC, then id */
const order = (a: MessageView, b: MessageView): number => a.hlc.w - b.hlc.w || a.hlc.c - b.hlc.c || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

export class Store {
  state: State = {
    me: null,
    account: null,
    link: 'connecting',
    peers: new Map(),
    groups: new Map(),
    convs: new Map(),
    relay: null,
    prefs: { locale: 'auto', theme: 'auto', dnd: false },
    current: null,
    messages: [],
    hasOlder: false,
    loadingOlder: false,
    unreadFrom: null,
    focusId: null,
    filter: '',
    typing: null,
    error: null,
    searchText: '',
    searchHits: null,
    composing: null,
    changeWindows: DEFAULT_CHANGE_WINDOWS,
    transfers: new Map()
  }

  readonly drafts = new Map<string, string>()
  private readonly listeners = new Set<Listener>()
  /** the edits and recalls seen in the open chat: they are folded into the older pages loaded later */
  private changes = new Map<string, MessageView>()
  private typingTimer: ReturnType<typeof setTimeout> | undefined
  private lastTypingSent = 0
  private stopEvents: (() => void) | null = null
  private away = false
  private idleTimer: ReturnType<typeof setTimeout> | undefined
  /** called for an incoming message while the window is hidden (notifications) */
  onIncoming: (m: MessageView) => void = () => {}

  constructor (readonly api: ApiClient) {}

  subscribe (fn: Listener): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  private set (patch: Partial<State>): void {
    this.state = { ...this.state, ...patch }
    for (const fn of this.listeners) fn()
  }

  /** Loads everything and starts following events. */
  async start (): Promise<void> {
    const [me, settings, account] = await Promise.all([this.api.identity(), this.api.settings(), this.api.account().catch(() => null)])
    this.set({ me, account, relay: settings.relay, prefs: settings.ui, changeWindows: settings.changeWindows ?? DEFAULT_CHANGE_WINDOWS })
    await this.loadLists()
    await this.loadTransfers()
    this.stopEvents = this.api.events((e) => { this.apply(e) }, (up, reconnected) => { void this.onLink(up, reconnected) })
  }

  stop (): void { this.stopEvents?.(); this.stopEvents = null; clearTimeout(this.idleTimer) }

  /** Follows the user's input: after `idleMs` without any, away; back at the next key, pointer or focus. */
  watchIdle (idleMs = DEFAULT_IDLE_MS): void {
    const idle = (): void => { this.away = true; void this.api.setAway(true).catch(() => {}) }
    const active = (): void => {
      clearTimeout(this.idleTimer)
      this.idleTimer = setTimeout(idle, idleMs)
      if (this.away) { this.away = false; void this.api.setAway(false).catch(() => {}) }
    }
    for (const type of ['keydown', 'pointerdown', 'pointermove', 'wheel', 'focus']) window.addEventListener(type, active, { passive: true, capture: true })
    active()
  }

  private async onLink (up: boolean, reconnected: boolean): Promise<void> {
    if (!up) { this.set({ link: 'down' }); return }
    // after a break, whatever happened meanwhile is caught up by reloading; the old error is stale
    if (reconnected) await this.resync().catch(() => {})
    // a restarted node does not know we are away
    if (reconnected && this.away) void this.api.setAway(true).catch(() => {})
    this.set({ link: 'up', error: this.state.error?.code === 'ERR_UNREACHABLE' ? null : this.state.error })
  }

  async resync (): Promise<void> {
    const [settings, account] = await Promise.all([this.api.settings(), this.api.account().catch(() => this.state.account)])
    this.set({ relay: settings.relay, prefs: settings.ui, account })
    await this.loadLists()
    await this.loadTransfers()
    await this.loadMessages()
    await this.markSeen()
  }

  async loadLists (): Promise<void> {
    const [peers, convs, groups] = await Promise.all([this.api.peers(), this.api.conversations(), this.api.groups()])
    this.set({
      peers: new Map(peers.filter(p => !isMe(this.state, p.peerId)).map(p => [p.peerId, p])),
      convs: new Map(convs.map((c: ConversationView) => [c.peer, { peer: c.peer, unread: c.unread, last: c.last, lastAt: c.lastHlc.w }])),
      groups: new Map(groups.map(g => [g.id, g]))
    })
  }

  // ---- the open conversation

  async open (peer: string, focusId: string | null = null): Promise<void> {
    const s = this.state
    if (s.current !== null) this.drafts.set(s.current, this.draftOf(s.current))
    const conv = s.convs.get(peer)
    this.changes = new Map()
    this.set({ current: peer, messages: [], hasOlder: false, filter: '', typing: null, error: null, focusId, unreadFrom: null, composing: null })
    await this.loadMessages(conv?.unread ?? 0)
    await this.markSeen()
  }

  close (): void {
    const s = this.state
    if (s.current !== null) this.drafts.set(s.current, this.draftOf(s.current))
    this.set({ current: null, messages: [], focusId: null })
  }

  draftOf (peer: string): string { return this.drafts.get(peer) ?? '' }
  setDraft (peer: string, text: string): void { this.drafts.set(peer, text) }

  /** Loads the newest page of the open chat (`unread`: how many of them were new, for the divider), keeping older pages already shown. */
  async loadMessages (unread = 0): Promise<void> {
    const { current, filter } = this.state
    if (current === null) return
    const page = await this.api.history(current, { limit: PAGE, search: filter, changes: filter === '' })
    // another chat was opened, or the filter changed, while this answer was on its way: it is stale
    if (current !== this.state.current || filter !== this.state.filter) return
    const newest = this.shown(page)
    // after a break: the pages loaded before stay when they join up with the newest one (else scrolling loads them again)
    const old = this.state.messages
    const first = newest[0]
    const joins = first !== undefined && newest.length >= PAGE && old.some(m => m.id === first.id)
    const older = joins ? foldChanges([...old.filter(m => order(m, first) < 0), ...this.changes.values()]) : []
    let messages = [...older, ...newest]
    let hasOlder = joins ? this.state.hasOlder : newest.length >= PAGE
    // more unread than one page (back after a day in a busy group): page back, bounded, until the first unread one is in
    const paging = unread > 0 && hasOlder && !firstUnread(messages, unread).complete
    // (meanwhile the list shows nothing of this chat yet and has no older page to load: scrolling asks for none)
    while (paging && hasOlder && messages.length < MAX_JUMP_PAGE && !firstUnread(messages, unread).complete) {
      const page = await this.pageBefore(current, filter, messages[0] as MessageView, PAGE)
      if (page === null) return
      const have = new Set(messages.map(m => m.id))
      messages = [...page.filter(m => !have.has(m.id)), ...messages]
      hasOlder = page.length >= PAGE
    }
    // what events brought while the pages were on their way (stored after the node read them) stays, with every edit
    // and recall known now folded in: without this, a message arriving just as the chat opened was shown in the
    // list's preview but not in the chat (seen once in ui-office). Not the pages dropped above (they did not join up)
    const inPage = new Set(messages.map(m => m.id))
    const last = newest[newest.length - 1]
    const live = this.state.messages.filter(m => inPage.has(m.id) || last === undefined || order(m, last) > 0)
    const unreadFrom = unread > 0 ? firstUnread(messages, unread).id : this.state.unreadFrom
    this.set({ messages: paging ? foldChanges([...messages, ...this.changes.values()], this.authorAccount) : messages, hasOlder, unreadFrom })
    for (const m of live) this.upsert(m)
    // the message to jump to may be older than one page: page back until it is in
    const focus = this.state.focusId
    for (let limit = PAGE; focus !== null && filter === '' && this.state.hasOlder && !this.state.messages.some(m => m.id === focus);) {
      limit = Math.min(MAX_JUMP_PAGE, limit * 2)
      if (!await this.fetchOlder(limit)) return
    }
  }

  /** Scrolling up: the PAGE messages before the oldest one shown. */
  async loadOlder (): Promise<void> {
    if (!this.state.hasOlder || this.state.loadingOlder) return
    this.set({ loadingOlder: true })
    try { await this.fetchOlder(PAGE) } finally { this.set({ loadingOlder: false }) }
  }

  /** puts the `limit` messages before the oldest one shown in front of it; false when the answer came too late (another chat) */
  private async fetchOlder (limit: number): Promise<boolean> {
    const { current, filter, messages } = this.state
    const oldest = messages[0]
    if (current === null || oldest === undefined) return false
    const shown = await this.pageBefore(current, filter, oldest, limit)
    if (shown === null) return false
    const have = new Set(this.state.messages.map(m => m.id))
    this.set({ messages: [...shown.filter(m => !have.has(m.id)), ...this.state.messages], hasOlder: shown.length >= limit })
    return true
  }

  /** the `limit` messages before `oldest` in `current`, as shown; null when the answer came too late (another chat, another filter) */
  private async pageBefore (current: string, filter: string, oldest: MessageView, limit: number): Promise<MessageView[] | null> {
    const page = await this.api.history(current, { limit, search: filter, before: historyCursor(oldest), changes: filter === '' })
    if (current !== this.state.current || filter !== this.state.filter) return null
    return this.shown(page)
  }

  /** our identity and account again: after this device linked to an account its account (and name) changed */
  async refreshAccount (): Promise<void> {
    const [me, account] = await Promise.all([this.api.identity(), this.api.account()])
    this.set({ me })
    this.setAccount(account)
  }

  /** our account changed: a device just linked to it was listed as a colleague until now, and is us from now on */
  private setAccount (account: AccountView): void {
    this.set({ account })
    const peers = [...this.state.peers.values()].filter(p => !isMe(this.state, p.peerId))
    if (peers.length !== this.state.peers.size) this.set({ peers: new Map(peers.map(p => [p.peerId, p])) })
  }

  /** a message author's account: edits and recalls are the person's, from any of their devices (issue 11) */
  private readonly authorAccount = (id: string): string => accountOf(this.state, id)

  /** a page as answered (`changes=1`): its messages with every edit and recall known so far folded in */
  private shown (page: MessageView[]): MessageView[] {
    for (const m of page) if (m.change !== undefined) this.changes.set(m.id, m)
    return foldChanges([...page.filter(m => m.change === undefined), ...this.changes.values()], this.authorAccount)
  }

  async setFilter (filter: string): Promise<void> {
    this.set({ filter, focusId: null, messages: [] })
    await this.loadMessages()
  }

  async markSeen (): Promise<void> {
    const { current } = this.state
    if (current === null || document.hidden) return
    const conv = this.state.convs.get(current)
    if (conv !== undefined && conv.unread > 0) this.setConv({ ...conv, unread: 0 })
    await this.api.markSeen(current).catch(() => {})
  }

  /** Sends `text` to the open chat (as a reply or an edit while composing one); false (with `error` set) when refused. */
  async send (text: string): Promise<boolean> {
    const to = this.state.current
    if (to === null) return false
    const c = this.state.composing
    const extra = c === null ? {} : c.mode === 'reply' ? { reply: c.message.id } : { change: { type: 'edit' as const, id: c.message.id } }
    const ok = await this.post(to, text, extra)
    if (ok) { this.drafts.delete(to); this.set({ composing: null }) }
    return ok
  }

  /** Recalls (撤回) one of my messages in the open chat. */
  async recall (m: MessageView): Promise<boolean> {
    const to = this.state.current
    return to !== null && await this.post(to, '', { change: { type: 'recall', id: m.id } })
  }

  private async post (to: string, text: string, extra: Parameters<ApiClient['send']>[2]): Promise<boolean> {
    try {
      const m = await this.api.send(to, text, extra)
      this.set({ error: null })
      this.upsert(m)
      return true
    } catch (err) {
      this.set({ error: err instanceof ApiError ? err : new ApiError('ERR_INTERNAL', String(err)) })
      return false
    }
  }

  compose (mode: 'reply' | 'edit', message: MessageView): void { this.set({ composing: { mode, message } }) }
  cancelCompose (): void { if (this.state.composing !== null) this.set({ composing: null }) }
  /** jumps to a loaded message (a reply's quote) */
  jump (id: string): void { if (this.state.messages.some(m => m.id === id)) this.set({ focusId: id }) }

  typed (): void {
    const { current } = this.state
    if (current === null || Date.now() - this.lastTypingSent < TYPING_SENT_EVERY_MS) return
    this.lastTypingSent = Date.now()
    void this.api.typing(current).catch(() => {})
  }

  clearError (): void { this.set({ error: null }) }
  /** a failure of work started outside the store (a file dropped or pasted): shown like a failed send */
  showError (error: ApiError): void { this.set({ error }) }
  clearFocus (): void { if (this.state.focusId !== null) this.set({ focusId: null }) }

  // ---- search across every conversation

  async search (text: string): Promise<void> {
    this.set({ searchText: text })
    if (text.trim() === '') { this.set({ searchHits: null }); return }
    const hits = await this.api.search(text.trim())
    if (this.state.searchText === text) this.set({ searchHits: hits })
  }

  // ---- groups, peers, settings: the views call the API and hand the answer here

  putGroup (g: GroupView): void { this.set({ groups: new Map(this.state.groups).set(g.id, g) }) }
  putPeer (p: PeerView): void { this.set({ peers: new Map(this.state.peers).set(p.peerId, { ...this.state.peers.get(p.peerId), ...p }) }) }
  setMe (name: string): void { if (this.state.me !== null) this.set({ me: { ...this.state.me, name } }) }
  setRelay (relay: RelayState): void { this.set({ relay }) }
  setPrefs (prefs: UiPrefs): void { this.set({ prefs }) }

  private setConv (c: ConvSummary): void { this.set({ convs: new Map(this.state.convs).set(c.peer, c) }) }

  /** the peer ID or group id a conversation id stands for */
  peerOf (conv: string): string {
    if (isGroup(conv)) return conv
    // a dm id names two accounts (ours and theirs), ours is never the chat
    return conv.split(':').slice(1).find(p => !isMe(this.state, p)) ?? conv
  }

  private upsert (m: MessageView): void {
    const s = this.state
    // an answer or event for another chat (the user switched meanwhile), or a filtered view: not shown here
    if (this.peerOf(m.conv) !== s.current || s.filter !== '') return
    // an edit or recall is shown folded into its message (and kept for an older page that holds it)
    if (m.change !== undefined) { this.changes.set(m.id, m); this.set({ messages: foldChanges([...s.messages, m], this.authorAccount) }); return }
    const i = s.messages.findIndex(x => x.id === m.id)
    const messages = [...s.messages]
    if (i >= 0) {
      // an HTTP answer can arrive after the event that already moved the message on: never go back
      const old = messages[i] as MessageView
      // the stored message carries its original text: what an edit or recall folded into it stays
      const folded = old.recalled === true ? { text: '', recalled: true } : old.editedAt !== undefined ? { text: old.text, editedAt: old.editedAt } : {}
      if (STATE_RANK[m.state] >= STATE_RANK[old.state]) messages[i] = { ...m, ...folded }
    } else {
      messages.push(m)
      messages.sort(order)
    }
    this.set({ messages })
  }

  /** files (issue 13): every transfer, then kept current by transferChanged */
  async loadTransfers (): Promise<void> {
    const list = await this.api.transfers().catch(() => [])
    this.set({ transfers: new Map(list.map(v => [v.msgId, v])) })
  }

  apply (e: ApiEvent): void {
    switch (e.type) {
      case 'transferChanged':
        this.set({ transfers: new Map(this.state.transfers).set(e.data.msgId, e.data) })
        return
      case 'messageStored':
      case 'messageStateChanged': {
        const m = e.data
        const peer = this.peerOf(m.conv)
        if (e.type === 'messageStored') {
          const old = this.state.convs.get(peer) ?? { peer, unread: 0, last: null, lastAt: 0 }
          // the open chat counts too while the window is hidden (tray, other desktop): nobody has seen it
          const counts = !m.outgoing && m.change === undefined && (this.state.current !== peer || document.hidden)
          this.setConv({ peer, last: m, lastAt: Math.max(old.lastAt, m.hlc.w), unread: old.unread + (counts ? 1 : 0) })
          if (!m.outgoing && m.op === undefined && m.change === undefined) {
            this.onIncoming(m)
            if (peer === this.state.current) this.set({ typing: null })
          }
          const known = isGroup(peer) ? this.state.groups.has(peer) : this.state.peers.has(peer)
          if (!known) void this.loadLists().catch(() => {})
        }
        if (peer === this.state.current) {
          this.upsert(m)
          if (e.type === 'messageStored' && !m.outgoing) void this.markSeen()
        }
        return
      }
      case 'peerOnline':
      case 'peerOffline':
      case 'peerUpdated':
        if (!isMe(this.state, e.data.peerId)) this.putPeer(e.data)
        return
      case 'groupUpdated': {
        const d = e.data
        this.putGroup({ id: d.conv, name: d.name, admin: d.admin, members: d.members, member: d.members.some(x => isMe(this.state, x)) })
        return
      }
      case 'peerTyping': {
        const { current } = this.state
        const d = e.data
        const here = current !== null && (isGroup(current) ? d.conv === current : accountOf(this.state, d.peerId) === current && !isGroup(d.conv))
        if (!here) return
        this.set({ typing: d.peerId })
        clearTimeout(this.typingTimer)
        this.typingTimer = setTimeout(() => { this.set({ typing: null }) }, TYPING_SHOWN_MS)
        return
      }
      case 'accountUpdated':
        // a device of ours linked or revoked: what is "us" changed
        if (isMe(this.state, e.data.account)) void this.api.account().then(account => { this.setAccount(account) }, () => {})
        return
      case 'relayChanged':
        this.setRelay(e.data)
    }
  }

  /** every conversation to list: people and groups, newest activity first, then online, then by name */
  conversations (nameOf: (peer: string) => string): string[] {
    const s = this.state
    const all = [...s.peers.keys(), ...s.groups.keys()]
    const at = (p: string): number => s.convs.get(p)?.lastAt ?? 0
    const online = (p: string): number => s.peers.get(p)?.online === true ? 1 : 0
    return all.sort((a, b) => at(b) - at(a) || online(b) - online(a) || nameOf(a).localeCompare(nameOf(b)))
  }

  unreadTotal (): number {
    let n = 0
    for (const c of this.state.convs.values()) if (c.peer !== this.state.current || document.hidden) n += c.unread
    return n
  }
}
