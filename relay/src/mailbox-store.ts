/**
 * The relay's durable state on LevelDB: admitted users, invites and the
 * mailbox of sealed envelopes. It never sees plaintext: envelopes are stored
 * as the author sealed them. Deposits resolve only after an fsynced batch
 * (group commit), so an acked deposit survives kill -9.
 */
import { randomBytes } from 'node:crypto'
import { ParleyError } from '../../node/src/errors.js'
import { GroupCommit, jsonSublevel, openDb, type Db, type Sub, type Tx } from '../../node/src/store/group-commit.js'
import type { Envelope } from '../../node/src/protocol/wire.js'

export interface Invite { token: string, createdAt: number, expiresAt: number, maxUses: number, uses: number, note: string }
export interface RelayUser { peerId: string, admittedAt: number, via: 'invite' | 'allow-list', invite?: string }
interface StoredMail { cursor: number, from: string, envelope: Envelope, depositedAt: number, bytes: number }
interface Usage { count: number, bytes: number }

export interface MailboxLimits {
  /** how long undelivered mail is kept. @default 30 days */
  ttlMs: number
  /** per recipient. @default 50000 */
  quotaMessages: number
  /** per recipient. @default 256 MiB */
  quotaBytes: number
}

export const DEFAULT_MAILBOX_TTL_MS = 30 * 24 * 3600 * 1000
export const DEFAULT_QUOTA_MESSAGES = 50_000
export const DEFAULT_QUOTA_BYTES = 256 * 1024 * 1024

/** one fetch answer stays below this many envelope bytes (frames are limited to 1 MiB) */
export const FETCH_MAX_BYTES = 512 * 1024
const SEP = '!'
const pad = (n: number): string => n.toString().padStart(16, '0')

export class MailboxStore {
  private readonly gc: GroupCommit
  private readonly meta: Sub<unknown>
  private readonly users: Sub<RelayUser>
  private readonly invites: Sub<Invite>
  private readonly mail: Sub<StoredMail>
  private readonly mailIds: Sub<number>
  private readonly usage: Sub<Usage>
  private admitted = new Set<string>()
  private cursor = 0
  private started = false

  constructor (private readonly db: Db, private readonly limits: MailboxLimits) {
    this.gc = new GroupCommit(db)
    this.meta = jsonSublevel(db, 'meta')
    this.users = jsonSublevel(db, 'users')
    this.invites = jsonSublevel(db, 'invites')
    this.mail = jsonSublevel(db, 'mail')
    this.mailIds = jsonSublevel(db, 'mailid')
    this.usage = jsonSublevel(db, 'usage')
  }

  async start (): Promise<void> {
    if (this.started) return
    await openDb(this.db, 'relay')
    this.admitted = new Set(await this.users.keys().all())
    this.cursor = Number(await this.meta.get('cursor') ?? 0)
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.gc.drain()
    await this.db.close()
  }

  async getMeta (key: string): Promise<unknown> { return await this.gc.read(this.meta, key) }
  async putMeta (key: string, value: unknown): Promise<void> { await this.gc.write(async (tx) => { tx.put(this.meta, key, value) }) }

  isAdmitted (peerId: string): boolean { return this.admitted.has(peerId) }

  async admit (peerId: string, via: RelayUser['via'], invite?: string): Promise<RelayUser> {
    const user: RelayUser = { peerId, admittedAt: Date.now(), via, ...(invite !== undefined ? { invite } : {}) }
    await this.gc.write(async (tx) => { if (!(await tx.has(this.users, peerId))) tx.put(this.users, peerId, user) })
    this.admitted.add(peerId)
    return user
  }

  async removeUser (peerId: string): Promise<boolean> {
    const existed = this.admitted.delete(peerId)
    await this.gc.write(async (tx) => { tx.del(this.users, peerId) })
    return existed
  }

  async listUsers (): Promise<RelayUser[]> { return await this.users.values().all() }

  async createInvite (opts: { maxUses?: number, ttlMs?: number, note?: string } = {}): Promise<Invite> {
    const maxUses = opts.maxUses ?? 1
    const ttlMs = opts.ttlMs ?? 7 * 24 * 3600 * 1000
    if (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > 10_000) throw new ParleyError('ERR_INVALID_ARGUMENT', 'invite uses must be 1..10000')
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new ParleyError('ERR_INVALID_ARGUMENT', 'invite lifetime must be positive')
    const now = Date.now()
    const invite: Invite = { token: randomBytes(18).toString('base64url'), createdAt: now, expiresAt: now + ttlMs, maxUses, uses: 0, note: (opts.note ?? '').slice(0, 200) }
    await this.gc.write(async (tx) => { tx.put(this.invites, invite.token, invite) })
    return invite
  }

  /** Admits `peerId` with an invite; re-redeeming by an admitted peer is a no-op. */
  async redeem (token: string, peerId: string): Promise<RelayUser> {
    if (this.admitted.has(peerId)) return (await this.users.get(peerId)) as RelayUser
    return await this.gc.write(async (tx) => {
      const invite = await tx.get(this.invites, token)
      if (invite === undefined) throw new ParleyError('ERR_INVITE_INVALID', 'this invite token is not known to the relay')
      if (invite.expiresAt < Date.now()) throw new ParleyError('ERR_INVITE_INVALID', 'this invite has expired; ask the admin for a new one')
      if (invite.uses >= invite.maxUses) throw new ParleyError('ERR_INVITE_INVALID', 'this invite has been used up; ask the admin for a new one')
      tx.put(this.invites, token, { ...invite, uses: invite.uses + 1 })
      const user: RelayUser = { peerId, admittedAt: Date.now(), via: 'invite', invite: token.slice(0, 6) }
      tx.put(this.users, peerId, user)
      this.admitted.add(peerId)
      return user
    })
  }

  /** Keeps `envelope` for each recipient in one durable write; returns how many were new. */
  async deposit (to: string | string[], from: string, envelope: Envelope, bytes: number): Promise<number> {
    const recipients = typeof to === 'string' ? [to] : to
    return await this.gc.write(async (tx) => {
      let stored = 0
      const full: string[] = []
      for (const r of recipients) {
        if (await tx.has(this.mailIds, r + SEP + envelope.id)) continue
        const use = (await tx.get(this.usage, r)) ?? { count: 0, bytes: 0 }
        // a full mailbox refuses only its own copy; the other recipients still get theirs
        if (use.count + 1 > this.limits.quotaMessages || use.bytes + bytes > this.limits.quotaBytes) { full.push(r); continue }
        const cursor = ++this.cursor
        tx.put(this.mail, r + SEP + pad(cursor), { cursor, from, envelope, depositedAt: Date.now(), bytes })
        tx.put(this.mailIds, r + SEP + envelope.id, cursor)
        tx.put(this.usage, r, { count: use.count + 1, bytes: use.bytes + bytes })
        stored++
      }
      if (stored > 0) tx.put(this.meta, 'cursor', this.cursor)
      if (stored === 0 && full.length > 0) {
        throw new ParleyError('ERR_QUOTA_EXCEEDED', `the mailbox of ${full.map(r => r.slice(-12)).join(', ')} is full (${this.limits.quotaMessages} messages or ${this.limits.quotaBytes} bytes); it drains when they come online`)
      }
      return stored
    })
  }

  async fetch (recipient: string, after: number, limit: number): Promise<{ items: Array<{ cursor: number, from: string, envelope: Envelope }>, more: boolean }> {
    const rows = await this.mail.values({ gt: recipient + SEP + pad(after), lt: recipient + SEP + '\xff', limit: limit + 1 }).all()
    const now = Date.now()
    const live = rows.slice(0, limit).filter(r => r.depositedAt + this.limits.ttlMs >= now)
    // keep the answer well inside one frame: stop at FETCH_MAX_BYTES (but always return at least one item)
    const items: Array<{ cursor: number, from: string, envelope: Envelope }> = []
    let bytes = 0
    for (const r of live) {
      if (items.length > 0 && bytes + r.bytes > FETCH_MAX_BYTES) return { items, more: true }
      items.push({ cursor: r.cursor, from: r.from, envelope: r.envelope })
      bytes += r.bytes
    }
    return { items, more: rows.length > limit }
  }

  /** Deletes the recipient's mail up to and including `upTo`. */
  async ack (recipient: string, upTo: number): Promise<number> {
    const rows = await this.mail.values({ gt: recipient + SEP, lte: recipient + SEP + pad(upTo) }).all()
    if (rows.length === 0) return 0
    return await this.gc.write(async (tx) => this.remove(tx, recipient, rows, await tx.get(this.usage, recipient)))
  }

  /** Deletes exactly the recipient's items at `cursors` (those already gone are ignored). */
  async ackCursors (recipient: string, cursors: number[]): Promise<number> {
    return await this.gc.write(async (tx) => {
      const rows: StoredMail[] = []
      for (const c of new Set(cursors)) {
        const r = await tx.get(this.mail, recipient + SEP + pad(c))
        if (r !== undefined) rows.push(r)
      }
      return rows.length === 0 ? 0 : this.remove(tx, recipient, rows, await tx.get(this.usage, recipient))
    })
  }

  private remove (tx: Tx, recipient: string, rows: StoredMail[], use: Usage | undefined): number {
    for (const r of rows) {
      tx.del(this.mail, recipient + SEP + pad(r.cursor))
      tx.del(this.mailIds, recipient + SEP + r.envelope.id)
    }
    const left = { count: Math.max(0, (use?.count ?? 0) - rows.length), bytes: Math.max(0, (use?.bytes ?? 0) - rows.reduce((n, r) => n + r.bytes, 0)) }
    if (left.count === 0) tx.del(this.usage, recipient)
    else tx.put(this.usage, recipient, left)
    return rows.length
  }

  async queued (recipient: string): Promise<number> { return (await this.gc.read(this.usage, recipient))?.count ?? 0 }

  /** Deletes mail older than the TTL; returns how many. */
  async sweep (now = Date.now()): Promise<number> {
    const expired = new Map<string, StoredMail[]>()
    for await (const [key, m] of this.mail.iterator()) {
      if (m.depositedAt + this.limits.ttlMs >= now) continue
      const to = key.slice(0, key.indexOf(SEP))
      expired.set(to, [...(expired.get(to) ?? []), m])
    }
    let n = 0
    for (const [to, rows] of expired) n += await this.gc.write(async (tx) => this.remove(tx, to, rows, await tx.get(this.usage, to)))
    return n
  }

  async totals (): Promise<{ messages: number, bytes: number, recipients: number }> {
    let messages = 0; let bytes = 0; let recipients = 0
    for await (const u of this.usage.values()) { messages += u.count; bytes += u.bytes; recipients++ }
    return { messages, bytes, recipients }
  }
}
