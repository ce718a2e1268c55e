/**
 * The group service: group state folded from the ops (GroupBook), the admin's
 * and members' commands (create, add, remove, rename, leave), replaying the
 * stored ops at start, and failing our own sends once we were removed.
 */
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { newMessageId } from '../../../core/crypto/envelope.js'
import {
  MAX_GROUP_MEMBERS, conversationMembers, dmConversationId, isGroupConv, parseDisplayName,
  type Body, type EnvelopeKind, type Hlc
} from '../../../core/protocol/envelope.js'
import { PEER_ID } from '../../../core/protocol/validate.js'
import { displayName, normalizeName } from '../../../core/protocol/names.js'
import { compareHlc } from '../clock/hlc.js'
import { outboxPages } from '../store/pages.js'
import type { StoredMessage } from '../store/types.js'
import { GroupBook, memberAt, type GroupState } from './groups.js'
import type { MessagingComponents } from './types.js'

export interface GroupServiceComponents extends Pick<MessagingComponents, 'store' | 'log' | 'events'> {
  /** our account ID (group members are accounts; it is our peer ID for a one-device account) */
  self: string
  /** the account a device belongs to (null: revoked); by default each device is its own account */
  accountOf?: (device: string) => string | null
  /** the account of a device for an op already accepted (a revoked device: its former account); by default accountOf */
  accountOfAccepted?: (device: string) => string | null
  /** the current devices of an account; by default the account's own device */
  devicesOf?: (account: string) => string[]
  /** our display name, for the texts of our ops */
  selfName: () => string
  /** seals and stores a message of ours and starts delivering it (the Messenger's send path) */
  send: (conv: string, recipients: string[], body: Body, kind: EnvelopeKind) => Promise<StoredMessage>
  /** a member we are connected to needs a sync (it may lack what a new member can now read) */
  syncWith: (peer: string) => void
  /** is `peer` connected now? */
  isConnected: (peer: string) => boolean
}

export class GroupService {
  private readonly book: GroupBook
  private loading = false

  constructor (private readonly c: GroupServiceComponents) {
    this.book = new GroupBook(() => c.self)
  }

  get (conv: string): GroupState | null { return this.book.get(conv) }
  list (): GroupState[] { return this.book.list() }
  requireMember (conv: string): GroupState { return this.book.requireMember(conv) }
  /** groups both we and `peer` are members of */
  shared (peer: string): GroupState[] { return this.book.shared(peer) }

  accountOf (device: string): string | null { return this.c.accountOf === undefined ? device : this.c.accountOf(device) }
  devicesOf (account: string): string[] { return this.c.devicesOf === undefined ? [account] : this.c.devicesOf(account) }

  /** The conversation a peer ID or account ID (direct) or a group conversation id names. */
  conversationOf (peerOrGroup: string): string {
    if (isGroupConv(peerOrGroup)) return peerOrGroup
    const account = this.accountOf(peerOrGroup)
    if (account === null) throw new ParleyError('ERR_NOT_A_MEMBER', 'this device was removed from its account')
    return dmConversationId(this.c.self, account)
  }

  /** Is `peer` (a device or an account) allowed to see and act on `conv`? (members of a direct conversation, current group members) */
  inConversation (conv: string, peer: string): boolean {
    const account = this.accountOf(peer)
    if (account === null) return false
    if (isGroupConv(conv)) return this.book.isMember(conv, account)
    return conversationMembers(conv).includes(account)
  }

  /** Replays the stored ops of every group (at start). */
  async load (): Promise<void> {
    this.loading = true
    try {
      for (const c of await this.c.store.listConversations()) {
        if (!isGroupConv(c.conv)) continue
        for (const m of await this.c.store.history(c.conv, { limit: Number.MAX_SAFE_INTEGER })) if (m.op !== undefined) this.applyOp(m)
      }
    } finally {
      this.loading = false
    }
    for (const g of this.book.list()) this.failSendsIfRemoved(g)
  }

  /** Folds in a stored message's op (ours or a member's). */
  applyOp (m: StoredMessage): void {
    if (m.op === undefined) return
    // the author device's account made the op. Every op here was accepted (receive refuses a revoked
    // device's envelopes), so one its device wrote before it was revoked stays its account's: replaying the
    // stored ops after a revocation gives the same groups as before it (review s4 M3)
    const author = this.c.accountOfAccepted?.(m.author) ?? this.accountOf(m.author)
    if (author === null) return
    const state = this.book.apply({ id: m.id, conv: m.conv, author, hlc: m.hlc, op: m.op })
    if (state === null) return
    this.c.events.emit('groupUpdated', state)
    // new members need what they lack: sync with every member we are connected to
    for (const a of state.members) {
      for (const p of this.devicesOf(a)) if (p !== this.c.self && this.c.isConnected(p)) this.c.syncWith(p)
    }
    // removed (or left): what we wrote after that can never be accepted; fail it instead of retrying forever
    // (while the ops are replayed at start, once per group at the end, from its final state)
    if (!this.loading) this.failSendsIfRemoved(state)
  }

  /** Group members are accounts: a device's peer ID names its account (review s4 m7); a revoked device names nobody. */
  private memberAccount (m: string): string {
    if (!PEER_ID.test(m)) throw new ParleyError('ERR_INVALID_ARGUMENT', `not a peer ID: ${m}`)
    const account = this.accountOf(m)
    if (account === null) throw new ParleyError('ERR_NOT_A_MEMBER', `${m.slice(-12)} was removed from its account`)
    return account
  }

  async create (input: string, members: string[]): Promise<GroupState> {
    const name = parseDisplayName(normalizeName(input))
    const list = [...new Set(members.map(m => this.memberAccount(m)))].filter(m => m !== this.c.self)
    if (list.length === 0) throw new ParleyError('ERR_INVALID_ARGUMENT', 'a group needs at least one other member')
    if (list.length + 1 > MAX_GROUP_MEMBERS) {
      throw new ParleyError('ERR_INVALID_ARGUMENT', `a group has at most ${MAX_GROUP_MEMBERS} members`)
    }
    const conv = `g:${newMessageId()}`
    const text = `${this.c.selfName()} created "${name}"`
    await this.c.send(conv, list, { text, op: { type: 'create', name, members: list } }, 'groupOp')
    return this.book.get(conv) as GroupState
  }

  async addMember (conv: string, member: string): Promise<GroupState> {
    const g = this.book.requireAdmin(conv)
    member = this.memberAccount(member)
    if (g.members.includes(member)) return g
    const text = `${this.c.selfName()} added ${member.slice(-12)}`
    const snapshot = { name: displayName(g.name), admin: g.admin, members: g.members }
    await this.c.send(conv, this.others([...g.members, member]), { text, op: { type: 'add', member, snapshot } }, 'groupOp')
    return this.book.requireMember(conv)
  }

  async removeMember (conv: string, member: string): Promise<GroupState> {
    const g = this.book.requireAdmin(conv)
    if (!g.members.includes(member) && PEER_ID.test(member)) member = this.accountOf(member) ?? member
    if (member === this.c.self) throw new ParleyError('ERR_INVALID_ARGUMENT', 'to leave your own group, use leave')
    if (!g.members.includes(member)) throw new ParleyError('ERR_NOT_FOUND', 'not a member of this group')
    // the removed member gets the removal itself; nothing sealed after it is addressed to them
    const text = `${this.c.selfName()} removed ${member.slice(-12)}`
    await this.c.send(conv, this.others(g.members), { text, op: { type: 'remove', member } }, 'groupOp')
    return this.book.requireMember(conv)
  }

  async rename (conv: string, input: string): Promise<GroupState> {
    const g = this.book.requireAdmin(conv)
    const name = parseDisplayName(normalizeName(input))
    const text = `${this.c.selfName()} renamed the group to "${name}"`
    await this.c.send(conv, this.others(g.members), { text, op: { type: 'rename', name } }, 'groupOp')
    return this.book.requireMember(conv)
  }

  async leave (conv: string): Promise<GroupState> {
    const g = this.book.requireMember(conv)
    await this.c.send(conv, this.others(g.members), { text: `${this.c.selfName()} left`, op: { type: 'leave' } }, 'groupOp')
    return this.book.get(conv) as GroupState
  }

  private others (members: string[]): string[] { return members.filter(m => m !== this.c.self) }

  private failSendsIfRemoved (state: GroupState): void {
    const ended = state.members.includes(this.c.self) ? undefined : state.spans[this.c.self]?.at(-1)?.to
    if (ended === undefined) return
    void this.failSendsAfter(state.conv, ended).catch((err) => {
      this.c.log.warn('could not fail sends after removal', { err: toParleyError(err).message })
    })
  }

  /** Marks our queued messages in `conv` stamped at or after `since` failed for every recipient (ERR_NOT_A_MEMBER). */
  private async failSendsAfter (conv: string, since: Hlc): Promise<void> {
    const self = this.c.self
    for (const peer of await this.c.store.outboxPeers()) {
      for await (const page of outboxPages(this.c.store, peer, 1000)) {
        // judged by the group as it is now (replaying ops at start passes through removals later undone)
        const g = this.book.get(conv)
        for (const m of page) {
          if (m.conv !== conv || !m.outgoing || this.accountOf(m.author) !== self || compareHlc(m.hlc, since) < 0) continue
          // our own leave op must still reach everyone; and a message from a time we are a member again is fine
          if (m.op?.type === 'leave' || g === null || memberAt(g, self, m.hlc) || g.members.includes(self)) continue
          const failed = await this.c.store.markFailed(m.id, peer, 'ERR_NOT_A_MEMBER')
          if (failed !== undefined) this.c.events.emit('messageStateChanged', failed)
        }
      }
    }
  }
}
