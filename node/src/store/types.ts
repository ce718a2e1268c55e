/**
 * What messaging needs from storage. Messaging depends on this interface only;
 * `LevelStore` implements it on any abstract-level database (classic-level on
 * disk, memory-level in unit tests).
 */
import type { AbortOptions } from '../../../core/util/abort.js'
import type { Envelope, GroupOp, Hlc, MessageChange, Profile, Quote } from '../../../core/protocol/envelope.js'
import type { HaveVector } from '../../../core/protocol/peer-rpc.js'
import type { FileManifest } from '../../../core/protocol/file-manifest.js'

/**
 * queued: stored locally, not yet confirmed by anyone;
 * sent: stored by the relay's mailbox for the recipient, not yet confirmed by it;
 * failed: the recipient refused it for good (see `error`); it is not retried;
 * delivered: the recipient stored it durably; read: the recipient showed it;
 * received: an incoming message not yet shown; seen: an incoming message shown.
 */
export type MessageState = 'queued' | 'sent' | 'failed' | 'delivered' | 'read' | 'received' | 'seen'

/** how a message travelled between two devices: a direct connection (LAN), the relay's circuit (bridge), or its mailbox */
export type Route = 'lan' | 'circuit' | 'mailbox'

export interface StoredMessage {
  id: string
  conv: string
  author: string
  seq: number
  hlc: Hlc
  text: string
  outgoing: boolean
  state: MessageState
  /** local wall clock when this device stored it, ms */
  storedAt: number
  /** for state `failed`: the recipient's error code */
  error?: string
  /**
   * for an outgoing message still `queued`: why the relay keeps no copy (ERR_SENDER_SHARE_FULL: this
   * sender's share of the recipient's mailbox is used up; ERR_QUOTA_EXCEEDED: the mailbox is full;
   * ERR_UNKNOWN_RECIPIENT: no account there). It stays queued, goes directly when the recipient is
   * reachable and to the relay again later; shown only while the state is `queued`.
   */
  relayRefusal?: string
  /**
   * outgoing to accounts with several devices (or from one): each recipient device → its account. The
   * message is delivered once one device of every recipient account stored it (the others still get it),
   * failed once every device of every recipient account refused it; devices not listed (our own other
   * devices) get it but count for neither. Absent: every key wrap but the author's is one recipient.
   */
  recipientAccounts?: Record<string, string>
  /** group messages: recipients that refused it for good (it is `failed` only if all of them did) */
  refusedBy?: string[]
  /** for group membership operations (envelope kind groupOp) */
  op?: GroupOp
  /**
   * outgoing, stored while our sequence numbers in this conversation await
   * reconciliation with peers (messaging/reconcile.ts): not sent anywhere yet,
   * so its `seq` may still change
   */
  held?: boolean
  /**
   * outgoing: this device moved it to a higher number at least once (a peer held another message of ours
   * at its number: MessageStore.resealOwn); a read receipt may be for the old copy, so only the ack of the
   * moved one settles a recipient
   */
  moved?: boolean
  /** outgoing: how many times this device moved it (resealOwn); at MAX_MOVES it moves no more */
  moves?: number
  /** a reply: the message it answers */
  reply?: Quote
  /** an edit or recall of the author's own message (shown folded into it: api/changes.ts) */
  change?: MessageChange
  /** a file message: its manifest (node/src/files/; the API shows it without key and hashes) */
  file?: FileManifest
  /** set when shown (folded): the time of the edit whose text this is */
  editedAt?: number
  /**
   * the author recalled it: set when shown (folded), and stored on the message itself once the recall is
   * here, when its text (and the text of its edits) is erased from the store
   */
  recalled?: boolean
  /** incoming: how it reached this device (a direct connection on the LAN, the relay's circuit, the mailbox) */
  via?: Route
  /** incoming: the peer that handed it over, when not its author (a group member's sync) */
  viaPeer?: string
  /** incoming, federation: the other office whose relay forwarded it to ours (its name) */
  office?: string
  /** outgoing: how it reached each recipient that has it */
  routes?: Record<string, Route>
  /** outgoing group messages: the recipients who have been shown it (read receipts) */
  readBy?: string[]
  envelope: Envelope
}

export interface PeerRecord {
  peerId: string
  profile?: Profile
  /** last time a connection to this peer was open, ms */
  lastSeen?: number
  /** the user compared safety numbers and confirmed this key */
  verified?: boolean
  /** first time this device saw the peer, ms */
  firstSeen?: number
}

export interface ConversationRecord {
  conv: string
  lastHlc: Hlc
  lastText: string
  unread: number
}

export interface HistoryQuery {
  /** newest N messages; @default 200 */
  limit?: number
  /** only messages whose text contains this (case-insensitive) */
  search?: string
  /** only messages before this one in display order (HLC, then id): the next older page */
  before?: { hlc: { w: number, c: number }, id: string }
}

/** The same message sealed again under a new seq (see MessageStore.reconcileOwn). */
export type Reseal = (m: StoredMessage, seq: number) => Envelope

/**
 * How many times one message of ours may move (resealOwn). Each move needs a
 * peer's proof (our own signed envelope of another message at that number),
 * so honest damage needs one or two; the cap bounds a loop (a broken store of
 * ours, a bug): past it the message keeps its number and a further refusal
 * fails it for that peer (ERR_SEQ_CONFLICT), nothing else.
 */
export const MAX_MOVES = 8

/** May `device` be sent our messages? (not one of our own revoked devices, nor this device itself) */
export type Sendable = (device: string) => boolean

export interface IncomingOptions extends AbortOptions {
  /**
   * this device: only a message it wrote itself, given back into a number a
   * move freed, is queued again (a sibling device's is that device's to
   * send), and never for this device
   */
  self?: string
  /** which devices such a message is queued for again @default every recipient device */
  sendable?: Sendable
}

export interface MessageStore {
  start(): Promise<void>
  stop(): Promise<void>

  getMeta(key: string): Promise<unknown>
  putMeta(key: string, value: unknown): Promise<void>
  deleteMeta(key: string): Promise<void>
  /** Reads and rewrites one meta value in one write (`fn` returns undefined: deleted). */
  updateMeta(key: string, fn: (value: unknown) => unknown): Promise<void>

  getPeer(peerId: string): Promise<PeerRecord | undefined>
  putPeer(record: PeerRecord): Promise<void>
  listPeers(): Promise<PeerRecord[]>

  /**
   * Assigns the next sequence number for (conv, author), lets `build` make the
   * message with it, and writes the message, its indexes, the outbox entries
   * for `recipients` and the clock in one durable batch.
   */
  appendOutgoing(conv: string, author: string, recipients: string[], build: (seq: number) => StoredMessage, options?: AbortOptions): Promise<StoredMessage>
  /**
   * Durably stores a received message unless it is already stored
   * ('duplicate', also for an older copy of a message that moved since),
   * another message of its author holds its seq ('conflict'), or another
   * author's message holds its id ('id-conflict'). The same message at a
   * higher seq is its author's move (the caller verified the signature): it
   * takes the new number and frees the old one ('moved') if it is the same
   * message: the same time, kind and body (text, op, reply, change: all but
   * seq and signature; the text is not compared where a recall erased it
   * here), compared inside the write, else 'id-conflict'. A message this
   * device wrote (`options.self`) given back into a number a move freed is
   * queued for its recipients again (those `options.sendable` allows).
   */
  storeIncoming(message: StoredMessage, options?: IncomingOptions): Promise<'stored' | 'moved' | 'duplicate' | 'conflict' | 'id-conflict'>

  getMessage(id: string): Promise<StoredMessage | undefined>
  /**
   * While the message `id` read by getMessage is staged but not yet on disk: the write that makes it durable
   * (rejects if that write fails). Undefined once it is durable. A duplicate is acknowledged only after it.
   */
  pendingWrite(id: string): Promise<void> | undefined
  history(conv: string, query?: HistoryQuery): Promise<StoredMessage[]>
  listConversations(): Promise<ConversationRecord[]>

  /** Messages still waiting for `peer` to confirm, in (seq, id) order; `after` pages past an entry. */
  outbox(peer: string, limit?: number, after?: { seq: number, id: string }): Promise<StoredMessage[]>
  outboxSize(): Promise<number>
  /** Peers that have at least one queued message. */
  outboxPeers(): Promise<string[]>
  /**
   * Removes `ids` from `peer`'s outbox (one durable batch), noting for each the `route` it took (a map: per id);
   * returns the messages whose state became `delivered`. `seqs` (per id: the seq of the copy the peer
   * acknowledged) leaves out an ack of a copy sent before the message moved: the moved one is still owed.
   */
  markDelivered(ids: string[], peer: string, routes?: ReadonlyMap<string, Route>, seqs?: ReadonlyMap<string, number>): Promise<StoredMessage[]>
  /** Takes `id` out of `peer`'s outbox for good, with the recipient's error code. */
  markFailed(id: string, peer: string, error: string): Promise<StoredMessage | undefined>
  /**
   * queued -> sent (the relay holds them); with `peers`, also records for
   * which recipients the relay holds a copy (not when `seq`, the deposited
   * copy's, is no longer the message's: it moved meanwhile). The outbox
   * entries stay until each recipient confirms.
   */
  markSent(items: Array<string | { id: string, peers: string[], seq?: number }>): Promise<StoredMessage[]>
  /** Notes on queued outgoing messages why the relay refused them (`relayRefusal`); returns those that changed. */
  noteRelayRefusal(ids: string[], code: string): Promise<StoredMessage[]>
  /** The ids among `msgs` whose copy for `peer` the relay holds (per markSent). */
  depositedFor(peer: string, msgs: ReadonlyArray<Pick<StoredMessage, 'id' | 'seq'>>): Promise<Set<string>>
  /** Marks incoming messages of `conv` as seen; returns those that changed. */
  markSeen(conv: string): Promise<StoredMessage[]>
  /**
   * `peer`, a recipient, has shown these: noted in `readBy` (group messages), read once no other recipient is
   * still waiting (clears peer's outbox entry); returns those that changed.
   */
  markRead(ids: string[], peer: string): Promise<StoredMessage[]>

  haveVector(conv: string): Promise<HaveVector>
  /** The have-vector and, per author, the highest sequence number held (gaps included). */
  haveAndTops(conv: string): Promise<{ have: HaveVector, tops: HaveVector }>
  /**
   * A peer holds `author`'s messages in `conv` up to `top`: the counter goes
   * above it. `release` is asked inside the write's turn (so no send is
   * prepared between the answer and the numbers it implies): when it says
   * the conversation is held no more, `author`'s held messages (one held by a
   * send that raced an earlier release too) get the next numbers above `top`
   * and above every number known here, in order (re-sealed by `reseal` where
   * the number changed), and are held no more.
   * Returns the released messages.
   */
  reconcileOwn(conv: string, author: string, top: number, release: () => boolean, reseal: Reseal): Promise<StoredMessage[]>
  /**
   * A peer refused our message `id`, sent at `seq`, because it holds another
   * message of ours at that number (ERR_SEQ_CONFLICT: our store lost it), and
   * proved it holds our numbers up to `top` (≥ seq). The move (PROTOCOL.md,
   * "Sequence reconciliation"): it takes the next number above `top` and
   * every number known here, re-sealed by `reseal`, and is queued again for
   * every recipient device that did not refuse it for good, also those that
   * hold or were deposited the old copy (they move it when the new one comes);
   * the old number is freed for our message the peer gives back. Returns the
   * message as it is now (already moved: unchanged), undefined when it
   * keeps its number (no proof at that number), or 'capped' when it moved
   * MAX_MOVES times already (it keeps its number). `sendable`: the devices
   * it is queued for again (not our own revoked ones) @default every one.
   */
  resealOwn(id: string, seq: number, top: number, reseal: Reseal, sendable?: Sendable): Promise<StoredMessage | 'capped' | undefined>
  /** Stored envelopes of `author` in `conv` with seq > `afterSeq`, in seq order (held ones left out). */
  envelopesAfter(conv: string, author: string, afterSeq: number, limit?: number): Promise<Envelope[]>
  /** The envelope `author` has at `seq` in `conv` here (held messages excluded): what a getHave `slot` question is answered with. */
  envelopeAt(conv: string, author: string, seq: number): Promise<Envelope | undefined>
  /** `author`'s envelope at the highest number held in `conv` (held messages excluded): proof of a top (reconcile.ts). */
  topEnvelope(conv: string, author: string): Promise<Envelope | undefined>
}
