/**
 * Receipts and typing: read receipts to the authors of what the user was
 * shown, typing notices to the peer or the connected group members (both best
 * effort), and the peers' `receipt` and `typing` requests.
 */
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { isGroupConv } from '../../../core/protocol/envelope.js'
import { MAX_RECEIPT_IDS, parseReceipt, parseTyping } from '../../../core/protocol/peer-rpc.js'
import type { GroupService } from './group-service.js'
import type { PeerChannels } from './peer-channels.js'
import type { MessagingComponents, PeerRpcHandlers } from './types.js'

export interface ReceiptsComponents extends Pick<MessagingComponents, 'store' | 'host' | 'log' | 'events'>, Partial<Pick<MessagingComponents, 'relay'>> {
  self: string
  channels: PeerChannels
  groups: GroupService
}

/** A typing notice gives up after this long. */
const TYPING_TIMEOUT_MS = 3000

export class Receipts {
  readonly handlers: Pick<PeerRpcHandlers, 'receipt' | 'typing'> = {
    receipt: async (remote, body) => {
      const { conv, ids } = parseReceipt(body)
      if (!this.c.groups.inConversation(conv, remote)) throw new ParleyError('ERR_NOT_FOUND', 'no such conversation')
      const mine = []
      for (const id of ids) {
        const m = await this.c.store.getMessage(id)
        if (m?.conv === conv && m.outgoing) mine.push(id)
      }
      for (const m of await this.c.store.markRead(mine, remote)) this.c.events.emit('messageStateChanged', m)
      return {}
    },
    typing: async (remote, body) => {
      const { conv } = parseTyping(body)
      if (!this.c.groups.inConversation(conv, remote) || !this.c.groups.inConversation(conv, this.c.self)) {
        throw new ParleyError('ERR_NOT_FOUND', 'no such conversation')
      }
      this.c.events.emit('peerTyping', { peerId: remote, conv })
      return {}
    }
  }

  constructor (private readonly c: ReceiptsComponents) {}

  /** Marks the conversation as shown and tells each author we are connected to (best effort). */
  async markSeen (peerOrGroup: string): Promise<number> {
    const conv = this.c.groups.conversationOf(peerOrGroup)
    const changed = await this.c.store.markSeen(conv)
    for (const m of changed) this.c.events.emit('messageStateChanged', m)
    const byAuthor = new Map<string, string[]>()
    for (const m of changed) byAuthor.set(m.author, [...(byAuthor.get(m.author) ?? []), m.id])
    for (const [author, ids] of byAuthor) {
      // an author of another office: the receipt goes back through the relays (federation)
      // (kept and retried until our relay takes it, like a delivery receipt)
      if (!this.c.host.isConnected(author) && this.c.relay?.officeOf(author) !== undefined) {
        this.c.relay.queueReadReceipt(author, conv, ids)
        continue
      }
      if (!this.c.host.isConnected(author)) continue
      void this.c.channels.get(author).then(async ch => {
        for (let i = 0; i < ids.length; i += MAX_RECEIPT_IDS) await ch.call('receipt', { conv, ids: ids.slice(i, i + MAX_RECEIPT_IDS) })
      }).catch(err => { this.c.log.debug('read receipt not sent', { author, err: toParleyError(err).message }) })
    }
    return changed.length
  }

  /** Tells the peer, or every connected group member, that we are typing; best effort. */
  async sendTyping (peerOrGroup: string): Promise<boolean> {
    const conv = this.c.groups.conversationOf(peerOrGroup)
    const accounts = isGroupConv(conv)
      ? this.c.groups.requireMember(conv).members.filter(m => m !== this.c.self)
      : [this.c.groups.accountOf(peerOrGroup) ?? peerOrGroup]
    const to = accounts.flatMap(a => this.c.groups.devicesOf(a))
    let sent = false
    for (const p of to.filter(p => this.c.host.isConnected(p))) {
      const ch = await this.c.channels.get(p)
      await ch.call('typing', { conv }, { signal: AbortSignal.timeout(TYPING_TIMEOUT_MS) })
      sent = true
    }
    return sent
  }
}
