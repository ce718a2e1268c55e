/**
 * The local API contract: routes, payload views and event names, version 1.
 * Shared by the server, the CLI client and the web UI.
 */
import type { MessageState, Route, StoredMessage } from '../store/types.js'
import type { PeerView } from '../messaging/messenger.js'
import type { RelayState } from '../messaging/relay-client.js'
import type { PermanentRefusal } from '../../../core/protocol/envelope.js'
import type { ChangeWindows } from './changes.js'
import type { FileManifest } from '../../../core/protocol/file-manifest.js'
import type { TransferView } from '../files/types.js'
export type { TransferView, TransferState, TransferDirection } from '../files/types.js'

export type { MessageState, PeerView, RelayState, PermanentRefusal, Route }
export type { MessageChange, Quote } from '../../../core/protocol/envelope.js'
export type { NameWarning } from '../../../core/protocol/names.js'
export { DEFAULT_CHANGE_WINDOWS, changeRefusal, foldChanges, type ChangeWindows } from './changes.js'

export const API_VERSION = 1
export const API_PREFIX = '/v1'
/** request bodies above this are refused. @default 64 KiB */
export const MAX_API_BODY_BYTES = 64 * 1024

/** a file message's manifest as the API shows it: without the content key and the chunk hashes */
export type FileView = Omit<FileManifest, 'key' | 'hashes'>
export type MessageView = Omit<StoredMessage, 'envelope' | 'file'> & {
  file?: FileView
  /**
   * federation (issue 12): sent to our relay, and waiting in its queue because the relay of the recipient's
   * office cannot be reached (since when, its last error): "queued: office B unreachable"
   */
  waiting?: OfficeWaiting
}

/** Why a message to another office waits at our relay: that office's relay is unreachable since `since`. */
export interface OfficeWaiting { office: string, since: number, error?: string }

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
  /** the newest message (its author and kind let the UI write the preview with names, never raw IDs) */
  last: MessageView | null
}

export interface GroupView { id: string, name: string, admin: string, members: string[], member: boolean }

/**
 * GET /status `store`: what opening the message store found at this start.
 * `damaged`: damage was found (`reasons`, in English words for the log);
 * `lost`: messages known lost (at least this many while `uncounted` names
 * why the count is a lower bound); `kept`: messages the store still holds
 * (null when not counted); `checking`: our sequence numbers are still being
 * checked with colleagues (held messages wait for it); lost messages come
 * back from colleagues as they connect.
 */
export interface StoreHealthView { damaged: boolean, reasons: string[], lost: number, uncounted: string[], kept: number | null, checking: boolean }

export interface IdentityView { peerId: string, name: string, addresses: string[] }

/** The UI's own settings, kept by the node (the UI's origin, hence its localStorage, changes with the port). */
export interface UiPrefs {
  /** 'auto' follows the system language */
  locale: 'auto' | 'zh-CN' | 'en'
  /** 'auto' follows the system */
  theme: 'auto' | 'light' | 'dark'
  /** do not disturb: no notifications, no sound */
  dnd: boolean
}
export const DEFAULT_UI_PREFS: Readonly<UiPrefs> = Object.freeze({ locale: 'auto', theme: 'auto', dnd: false })
export const UI_LOCALES: ReadonlyArray<UiPrefs['locale']> = ['auto', 'zh-CN', 'en']
export const UI_THEMES: ReadonlyArray<UiPrefs['theme']> = ['auto', 'light', 'dark']

/** `changeWindows`: how long after writing you may still edit or recall a message (this node's setting) */
export interface SettingsView { name: string, relay: RelayState, ui: UiPrefs, changeWindows: ChangeWindows }

/** `GET /v1/messages/:id/recipients`: where my message is for each recipient, and how it got to them (`via`, once they have it) */
export interface RecipientView {
  /** the recipient device */
  peer: string
  state: 'queued' | 'sent' | 'delivered' | 'read' | 'failed'
  via?: Route
  /** the device's account (ours for our own other devices) */
  account?: string
  /** federation: the other office whose relay is this recipient's home (its name), when it is one */
  office?: string
  /** federation: this recipient's copy waits in our relay's queue, that office's relay being unreachable */
  waiting?: OfficeWaiting
}

/** One message found by `GET /v1/search`: `peer` is the conversation reference (peer ID, or group id). */
export interface SearchHit { peer: string, group: boolean, message: MessageView }
/** @default 50 */
export const DEFAULT_SEARCH_LIMIT = 50
export const MAX_SEARCH_LIMIT = 500

/** `groupUpdated` carries the group's state (its conversation id is `conv`) */
export interface GroupEventData { conv: string, name: string, admin: string, members: string[] }

/** The payload of each event on `/v1/events`. */
export interface ApiEventMap {
  messageStored: MessageView
  messageStateChanged: MessageView
  peerOnline: PeerView
  peerOffline: PeerView
  peerUpdated: PeerView
  peerTyping: { peerId: string, conv: string }
  relayChanged: RelayState
  groupUpdated: GroupEventData
  /** an account record changed: ours (a device linked or revoked) or a contact's */
  accountUpdated: { account: string }
  /** a file transfer's progress or state (files, issue 13) */
  transferChanged: TransferView
}
export type ApiEventType = keyof ApiEventMap

/** One device of our account (`GET /v1/account`, `GET /v1/devices`). */
export interface DeviceView {
  peerId: string
  label: string | null
  /** this device */
  self: boolean
  /** holds the account key: links and revokes devices */
  accountKey: boolean
  online: boolean
  lastSeen: number | null
}

/** `GET /v1/account`: this device's account. */
export interface AccountView {
  account: string
  device: string
  /** this device holds the account key (it can link and revoke devices) */
  accountKey: boolean
  /** when this device joined the account (ms; 0 for its first device): history before it is on the other devices only */
  since: number
  /** this data dir was a v0.1 one, now a one-device account */
  migrated: boolean
  devices: DeviceView[]
  revoked: string[]
  home: Array<{ relay: string, addrs: string[] }>
  /** a link started here and not complete yet: the account device it asked */
  pendingLink: { device: string, expiresAt: number } | null
}

export type ApiEvent = { [K in ApiEventType]: { v: 1, type: K, data: ApiEventMap[K] } }[ApiEventType]

/** The display name a node has until its user picks one (the UI's first run asks for one). */
export const DEFAULT_NAME = 'Parley user'

/**
 * How far a message has got, for "never go back" when an older answer arrives after a newer event.
 * `failed` is final; an incoming message shown (`seen`) ranks with `delivered`.
 */
export const STATE_RANK: Readonly<Record<MessageState, number>> = Object.freeze({ queued: 0, received: 0, sent: 1, seen: 2, delivered: 2, read: 3, failed: 4 })

export const toMessageView = (m: StoredMessage): MessageView => {
  const { envelope: _envelope, relayRefusal, file, ...rest } = m
  const view: MessageView = file === undefined ? rest : { ...rest, file: fileView(file) }
  // why the relay refused it matters only while it waits; a later deposit or delivery makes it moot
  return m.state === 'queued' && relayRefusal !== undefined ? { ...view, relayRefusal } : view
}

const fileView = ({ key: _key, hashes: _hashes, ...shown }: FileManifest): FileView => shown

/** Why the relay keeps no copy of a queued message (MessageView.relayRefusal), in words, for the CLI (the UI says it from its catalogs). */
export const RELAY_REFUSAL_TEXT: Record<string, string> = {
  ERR_SENDER_SHARE_FULL: 'your share of their relay mailbox is full',
  ERR_QUOTA_EXCEEDED: 'their relay mailbox is full',
  ERR_UNKNOWN_RECIPIENT: 'they have no account on your relay'
}
/** what happens to such a message */
export const RELAY_REFUSAL_NEXT = 'it stays queued and goes directly when they are online'

/** what a message and a display name may hold; the UI refuses more with a count instead of cutting */
export { MAX_TEXT_CHARS, MAX_NAME_CHARS, textLength } from '../../../core/protocol/limits.js'

/**
 * The cursor of `GET /conversations/:ref/messages?before=…`: a message's place in display order,
 * `<hlc.w>.<hlc.c>.<id>`. The next older page is asked for with the cursor of the oldest message shown.
 */
export const historyCursor = (m: { hlc: { w: number, c: number }, id: string }): string => `${m.hlc.w}.${m.hlc.c}.${m.id}`
/** the place a cursor names, or null when it is not one */
export function parseHistoryCursor (cursor: string): { hlc: { w: number, c: number }, id: string } | null {
  const m = /^(\d{1,16})\.(\d{1,10})\.([\w-]{1,128})$/.exec(cursor)
  if (m === null) return null
  const w = Number(m[1]); const c = Number(m[2])
  return Number.isSafeInteger(w) && Number.isSafeInteger(c) ? { hlc: { w, c }, id: m[3] as string } : null
}
