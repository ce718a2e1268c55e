/**
 * The local API contract: routes, payload views and event names, version 1.
 * Shared by the server, the CLI client and the web UI.
 */
import type { StoredMessage } from '../store/types.js'
import type { PeerView } from '../messaging/messenger.js'

export const API_VERSION = 1
export const API_PREFIX = '/v1'
/** request bodies above this are refused. @default 64 KiB */
export const MAX_API_BODY_BYTES = 64 * 1024

export type MessageView = Omit<StoredMessage, 'envelope'>

export interface ConversationView {
  conv: string
  /** the other peer; for groups the group id */
  peer: string
  group: boolean
  name: string | null
  lastText: string
  lastHlc: { w: number, c: number }
  unread: number
  online: boolean
}

export interface GroupView { id: string, name: string, admin: string, members: string[], member: boolean }

export interface IdentityView { peerId: string, name: string, addresses: string[] }

export type ApiEventType =
  | 'messageStored' | 'messageStateChanged' | 'peerOnline' | 'peerOffline' | 'peerUpdated' | 'peerTyping' | 'relayChanged' | 'groupUpdated'

export interface ApiEvent {
  v: 1
  type: ApiEventType
  data: MessageView | PeerView | { peerId: string, conv: string } | Record<string, unknown>
}

export const toMessageView = (m: StoredMessage): MessageView => {
  const { envelope: _envelope, relayRefusal, ...view } = m
  // why the relay refused it matters only while it waits; a later deposit or delivery makes it moot
  return m.state === 'queued' && relayRefusal !== undefined ? { ...view, relayRefusal } : view
}

/** Why the relay keeps no copy of a queued message (MessageView.relayRefusal), in words (app/ui/app.js says the same). */
export const RELAY_REFUSAL_TEXT: Record<string, string> = {
  ERR_SENDER_SHARE_FULL: 'your share of their relay mailbox is full',
  ERR_QUOTA_EXCEEDED: 'their relay mailbox is full',
  ERR_UNKNOWN_RECIPIENT: 'they have no account on your relay'
}
/** what happens to such a message */
export const RELAY_REFUSAL_NEXT = 'it stays queued and goes directly when they are online'
