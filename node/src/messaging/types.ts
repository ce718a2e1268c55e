/**
 * What the messaging parts share: the one components object they are all
 * built from, the Messenger's events (where each part announces what
 * happened), the peer view and the typed table of peer RPC handlers.
 */
import type { SigningKeys } from '../../../core/crypto/envelope.js'
import type { PresenceStatus, Profile } from '../../../core/protocol/envelope.js'
import type { NameWarning } from '../../../core/protocol/names.js'
import type { DeliverResult, HaveVector, PeerRpcMethod } from '../../../core/protocol/peer-rpc.js'
import type { AckAfterWrite } from '../../../core/rpc/channel.js'
import type { EventSink } from '../../../core/util/events.js'
import type { Logger } from '../../../core/util/log.js'
import type { HybridClock } from '../clock/hlc.js'
import type { PeerHost, Reach } from '../host/types.js'
import type { MessageStore, StoredMessage } from '../store/types.js'
import type { GroupState } from './groups.js'
import type { RelayClient } from './relay-client.js'
import type { Accounts } from './accounts.js'

export interface MessengerComponents {
  store: MessageStore
  host: PeerHost
  identity: SigningKeys
  clock: HybridClock
  log: Logger
  /** optional: the mailbox path for peers we cannot reach */
  relay?: RelayClient
}

/** The components every messaging part is built from: the Messenger's, plus its events and our account. */
export interface MessagingComponents extends MessengerComponents {
  events: EventSink<MessengerEvents>
  /** which account each device belongs to, ours included (accounts.ts) */
  accounts: Accounts
}

export interface PeerView {
  /** the person: their account ID (for a one-device account, the device's peer ID) */
  peerId: string
  /** the account's current devices we know, with their presence */
  devices: Array<{ peerId: string, online: boolean, lastSeen: number | null, label: string | null }>
  /** the peer runs Parley from before accounts (v0.1): messages from our other devices cannot reach it */
  needsUpdate: boolean
  name: string | null
  online: boolean
  reach: Reach | null
  /** while online: active, away (idle) or do not disturb, as the peer says */
  status: PresenceStatus | null
  lastSeen: number | null
  /** compare out of band to verify the key (see core/crypto/safety.ts) */
  safetyNumber: string
  verified: boolean
  /** set when another key used this display name before: a new device, or an impostor (English, for the CLI) */
  keyWarning: string | null
  /** the same warning as a code and its values, for a UI to word in its reader's language */
  nameWarning: NameWarning | null
}

export interface MessengerEvents {
  messageStored: CustomEvent<StoredMessage>
  messageStateChanged: CustomEvent<StoredMessage>
  peerOnline: CustomEvent<PeerView>
  peerOffline: CustomEvent<PeerView>
  peerUpdated: CustomEvent<PeerView>
  groupUpdated: CustomEvent<GroupState>
  /** an account record changed (ours or a contact's): devices added or revoked */
  accountUpdated: CustomEvent<{ account: string }>
  /** the peer is typing in a conversation with us (ephemeral, best effort) */
  peerTyping: CustomEvent<{ peerId: string, conv: string }>
}

/** What each peer RPC method answers; `deliver` only after the durable write (a duplicate at once). */
export interface PeerRpcAnswers {
  deliver: DeliverResult | AckAfterWrite<DeliverResult>
  /** with `tops` asked: the have-vector, the highest seq held per author, and the store's epoch */
  getHave: HaveVector | { have: HaveVector, tops: HaveVector, epoch: string }
  getProfile: Profile | undefined
  announceProfile: Record<string, never>
  receipt: Record<string, never>
  typing: Record<string, never>
  /** the account's record, which now lists the caller */
  link: { record: unknown }
}

/** Answers a request of `remote` (already authenticated by the connection). */
export type PeerRpcHandler<T> = (remote: string, body: unknown) => Promise<T>

/** One handler per peer RPC method, filled by the messaging parts. */
export type PeerRpcHandlers = { [M in PeerRpcMethod]: PeerRpcHandler<PeerRpcAnswers[M]> }
