/**
 * Federation between office relays: what is stored (paired relays, pairing
 * invites, the durable outbound queue per paired relay, the inbound
 * high-water mark per paired relay, the users' directory listings and the
 * routes learned) and the store interface both relay stores implement
 * (LevelMailboxStore, PgMailboxStore; compliance: test/compliance/mailbox-store.ts).
 *
 * Contract, for every implementation:
 * - enqueueFed assigns each item of a paired relay's queue an increasing
 *   `seq`, and items become visible to drainFed in seq order (no later seq
 *   is ever drained while an earlier one may still commit);
 * - drainFed hands out a prefix of one relay's queue to one drainer at a time
 *   (PostgreSQL: the peer's row FOR UPDATE SKIP LOCKED, so with several
 *   instances whichever is up drains it) and deletes exactly what the
 *   receiver acknowledged;
 * - receiveFed stores items with a seq above the relay's high-water mark in
 *   the recipients' mailboxes and moves the mark in the same durable write:
 *   a replayed or re-sent batch stores nothing a second time.
 */
import type { Envelope } from '../../../core/protocol/envelope.js'
import type { Notice, NoticeBody } from '../../../core/protocol/fed-notice.js'

/** What we let one paired relay do and see. */
export interface FedPolicy {
  /** which of our users it sees in its directory: none, or those who chose to be listed */
  directory: 'none' | 'listed'
  /** items waiting in our queue to it, at most. @default 100000 */
  quotaMessages: number
  /** bytes waiting in our queue to it, at most. @default 1 GiB */
  quotaBytes: number
  /** an item not forwarded within this long is dropped from the queue (its sender still holds it). @default 7 days */
  ttlMs: number
}

export const DEFAULT_FED_POLICY: FedPolicy = { directory: 'listed', quotaMessages: 100_000, quotaBytes: 1024 ** 3, ttlMs: 7 * 24 * 3600_000 }

export interface FedPeer {
  /** the paired relay's libp2p peer ID, pinned at pairing (Noise proves it on every connection) */
  peerId: string
  addrs: string[]
  /** what its admin called it (the office's name) */
  name: string
  pairedAt: number
  policy: FedPolicy
  /**
   * The paired relay's other instances (processes on its one shared store,
   * each with its own peer ID), as it told us over a pinned connection: mail
   * from any of them is from this relay, and the queue to it goes to whichever answers.
   */
  instances?: FedInstance[]
}

/** One instance of a relay: its peer ID and where it listens. */
export interface FedInstance { peerId: string, addrs: string[] }

/** An instance of this relay as it registered in the (shared) store at start. */
export interface RelayInstance extends FedInstance { seenAt: number }

/** A one-time pairing invite: only the hash of its secret is kept. */
export interface FedInvite {
  id: string
  secretHash: string
  createdAt: number
  expiresAt: number
  usedBy?: string
  usedAt?: number
}

export interface FedQueueItem { seq: number, to: string[], envelope: Envelope, bytes: number, queuedAt: number }
export interface FedInboundItem { seq: number, to: string[], envelope: Envelope, bytes: number }

/**
 * What receiveFed did: `lastSeq` is the high-water mark after the batch (the
 * sender deletes up to it); `unknown` names (seq, recipient) pairs that are not
 * ours (nothing kept for them); `full`: it stopped at an item whose mailbox is
 * full (that item and those after it are not taken, the sender retries later).
 */
export interface FedReceipt {
  lastSeq: number
  stored: number
  unknown: Array<[number, string]>
  full: boolean
  /** items refused whole, with the typed reason ([seq, code]: ERR_FED_NOT_HOME, ERR_INVALID_ENVELOPE); nothing kept for them */
  refused?: Array<[number, string]>
}

/** notices kept per device, at most (the oldest go first) */
export const MAX_KEPT_NOTICES = 10_000

/** A notice to keep for one of our devices (its number is given by the store). */
export interface KeptNotice { device: string, notice: NoticeBody }

/** A user's choice to be listed in the directories of federated relays. */
export interface Listing { peerId: string, name: string, department?: string, updatedAt: number }

export interface FederationStore {
  listFedPeers(): Promise<FedPeer[]>
  putFedPeer(peer: FedPeer): Promise<void>
  /**
   * Unpairs: the peer and its queue go; returns how many queued items were dropped, or -1 when it was not
   * paired. `bounces` (when given) makes the notices for the dropped items, kept in the same durable write.
   */
  removeFedPeer(peerId: string, bounces?: (dropped: FedQueueItem[]) => KeptNotice[]): Promise<number>
  putFedInvite(invite: FedInvite): Promise<void>
  listFedInvites(): Promise<FedInvite[]>
  /**
   * Uses the invite with this secret hash for `by` (one durable write);
   * the same relay using it again is allowed (its first answer was lost).
   * Throws ERR_FED_PAIRING (unknown, expired, used by another relay).
   */
  useFedInvite(secretHash: string, by: string, now: number): Promise<FedInvite>
  /**
   * Queues `envelope` for `to` (recipients homed at `peer`) in one durable
   * write, deduped per (peer, author, envelope id) while queued; throws
   * ERR_QUOTA_EXCEEDED past the quota.
   */
  enqueueFed(peer: string, to: string[], envelope: Envelope, bytes: number, quota: { messages: number, bytes: number }): Promise<'queued' | 'duplicate'>
  /**
   * Takes up to `limit` items (and about `maxBytes`) from the head of the
   * queue to `peer`, alone, and gives them to `send`, which answers the seq up
   * to which the receiver has them durably; those are deleted. Returns how many
   * were deleted, or null when another drainer holds this queue.
   */
  drainFed(peer: string, limit: number, maxBytes: number, send: (items: FedQueueItem[]) => Promise<number>): Promise<number | null>
  /**
   * Deletes the items of `peer`'s queue queued before `before`; returns them.
   * `bounces` (when given) makes the notices for them, kept in the same
   * durable write (a crash cannot drop the items and lose their bounces).
   */
  expireFed(peer: string, before: number, bounces?: (expired: FedQueueItem[]) => KeptNotice[]): Promise<FedQueueItem[]>
  /**
   * Keeps notices (receipts, bounces) for our devices in one durable write,
   * each numbered above every earlier notice of its device (per device, shared
   * by every instance of the relay); a device keeps at most `max`, the oldest
   * go first. Returns the devices that got one.
   */
  addFedNotices(items: KeptNotice[], max: number): Promise<string[]>
  /** Deletes `device`'s notices numbered up to `ack`; returns up to `limit` of the others, in order. */
  takeFedNotices(device: string, ack: number, limit: number): Promise<Notice[]>
  /** Items, bytes and the oldest item's time, per paired relay with a queue. */
  fedQueueStats(): Promise<Map<string, { depth: number, bytes: number, oldestAt: number }>>
  /**
   * Stores a batch from `peer` (see FedReceipt), skipping items at or below its
   * high-water mark; in the same write, each author of an item with recipients
   * is routed to `peer` (fedRouteOf: replies go back there, from any instance).
   */
  receiveFed(peer: string, items: FedInboundItem[]): Promise<FedReceipt>
  /** The paired relay the author's forwarded mail last came from (receiveFed). */
  fedRouteOf(author: string): Promise<string | undefined>
  putListing(peerId: string, listing: Listing | null): Promise<void>
  listListings(): Promise<Listing[]>
  /** Registers (or refreshes) one instance of this relay; on a shared store every instance sees every other. */
  putInstance(instance: RelayInstance): Promise<void>
  /** The instances registered, by peer ID. */
  listInstances(): Promise<RelayInstance[]>
}
