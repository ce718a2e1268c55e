/**
 * MailboxStore on LevelDB (any abstract-level database: classic-level on
 * disk, memory-level in tests): admitted users, invites and the mailbox of
 * sealed envelopes. It never sees plaintext: envelopes are stored
 * as the author sealed them. Deposits resolve only after an fsynced batch
 * (group commit), so an acked deposit survives kill -9.
 */
import { ParleyError } from '../../../core/errors.js'
import { LevelBackedStore, jsonSublevel, type Db, type Sub, type Tx } from '../../../core/store/group-commit.js'
import type { Envelope } from '../../../core/protocol/envelope.js'
import type { FetchResult } from '../../../core/protocol/relay-rpc.js'
import {
  FETCH_MAX_BYTES, type Invite, type InviteOptions, type MailboxLimits, type MailboxStore, type MailboxTotals, type MailboxWatcher,
  type RelayUser, type StoredFetchResult
} from './types.js'
import { Watchers } from './watchers.js'
import type { Notice } from '../../../core/protocol/fed-notice.js'
import { fedSender, fedSeqAfter, takeFedBatch, usableFedInvite } from '../federation/rules.js'
import { newInvites } from './invites.js'
import { SenderShares, subtractUsage, type SenderUse, type Usage } from './sender-shares.js'
import { pasteSafeToken } from '../../../core/util/tokens.js'
import { storeWriteError } from '../../../core/store/write-latch.js'
import type {
  FederationStore, FedInboundItem, FedInvite, FedPeer, FedQueueItem, FedReceipt, KeptNotice, Listing, RelayInstance
} from '../federation/types.js'
import { MAX_KEPT_NOTICES } from '../federation/types.js'

interface StoredMail { cursor: number, from: string, envelope: Envelope, depositedAt: number, bytes: number }

const SEP = '!'
const pad = (n: number): string => n.toString().padStart(16, '0')
/** rows deleted per write by the TTL sweep */
const SWEEP_CHUNK = 1000
/** dedupe key of one copy: recipient, author and message id */
const mailIdKey = (recipient: string, envelope: Envelope): string => recipient + SEP + envelope.author + SEP + envelope.id

export class LevelMailboxStore extends LevelBackedStore implements MailboxStore, FederationStore {
  private readonly users: Sub<RelayUser>
  private readonly invites: Sub<Invite>
  private readonly mail: Sub<StoredMail>
  private readonly mailIds: Sub<number>
  private readonly usage: Sub<Usage>
  /** per (recipient, sender): what that sender's mail in that mailbox holds */
  private readonly senderUsage: Sub<Usage>
  // federation (relay/src/federation/types.ts)
  private readonly fedPeers: Sub<FedPeer>
  private readonly fedInvites: Sub<FedInvite>
  /** queue items by peer + seq */
  private readonly fedQueue: Sub<FedQueueItem>
  /** dedupe of a queued item: peer, author, envelope id -> seq */
  private readonly fedQueueIds: Sub<number>
  /** per peer: queued count and bytes, and the last seq given */
  private readonly fedQueueUse: Sub<Usage & { seq: number }>
  /** per peer: the highest seq received from it (its high-water mark) */
  private readonly fedIn: Sub<number>
  /** author of forwarded mail -> the paired relay it came from */
  private readonly fedRoutes: Sub<string>
  private readonly listings: Sub<Listing>
  /** notices kept for our devices: device!n -> notice; and per device the next number and the lowest kept */
  private readonly fedNotices: Sub<Notice>
  private readonly fedNoticeSeq: Sub<{ next: number, first: number }>
  private readonly fedDraining = new Set<string>()
  private shares: SenderShares
  private admitted = new Set<string>()
  private cursor = 0
  private readonly watchers = new Watchers()

  constructor (db: Db, private limits: MailboxLimits) {
    super(db, 'relay')
    this.users = jsonSublevel(db, 'users')
    this.invites = jsonSublevel(db, 'invites')
    this.mail = jsonSublevel(db, 'mail')
    this.mailIds = jsonSublevel(db, 'mailid')
    this.usage = jsonSublevel(db, 'usage')
    this.senderUsage = jsonSublevel(db, 'senderusage')
    this.fedPeers = jsonSublevel(db, 'fedpeers')
    this.fedInvites = jsonSublevel(db, 'fedinvites')
    this.fedQueue = jsonSublevel(db, 'fedq')
    this.fedQueueIds = jsonSublevel(db, 'fedqid')
    this.fedQueueUse = jsonSublevel(db, 'fedquse')
    this.fedIn = jsonSublevel(db, 'fedin')
    this.fedNotices = jsonSublevel(db, 'fednotices')
    this.fedNoticeSeq = jsonSublevel(db, 'fednoticeseq')
    this.fedRoutes = jsonSublevel(db, 'fedroutes')
    this.listings = jsonSublevel(db, 'listings')
    this.shares = new SenderShares(limits)
  }

  protected override async opened (): Promise<void> {
    this.admitted = new Set(await this.users.keys().all())
    this.cursor = Number(await this.meta.get('cursor') ?? 0)
    if (await this.meta.get('senderUsage') === undefined) await this.rebuildSenderUsage()
  }

  /**
   * Mail stored before per-sender shares has no sender-usage entries: count
   * them from the mail once (then a flag in meta says they are kept up to date).
   */
  private async rebuildSenderUsage (): Promise<void> {
    const use = new Map<string, Usage>()
    for await (const [key, row] of this.mail.iterator()) {
      const k = key.slice(0, key.lastIndexOf(SEP)) + SEP + row.from
      const u = use.get(k) ?? { count: 0, bytes: 0 }
      use.set(k, { count: u.count + 1, bytes: u.bytes + row.bytes })
    }
    // an empty store needs no entries (nor the flag: a later rebuild counts the same as was kept)
    if (use.size === 0) return
    // straight to the database, not through the group commit: this runs at start (nothing else
    // writes yet) and in a reopen after a failed write, inside the turn of the write that reopens
    // the store, where a group-commit write would wait for that turn for ever
    const ops: Array<{ type: 'put' | 'del', sublevel: Sub<unknown>, key: string, value?: unknown }> = []
    for await (const k of this.senderUsage.keys()) if (!use.has(k)) ops.push({ type: 'del', sublevel: this.senderUsage as Sub<unknown>, key: k })
    for (const [k, u] of use) ops.push({ type: 'put', sublevel: this.senderUsage as Sub<unknown>, key: k, value: u })
    ops.push({ type: 'put', sublevel: this.meta, key: 'senderUsage', value: 1 })
    await this.db.batch(ops as never, { sync: true } as never).catch((err: unknown) => { throw storeWriteError(err) })
  }

  isAdmitted (peerId: string): boolean { return this.admitted.has(peerId) }
  admittedCount (): number { return this.admitted.size }

  /** New retention and quotas apply to the next deposit, fetch and sweep (no restart). */
  setLimits (limits: MailboxLimits): void {
    // a limit not given (the sender share) keeps its value
    this.limits = { ...this.limits, ...limits }
    this.shares = this.shares.withLimits(this.limits)
  }

  async admit (peerId: string, via: RelayUser['via'], invite?: string): Promise<RelayUser> {
    const user: RelayUser = { peerId, admittedAt: Date.now(), via, ...(invite !== undefined ? { invite } : {}) }
    const kept = await this.gc.write(async (tx) => {
      const already = await tx.get(this.users, peerId)
      if (already !== undefined) return already
      tx.put(this.users, peerId, user)
      return user
    })
    this.admitted.add(peerId)
    return kept
  }

  async removeUser (peerId: string): Promise<boolean> {
    const existed = this.admitted.delete(peerId)
    await this.gc.write(async (tx) => { tx.del(this.users, peerId) })
    if (existed) this.watchers.removed(peerId)
    return existed
  }

  async listUsers (): Promise<RelayUser[]> { return await this.users.values().all() }

  async createInvite (opts: InviteOptions = {}): Promise<Invite> {
    return (await this.createInvites([opts]))[0] as Invite
  }

  /** Several invites in one durable write (directory import: one per person). */
  async createInvites (list: InviteOptions[]): Promise<Invite[]> {
    const now = Date.now()
    const invites = newInvites(list, now)
    await this.gc.write(async (tx) => { for (const i of invites) tx.put(this.invites, i.token, i) })
    return invites
  }

  async listInvites (): Promise<Invite[]> { return await this.invites.values().all() }

  /** Revokes an invite (kept, for who redeemed it); returns it, or undefined when unknown. */
  async revokeInvite (token: string): Promise<Invite | undefined> {
    return await this.gc.write(async (tx) => {
      const invite = await tx.get(this.invites, token)
      if (invite === undefined) return undefined
      const revoked = { ...invite, revokedAt: invite.revokedAt ?? Date.now() }
      tx.put(this.invites, token, revoked)
      return revoked
    })
  }

  /** Admits `peerId` with an invite; re-redeeming by an admitted peer is a no-op. */
  async redeem (token: string, peerId: string): Promise<RelayUser> {
    if (this.admitted.has(peerId)) {
      const known = await this.gc.read(this.users, peerId)
      if (known !== undefined) return known
    }
    const user = await this.gc.write(async (tx) => {
      const already = await tx.get(this.users, peerId)
      if (already !== undefined) return already
      const invite = await tx.get(this.invites, token)
      if (invite === undefined) throw new ParleyError('ERR_INVITE_INVALID', 'this invite token is not known to the relay')
      if (invite.revokedAt !== undefined) throw new ParleyError('ERR_INVITE_INVALID', 'this invite was revoked by the admin; ask for a new one')
      if (invite.expiresAt < Date.now()) throw new ParleyError('ERR_INVITE_INVALID', 'this invite has expired; ask the admin for a new one')
      if (invite.uses >= invite.maxUses) throw new ParleyError('ERR_INVITE_INVALID', 'this invite has been used up; ask the admin for a new one')
      const redeemedBy = [...(invite.redeemedBy ?? []), { peerId, at: Date.now() }]
      tx.put(this.invites, token, { ...invite, uses: invite.uses + 1, redeemedBy })
      const user: RelayUser = { peerId, admittedAt: Date.now(), via: 'invite', invite: token.slice(0, 6) }
      tx.put(this.users, peerId, user)
      return user
    })
    // admitted only once the record is on disk
    this.admitted.add(peerId)
    return user
  }

  /** Keeps `envelope` for each recipient in one durable write; returns how many were new. */
  async deposit (to: string | string[], from: string, envelope: Envelope, bytes: number): Promise<number> {
    return (await this.depositAll(to, from, envelope, bytes)).stored
  }

  /**
   * Like deposit; also names the recipients that got no copy for lack of
   * room: `full` (the mailbox is full, or this sender's share of it) and,
   * among them, `shareFull` (this sender's share is used up, other senders
   * still have room). The other recipients got theirs. When no new copy was
   * kept at all it throws ERR_SENDER_SHARE_FULL (only shares were full) or
   * ERR_QUOTA_EXCEEDED.
   */
  async depositAll (to: string | string[], from: string, envelope: Envelope, bytes: number): Promise<{ stored: number, full: string[], shareFull: string[] }> {
    const recipients = typeof to === 'string' ? [to] : to
    const kept: string[] = []
    const result = await this.gc.write(async (tx) => {
      const r = await this.depositIn(tx, recipients, from, envelope, bytes, kept)
      if (r.stored === 0 && r.full.length > 0) throw this.shares.refusal(r.full, r.shareFull)
      return r
    })
    // once durable
    for (const r of kept) this.watchers.mail(r)
    return result
  }

  /** One deposit inside a write: copies kept are named in `kept`; a full mailbox refuses only its own copy (never throws for it). */
  private async depositIn (tx: Tx, recipients: string[], from: string, envelope: Envelope, bytes: number, kept: string[]): Promise<{ stored: number,
    full: string[], shareFull: string[] }> {
    let stored = 0
    const full: string[] = []
    const shareFull: string[] = []
    for (const r of recipients) {
      // deduped per author too: another sender cannot pre-empt a copy by reusing its id
      const waiting = await tx.get(this.mailIds, mailIdKey(r, envelope))
      if (waiting !== undefined) {
        // the author's move (PROTOCOL.md, "Sequence reconciliation"): its copy at a higher number (the caller
        // verified the signature) replaces the one waiting, at a new cursor; the same copy or an older one is a duplicate
        const old = await tx.get(this.mail, r + SEP + pad(waiting))
        if (old === undefined || old.envelope.seq >= envelope.seq) continue
        await this.remove(tx, r, [waiting])
      }
      const use = (await tx.get(this.usage, r)) ?? { count: 0, bytes: 0 }
      const mine = (await tx.get(this.senderUsage, r + SEP + from)) ?? { count: 0, bytes: 0 }
      // a full mailbox (or share) refuses only its own copy; the other recipients still get theirs
      const room = this.shares.room(use, mine, bytes)
      if (room !== 'ok') {
        full.push(r)
        if (room === 'share') { shareFull.push(r); this.shares.refused(r, from) }
        continue
      }
      const cursor = ++this.cursor
      tx.put(this.mail, r + SEP + pad(cursor), { cursor, from, envelope, depositedAt: Date.now(), bytes })
      tx.put(this.mailIds, mailIdKey(r, envelope), cursor)
      tx.put(this.usage, r, { count: use.count + 1, bytes: use.bytes + bytes })
      tx.put(this.senderUsage, r + SEP + from, { count: mine.count + 1, bytes: mine.bytes + bytes })
      kept.push(r)
      stored++
    }
    if (stored > 0) tx.put(this.meta, 'cursor', this.cursor)
    return { stored, full, shareFull }
  }

  async fetch (recipient: string, after: number, limit: number): Promise<StoredFetchResult> {
    const now = Date.now()
    const items: StoredFetchResult['items'] = []
    let bytes = 0
    // row by row: expired rows (not swept yet) are skipped, and reading stops at the item
    // limit or before FETCH_MAX_BYTES (always at least one item), so an answer stays inside one frame
    for await (const r of this.mail.values({ gt: recipient + SEP + pad(after), lt: recipient + SEP + '\xff' })) {
      if (r.depositedAt + this.limits.ttlMs < now) continue
      if (items.length >= limit || (items.length > 0 && bytes + r.bytes > FETCH_MAX_BYTES)) return { items, more: true }
      items.push({ cursor: r.cursor, from: r.from, envelope: r.envelope, depositedAt: r.depositedAt })
      bytes += r.bytes
    }
    return { items, more: false }
  }

  /** Deletes the recipient's mail up to and including `upTo`. */
  async ack (recipient: string, upTo: number): Promise<number> {
    // keys only: remove() reads the rows inside the write anyway
    const keys = await this.mail.keys({ gt: recipient + SEP, lte: recipient + SEP + pad(upTo) }).all()
    const cursors = keys.map(k => Number(k.slice(recipient.length + SEP.length)))
    if (cursors.length === 0) return 0
    return await this.ackCursors(recipient, cursors)
  }

  /** Deletes exactly the recipient's items at `cursors` (those already gone are ignored). */
  async ackCursors (recipient: string, cursors: number[]): Promise<number> {
    return await this.gc.write(async (tx) => await this.remove(tx, recipient, cursors))
  }

  /**
   * Deletes the recipient's rows at `cursors` that are still there, read
   * inside the transaction: two acks, or an ack and the sweep, racing over
   * the same rows subtract them from the quota once.
   */
  private async remove (tx: Tx, recipient: string, cursors: number[]): Promise<number> {
    const rows: StoredMail[] = []
    for (const c of new Set(cursors)) {
      const r = await tx.get(this.mail, recipient + SEP + pad(c))
      if (r !== undefined) rows.push(r)
    }
    if (rows.length === 0) return 0
    for (const r of rows) {
      tx.del(this.mail, recipient + SEP + pad(r.cursor))
      tx.del(this.mailIds, mailIdKey(recipient, r.envelope))
    }
    await subtractUsage(tx, this.usage, recipient, rows)
    for (const sender of new Set(rows.map(r => r.from))) {
      await subtractUsage(tx, this.senderUsage, recipient + SEP + sender, rows.filter(r => r.from === sender))
    }
    return rows.length
  }

  async queued (recipient: string): Promise<number> { return (await this.gc.read(this.usage, recipient))?.count ?? 0 }

  private sweeping = false

  /**
   * Deletes mail older than the TTL; returns how many. Cursors grow with
   * deposit time, so each recipient's expired mail is a prefix of its rows:
   * the scan reads keys per recipient from the oldest and stops at the first
   * live one. Deleted in chunks; a sweep still running skips the next one.
   */
  async sweep (now = Date.now()): Promise<number> {
    if (this.sweeping) return 0
    this.sweeping = true
    try {
      let n = 0
      for (const to of await this.usage.keys().all()) {
        let expired: number[] = []
        const flush = async (): Promise<void> => {
          if (expired.length === 0) return
          const chunk = expired
          expired = []
          n += await this.gc.write(async (tx) => await this.remove(tx, to, chunk))
        }
        for await (const m of this.mail.values({ gt: to + SEP, lt: to + SEP + '\xff' })) {
          if (m.depositedAt + this.limits.ttlMs >= now) break
          expired.push(m.cursor)
          if (expired.length >= SWEEP_CHUNK) await flush()
        }
        await flush()
      }
      return n
    } finally {
      this.sweeping = false
    }
  }

  /**
   * The senders that hold the most of a recipient's mailbox, relative to
   * their share, with the deposits refused since start because their share
   * was full: who floods whom (for `stats`).
   */
  async topSenders (limit = 10): Promise<SenderUse[]> {
    const rows: SenderUse[] = []
    for await (const [key, u] of this.senderUsage.iterator()) {
      const [recipient = '', sender = ''] = key.split(SEP)
      rows.push(this.shares.describe(recipient, sender, u))
    }
    for (const r of this.shares.refusedPairs()) {
      if (!rows.some(x => x.recipient === r.recipient && x.sender === r.sender)) rows.push(this.shares.describe(r.recipient, r.sender, { count: 0, bytes: 0 }))
    }
    return rows.sort((a, b) => b.refused - a.refused || b.shareUsed - a.shareUsed).slice(0, limit)
  }

  /** Mail waiting per recipient. */
  async usageByRecipient (): Promise<Map<string, { count: number, bytes: number }>> {
    const out = new Map<string, { count: number, bytes: number }>()
    for await (const [k, u] of this.usage.iterator()) out.set(k, u)
    return out
  }

  watch (watcher: MailboxWatcher): () => void { return this.watchers.add(watcher) }

  async totals (): Promise<MailboxTotals> {
    let messages = 0; let bytes = 0; let recipients = 0
    for await (const u of this.usage.values()) { messages += u.count; bytes += u.bytes; recipients++ }
    return { messages, bytes, recipients }
  }

  // ---- federation -------------------------------------------------------------

  async listFedPeers (): Promise<FedPeer[]> { return await this.fedPeers.values().all() }
  async putFedPeer (peer: FedPeer): Promise<void> { await this.gc.write(async (tx) => { tx.put(this.fedPeers, peer.peerId, peer) }) }

  async removeFedPeer (peerId: string, bounces?: (dropped: FedQueueItem[]) => KeptNotice[]): Promise<number> {
    const keys = await this.fedQueue.keys({ gt: peerId + SEP, lt: peerId + SEP + '\xff' }).all()
    return await this.gc.write(async (tx) => {
      if (!await tx.has(this.fedPeers, peerId)) return -1
      tx.del(this.fedPeers, peerId)
      const dropped: FedQueueItem[] = []
      for (const k of keys) {
        const item = await tx.get(this.fedQueue, k)
        tx.del(this.fedQueue, k)
        if (item !== undefined) { dropped.push(item); tx.del(this.fedQueueIds, peerId + SEP + item.envelope.author + SEP + item.envelope.id) }
      }
      tx.del(this.fedQueueUse, peerId)
      if (bounces !== undefined && dropped.length > 0) await this.keepNotices(tx, bounces(dropped), MAX_KEPT_NOTICES)
      return keys.length
    })
  }

  async putFedInvite (invite: FedInvite): Promise<void> { await this.gc.write(async (tx) => { tx.put(this.fedInvites, invite.secretHash, invite) }) }
  async listFedInvites (): Promise<FedInvite[]> { return await this.fedInvites.values().all() }

  async useFedInvite (secretHash: string, by: string, now: number): Promise<FedInvite> {
    return await this.gc.write(async (tx) => {
      const used = usableFedInvite(await tx.get(this.fedInvites, secretHash), by, now)
      tx.put(this.fedInvites, secretHash, used)
      return used
    })
  }

  async enqueueFed (peer: string, to: string[], envelope: Envelope, bytes: number, quota: { messages: number,
    bytes: number }): Promise<'queued' | 'duplicate'> {
    return await this.gc.write(async (tx) => {
      const idKey = peer + SEP + envelope.author + SEP + envelope.id
      if (await tx.has(this.fedQueueIds, idKey)) return 'duplicate'
      const use = (await tx.get(this.fedQueueUse, peer)) ?? { count: 0, bytes: 0, seq: 0 }
      if (use.count + 1 > quota.messages || use.bytes + bytes > quota.bytes) {
        throw new ParleyError('ERR_QUOTA_EXCEEDED', 'the queue to that office\'s relay is full; try again later')
      }
      const paired = await tx.get(this.fedPeers, peer)
      if (paired === undefined) throw new ParleyError('ERR_FED_NOT_PAIRED', 'that office\'s relay is not paired with this one')
      const seq = fedSeqAfter(use.seq, paired.pairedAt)
      tx.put(this.fedQueue, peer + SEP + pad(seq), { seq, to, envelope, bytes, queuedAt: Date.now() })
      tx.put(this.fedQueueIds, idKey, seq)
      tx.put(this.fedQueueUse, peer, { count: use.count + 1, bytes: use.bytes + bytes, seq })
      return 'queued'
    })
  }

  async drainFed (peer: string, limit: number, maxBytes: number, send: (items: FedQueueItem[]) => Promise<number>): Promise<number | null> {
    if (this.fedDraining.has(peer)) return null
    this.fedDraining.add(peer)
    try {
      const items: FedQueueItem[] = []
      let bytes = 0
      for await (const item of this.fedQueue.values({ gt: peer + SEP, lt: peer + SEP + '\xff' })) {
        if (items.length >= limit || (items.length > 0 && bytes + item.bytes > maxBytes)) break
        items.push(item)
        bytes += item.bytes
      }
      if (items.length === 0) return 0
      const upTo = await send(items)
      const done = items.filter(i => i.seq <= upTo)
      if (done.length === 0) return 0
      await this.gc.write(async (tx) => { await this.dropFed(tx, peer, done) })
      return done.length
    } finally {
      this.fedDraining.delete(peer)
    }
  }

  private async dropFed (tx: Tx, peer: string, items: FedQueueItem[]): Promise<void> {
    const use = await tx.get(this.fedQueueUse, peer)
    let n = 0; let b = 0
    for (const i of items) {
      if (!await tx.has(this.fedQueue, peer + SEP + pad(i.seq))) continue
      tx.del(this.fedQueue, peer + SEP + pad(i.seq))
      tx.del(this.fedQueueIds, peer + SEP + i.envelope.author + SEP + i.envelope.id)
      n++; b += i.bytes
    }
    if (use !== undefined) tx.put(this.fedQueueUse, peer, { seq: use.seq, count: Math.max(0, use.count - n), bytes: Math.max(0, use.bytes - b) })
  }

  async expireFed (peer: string, before: number, bounces?: (expired: FedQueueItem[]) => KeptNotice[]): Promise<FedQueueItem[]> {
    const old: FedQueueItem[] = []
    for await (const item of this.fedQueue.values({ gt: peer + SEP, lt: peer + SEP + '\xff' })) {
      // queued in seq order, so in time order: the expired ones are a prefix
      if (item.queuedAt >= before) break
      old.push(item)
    }
    if (old.length > 0) {
      await this.gc.write(async (tx) => {
        await this.dropFed(tx, peer, old)
        if (bounces !== undefined) await this.keepNotices(tx, bounces(old), MAX_KEPT_NOTICES)
      })
    }
    return old
  }

  async addFedNotices (items: KeptNotice[], max: number): Promise<string[]> {
    if (items.length === 0) return []
    await this.gc.write(async (tx) => { await this.keepNotices(tx, items, max) })
    return [...new Set(items.map(i => i.device))]
  }

  private async keepNotices (tx: Tx, items: KeptNotice[], max: number): Promise<void> {
    const seqs = new Map<string, { next: number, first: number }>()
    for (const { device, notice } of items) {
      const s = seqs.get(device) ?? (await tx.get(this.fedNoticeSeq, device)) ?? { next: 1, first: 1 }
      tx.put(this.fedNotices, device + SEP + pad(s.next), { n: s.next, ...notice } as Notice)
      s.next++
      for (; s.next - s.first > max; s.first++) tx.del(this.fedNotices, device + SEP + pad(s.first))
      seqs.set(device, s)
    }
    for (const [device, s] of seqs) tx.put(this.fedNoticeSeq, device, s)
  }

  async takeFedNotices (device: string, ack: number, limit: number): Promise<Notice[]> {
    const s = await this.gc.read(this.fedNoticeSeq, device)
    if (s === undefined) return []
    if (ack >= s.first) {
      await this.gc.write(async (tx) => {
        const cur = await tx.get(this.fedNoticeSeq, device)
        if (cur === undefined) return
        const upTo = Math.min(ack, cur.next - 1)
        for (let n = cur.first; n <= upTo; n++) tx.del(this.fedNotices, device + SEP + pad(n))
        tx.put(this.fedNoticeSeq, device, { next: cur.next, first: Math.max(cur.first, upTo + 1) })
      })
    }
    return await this.fedNotices.values({ gt: device + SEP + pad(Math.max(0, ack)), lt: device + SEP + '\xff', limit }).all()
  }

  async fedQueueStats (): Promise<Map<string, { depth: number, bytes: number, oldestAt: number }>> {
    const out = new Map<string, { depth: number, bytes: number, oldestAt: number }>()
    for await (const [peer, u] of this.fedQueueUse.iterator()) {
      if (u.count === 0) continue
      const first = await this.fedQueue.values({ gt: peer + SEP, lt: peer + SEP + '\xff', limit: 1 }).all()
      out.set(peer, { depth: u.count, bytes: u.bytes, oldestAt: first[0]?.queuedAt ?? Date.now() })
    }
    return out
  }

  async receiveFed (peer: string, items: FedInboundItem[]): Promise<FedReceipt> {
    const kept: string[] = []
    const receipt = await this.gc.write(async (tx) => {
      const r = await takeFedBatch(items, (await tx.get(this.fedIn, peer)) ?? 0, (p) => this.admitted.has(p),
        async (mine, item) => await this.depositIn(tx, mine, fedSender(item), item.envelope, item.bytes, kept))
      tx.put(this.fedIn, peer, r.lastSeq)
      // replies to these authors go back to this relay
      for (const i of items) if (i.to.length > 0 && !this.admitted.has(i.envelope.author)) tx.put(this.fedRoutes, i.envelope.author, peer)
      return r
    })
    for (const r of kept) this.watchers.mail(r)
    return receipt
  }

  async fedRouteOf (author: string): Promise<string | undefined> { return await this.gc.read(this.fedRoutes, author) }

  async putListing (peerId: string, listing: Listing | null): Promise<void> {
    await this.gc.write(async (tx) => { if (listing === null) tx.del(this.listings, peerId); else tx.put(this.listings, peerId, listing) })
  }

  async listListings (): Promise<Listing[]> { return await this.listings.values().all() }

  // one process owns a LevelDB: the registry is this instance alone (kept for the same answers as PostgreSQL)
  async putInstance (instance: RelayInstance): Promise<void> {
    const all = (await this.getMeta('instances') ?? {}) as Record<string, RelayInstance>
    await this.putMeta('instances', { ...all, [instance.peerId]: instance })
  }

  async listInstances (): Promise<RelayInstance[]> {
    const all = (await this.getMeta('instances') ?? {}) as Record<string, RelayInstance>
    return Object.values(all).sort((a, b) => a.peerId < b.peerId ? -1 : 1)
  }
}
