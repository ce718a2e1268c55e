/**
 * MailboxStore on PostgreSQL (the `pg` client), shared by several relay
 * instances: admitted users, invites, mailboxes with their cursors, quotas and
 * per-sender shares, all in the database; each write is one transaction and
 * resolves once committed. Envelopes are stored as the authors sealed them.
 *
 * Several instances on one database:
 * - every write to a mailbox first locks that recipient's `relay_usage` row
 *   (several recipients: in sorted order, so no deadlock), and a deposit takes
 *   its cursors only under that lock: a recipient's cursors are committed in
 *   increasing order, so a fetch never sees cursor n+1 while n may still come
 *   (an ack `upTo` could otherwise delete mail nobody fetched);
 * - a deposit notifies `parley_mail` with the recipient's peer ID only (on
 *   commit), admissions and removals notify `parley_users`: each instance
 *   LISTENs on its own connection, keeps its admitted set (asked synchronously
 *   on every reservation) current, and wakes the watcher that holds the
 *   recipient's connection. After that connection was lost it reloads and
 *   tells its watchers to resync;
 * - the TTL sweep runs under a session advisory lock: one sweeper at a time.
 */
import pg from 'pg'
import { ParleyError, toParleyError } from '../../../core/errors.js'
import type { Logger } from '../../../core/util/log.js'
import type { Envelope } from '../../../core/protocol/envelope.js'
import type { FetchResult, MailItem } from '../../../core/protocol/relay-rpc.js'
import {
  FETCH_MAX_BYTES, type Invite, type InviteOptions, type MailboxLimits, type MailboxStore, type MailboxTotals, type MailboxWatcher,
  type RelayUser, type SharedAdminStore, type StoredFetchResult
} from './types.js'
import type { Person, PolicyOverrides } from '../../../core/protocol/admin-api.js'
import { newInvites } from './invites.js'
import { SenderShares, type SenderUse } from './sender-shares.js'
import { migrate, SWEEP_LOCK } from './pg-schema.js'
import { Watchers } from './watchers.js'
import { MAX_KEPT_NOTICES, type FederationStore, type FedInboundItem, type FedInvite, type FedPeer, type FedQueueItem, type FedReceipt, type KeptNotice,
  type Listing, type RelayInstance } from '../federation/types.js'
import type { Notice } from '../../../core/protocol/fed-notice.js'
import { fedSender, fedSeqAfter, takeFedBatch, usableFedInvite } from '../federation/rules.js'

/** rows deleted per transaction by the TTL sweep */
const SWEEP_CHUNK = 1000
const MAIL_CHANNEL = 'parley_mail'
const USERS_CHANNEL = 'parley_users'
const POLICY_CHANNEL = 'parley_policy'
const RECONNECT_MIN_MS = 250
const RECONNECT_MAX_MS = 5000
/** a transaction that lost a deadlock or a serialisation race is run again this many times */
const TX_ATTEMPTS = 4

/** int8 (counts, times, cursors) as numbers: every value the relay keeps is below 2^53 */
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')
} as unknown as pg.CustomTypesConfig

export interface PgMailboxStoreInit {
  /** postgres://… (a Unix socket: postgres://user@/db?host=/run/postgresql) */
  url: string
  /** connections in the pool. @default 10 */
  poolSize?: number
  log?: Logger
}

/** The URL without its password, for messages and logs. */
export function redactUrl (url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*):[^@]*@/, '$1:***@')
}

const UNAVAILABLE = /^(08|57P0[1-3]|53300)/
const NET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])

/** A pg error as a ParleyError: the database unreachable or going down is ERR_STORE_UNAVAILABLE (try again), the rest ERR_STORE. */
export function pgError (err: unknown, where: string): ParleyError {
  if (err instanceof ParleyError) return err
  const code = (err as { code?: string }).code ?? ''
  const message = (err as Error).message ?? String(err)
  if (UNAVAILABLE.test(code) || NET_ERRORS.has(code) || /Connection terminated|connection timeout|Client has encountered a connection error/i.test(message)) {
    return new ParleyError('ERR_STORE_UNAVAILABLE', `the relay database ${where} is not reachable (${message}); retrying`, { cause: err })
  }
  return new ParleyError('ERR_STORE', `relay database ${where}: ${message}`, { cause: err })
}

interface InviteRow {
  token: string, created_at: number, expires_at: number, max_uses: number, uses: number, note: string,
  revoked_at: number | null, redeemed_by: Array<{ peerId: string, at: number }>
}
const inviteOf = (r: InviteRow): Invite => ({
  token: r.token, createdAt: r.created_at, expiresAt: r.expires_at, maxUses: r.max_uses, uses: r.uses, note: r.note,
  ...(r.redeemed_by.length > 0 ? { redeemedBy: r.redeemed_by } : {}),
  ...(r.revoked_at !== null ? { revokedAt: r.revoked_at } : {})
})

interface UserRow { peer_id: string, admitted_at: number, via: RelayUser['via'], invite: string | null }
const userOf = (r: UserRow): RelayUser => ({ peerId: r.peer_id, admittedAt: r.admitted_at, via: r.via, ...(r.invite !== null ? { invite: r.invite } : {}) })

export class PgMailboxStore implements MailboxStore, FederationStore, SharedAdminStore {
  private pool?: pg.Pool
  private listener?: pg.Client
  private admitted = new Set<string>()
  private shares: SenderShares
  private readonly watchers = new Watchers()
  private readonly where: string
  private started = false
  private stopping = false
  private reconnectTimer?: NodeJS.Timeout
  private reconnectMs = RECONNECT_MIN_MS
  private sweeping = false
  private readonly refreshing = new Map<string, Promise<void>>()
  private readonly policyListeners = new Set<() => void>()

  constructor (private readonly init: PgMailboxStoreInit, private limits: MailboxLimits) {
    this.shares = new SenderShares(limits)
    this.where = redactUrl(init.url)
  }

  async start (): Promise<void> {
    if (this.started) return
    this.stopping = false
    const pool = new pg.Pool({ connectionString: this.init.url, max: this.init.poolSize ?? 10, types, connectionTimeoutMillis: 10_000 })
    // an idle connection dropped by the server (restart, failover) must not crash the relay: the pool replaces it
    pool.on('error', (err) => { this.init.log?.warn('relay database connection lost', { err: err.message }) })
    try {
      const client = await pool.connect()
      try { await migrate(client, this.where) } finally { client.release() }
      this.pool = pool
      // listening first: an admission committed elsewhere between the load and the LISTEN would be missed
      await this.listen()
      await this.loadAdmitted()
    } catch (err) {
      this.pool = undefined
      await this.closeListener()
      await pool.end().catch(() => {})
      throw pgError(err, this.where)
    }
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.stopping = true
    clearTimeout(this.reconnectTimer)
    await this.closeListener()
    const pool = this.pool
    this.pool = undefined
    await pool?.end()
  }

  // ---- notifications ------------------------------------------------------

  private async listen (): Promise<void> {
    const client = new pg.Client({ connectionString: this.init.url, types })
    client.on('error', (err) => { this.listenerLost(client, err) })
    client.on('end', () => { this.listenerLost(client) })
    client.on('notification', (n) => { this.onNotification(n.channel, n.payload ?? '') })
    await client.connect()
    await client.query(`LISTEN ${MAIL_CHANNEL}; LISTEN ${USERS_CHANNEL}; LISTEN ${POLICY_CHANNEL}`)
    this.listener = client
    this.reconnectMs = RECONNECT_MIN_MS
  }

  private async closeListener (): Promise<void> {
    const l = this.listener
    this.listener = undefined
    if (l !== undefined) await l.end().catch(() => {})
  }

  private listenerLost (client: pg.Client, err?: Error): void {
    if (this.listener !== client) return
    this.listener = undefined
    client.end().catch(() => {})
    if (this.stopping) return
    this.init.log?.warn('relay database notifications lost; reconnecting', { err: err?.message })
    this.scheduleReconnect()
  }

  private scheduleReconnect (): void {
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = setTimeout(() => {
      void (async () => {
        try {
          await this.listen()
          // what happened while we were not listening: admissions and removals, and mail
          await this.loadAdmitted()
          this.init.log?.info('relay database notifications back')
          this.watchers.resync()
          for (const fn of this.policyListeners) fn()
        } catch (err) {
          await this.closeListener()
          if (this.stopping) return
          this.reconnectMs = Math.min(this.reconnectMs * 2, RECONNECT_MAX_MS)
          this.init.log?.debug('relay database still unreachable', { err: (err as Error).message, retryInMs: this.reconnectMs })
          this.scheduleReconnect()
        }
      })()
    }, this.reconnectMs)
    this.reconnectTimer.unref()
  }

  private onNotification (channel: string, peerId: string): void {
    if (channel === MAIL_CHANNEL) { this.watchers.mail(peerId); return }
    if (channel === USERS_CHANNEL) this.refreshUser(peerId)
    if (channel === POLICY_CHANNEL) for (const fn of this.policyListeners) fn()
  }

  /**
   * Another instance (or this one) admitted or removed `peerId`: the admitted
   * set follows the database. Notifications for one peer are handled one
   * after the other (each re-reads the row), so an admit closely followed by a
   * removal cannot end with the older answer applied last.
   */
  private refreshUser (peerId: string): void {
    const prev = this.refreshing.get(peerId) ?? Promise.resolve()
    const next = prev.then(async () => { await this.readUser(peerId) })
    this.refreshing.set(peerId, next)
    void next.finally(() => { if (this.refreshing.get(peerId) === next) this.refreshing.delete(peerId) })
  }

  private async readUser (peerId: string): Promise<void> {
    try {
      const { rows } = await this.q('SELECT 1 FROM relay_users WHERE peer_id = $1', [peerId])
      if (rows.length > 0) { this.admitted.add(peerId); return }
      if (this.admitted.delete(peerId)) this.watchers.removed(peerId)
    } catch (err) {
      this.init.log?.warn('cannot refresh an admission from the relay database', { err: toParleyError(err).message })
    }
  }

  private async loadAdmitted (): Promise<void> {
    const { rows } = await this.q<{ peer_id: string }>('SELECT peer_id FROM relay_users')
    const now = new Set(rows.map(r => r.peer_id))
    const before = this.admitted
    this.admitted = now
    for (const p of before) if (!now.has(p)) this.watchers.removed(p)
  }

  watch (watcher: MailboxWatcher): () => void { return this.watchers.add(watcher) }

  // ---- queries --------------------------------------------------------------

  private db (): pg.Pool {
    if (this.pool === undefined) throw new ParleyError('ERR_NOT_STARTED', 'the relay database is not open')
    return this.pool
  }

  private async q<R extends pg.QueryResultRow = pg.QueryResultRow> (sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await this.db().query<R>(sql, params)
    } catch (err) {
      throw pgError(err, this.where)
    }
  }

  /**
   * A pooled connection for a transaction. The server going away while it is
   * checked out fails its query (which the caller sees) and also emits
   * 'error' on it, which nobody else listens to then: kept from becoming an
   * uncaught exception here.
   */
  private async checkout (): Promise<{ client: pg.PoolClient, release: (destroy: boolean) => void }> {
    let client: pg.PoolClient
    try { client = await this.db().connect() } catch (err) { throw pgError(err, this.where) }
    const onError = (err: Error): void => { this.init.log?.debug('relay database connection failed mid-request', { err: err.message }) }
    client.on('error', onError)
    return { client, release: (destroy) => { client.off('error', onError); client.release(destroy) } }
  }

  /** Runs `fn` in one transaction; run again on a deadlock or serialisation failure. */
  private async tx<T> (fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const { client, release } = await this.checkout()
      let broken = false
      try {
        await client.query('BEGIN')
        const result = await fn(client)
        await client.query('COMMIT')
        return result
      } catch (err) {
        await client.query('ROLLBACK').catch(() => { broken = true })
        const code = (err as { code?: string }).code
        if ((code === '40P01' || code === '40001') && attempt < TX_ATTEMPTS) continue
        throw pgError(err, this.where)
      } finally {
        release(broken)
      }
    }
  }

  async getMeta (key: string): Promise<unknown> {
    const { rows } = await this.q<{ value: unknown }>('SELECT value FROM relay_meta WHERE key = $1', [key])
    return rows[0]?.value
  }

  async putMeta (key: string, value: unknown): Promise<void> {
    await this.q('INSERT INTO relay_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', [key, JSON.stringify(value)])
  }

  // ---- admission --------------------------------------------------------------

  isAdmitted (peerId: string): boolean { return this.admitted.has(peerId) }

  admittedCount (): number { return this.admitted.size }

  /** New retention and quotas apply to the next deposit, fetch and sweep of this instance (no restart). */
  setLimits (limits: MailboxLimits): void {
    // a limit not given (the sender share) keeps its value
    this.limits = { ...this.limits, ...limits }
    this.shares = this.shares.withLimits(this.limits)
  }

  async admit (peerId: string, via: RelayUser['via'], invite?: string): Promise<RelayUser> {
    const kept = await this.tx(async (c) => {
      await c.query(`INSERT INTO relay_users (peer_id, admitted_at, via, invite) VALUES ($1, $2, $3, $4) ON CONFLICT (peer_id) DO NOTHING`,
        [peerId, Date.now(), via, invite ?? null])
      await c.query('SELECT pg_notify($1, $2)', [USERS_CHANNEL, peerId])
      return (await c.query<UserRow>('SELECT * FROM relay_users WHERE peer_id = $1', [peerId])).rows[0]!
    })
    this.admitted.add(peerId)
    return userOf(kept)
  }

  async removeUser (peerId: string): Promise<boolean> {
    const existed = await this.tx(async (c) => {
      const { rowCount } = await c.query('DELETE FROM relay_users WHERE peer_id = $1', [peerId])
      await c.query('SELECT pg_notify($1, $2)', [USERS_CHANNEL, peerId])
      return (rowCount ?? 0) > 0
    })
    if (this.admitted.delete(peerId) || existed) this.watchers.removed(peerId)
    return existed
  }

  async listUsers (): Promise<RelayUser[]> {
    return (await this.q<UserRow>('SELECT * FROM relay_users ORDER BY admitted_at, peer_id')).rows.map(userOf)
  }

  async createInvite (opts: InviteOptions = {}): Promise<Invite> {
    return (await this.createInvites([opts]))[0] as Invite
  }

  /** Several invites in one statement (directory import: one per person). */
  async createInvites (list: InviteOptions[]): Promise<Invite[]> {
    const now = Date.now()
    const invites = newInvites(list, now)
    if (invites.length === 0) return []
    await this.q(
      `INSERT INTO relay_invites (token, created_at, expires_at, max_uses, uses, note)
       SELECT t, $2, e, m, 0, n FROM unnest($1::text[], $3::bigint[], $4::int[], $5::text[]) AS d(t, e, m, n)`,
      [invites.map(i => i.token), now, invites.map(i => i.expiresAt), invites.map(i => i.maxUses), invites.map(i => i.note)])
    return invites
  }

  async listInvites (): Promise<Invite[]> {
    return (await this.q<InviteRow>('SELECT * FROM relay_invites ORDER BY created_at, token')).rows.map(inviteOf)
  }

  /** Revokes an invite (kept, with who redeemed it); undefined when unknown. */
  async revokeInvite (token: string): Promise<Invite | undefined> {
    const { rows } = await this.q<InviteRow>('UPDATE relay_invites SET revoked_at = coalesce(revoked_at, $2) WHERE token = $1 RETURNING *', [token, Date.now()])
    return rows[0] === undefined ? undefined : inviteOf(rows[0])
  }

  async redeem (token: string, peerId: string): Promise<RelayUser> {
    const user = await this.tx(async (c) => {
      const known = (await c.query<UserRow>('SELECT * FROM relay_users WHERE peer_id = $1', [peerId])).rows[0]
      if (known !== undefined) return known
      const invite = (await c.query<{ expires_at: number, uses: number, max_uses: number, revoked_at: number | null }>(
        'SELECT expires_at, uses, max_uses, revoked_at FROM relay_invites WHERE token = $1 FOR UPDATE', [token])).rows[0]
      if (invite === undefined) throw new ParleyError('ERR_INVITE_INVALID', 'this invite token is not known to the relay')
      if (invite.revoked_at !== null) throw new ParleyError('ERR_INVITE_INVALID', 'this invite was revoked by the admin; ask for a new one')
      if (invite.expires_at < Date.now()) throw new ParleyError('ERR_INVITE_INVALID', 'this invite has expired; ask the admin for a new one')
      if (invite.uses >= invite.max_uses) throw new ParleyError('ERR_INVITE_INVALID', 'this invite has been used up; ask the admin for a new one')
      // who redeemed it, in the same write as the use it took
      await c.query(`UPDATE relay_invites SET uses = uses + 1,
        redeemed_by = redeemed_by || jsonb_build_array(jsonb_build_object('peerId', $2::text, 'at', $3::bigint)) WHERE token = $1`, [token, peerId, Date.now()])
      const row = (await c.query<UserRow>(
        `INSERT INTO relay_users (peer_id, admitted_at, via, invite) VALUES ($1, $2, 'invite', $3)
         ON CONFLICT (peer_id) DO UPDATE SET peer_id = EXCLUDED.peer_id RETURNING *`, [peerId, Date.now(), token.slice(0, 6)])).rows[0]!
      await c.query('SELECT pg_notify($1, $2)', [USERS_CHANNEL, peerId])
      return row
    })
    // admitted only once the record is committed
    this.admitted.add(peerId)
    return userOf(user)
  }

  // ---- mailboxes ------------------------------------------------------------------

  async deposit (to: string | string[], from: string, envelope: Envelope, bytes: number): Promise<number> {
    return (await this.depositAll(to, from, envelope, bytes)).stored
  }

  /** Locks the recipients' usage rows in sorted order (made when missing): every write to a mailbox does this first. */
  private async lockMailboxes (c: pg.PoolClient, recipients: string[]): Promise<Map<string, { count: number, bytes: number }>> {
    const sorted = [...new Set(recipients)].sort()
    await c.query('INSERT INTO relay_usage (recipient) SELECT r FROM unnest($1::text[]) AS r ORDER BY r ON CONFLICT DO NOTHING', [sorted])
    const { rows } = await c.query<{ recipient: string, count: number, bytes: number }>(
      'SELECT recipient, count, bytes FROM relay_usage WHERE recipient = ANY($1) ORDER BY recipient FOR UPDATE', [sorted])
    return new Map(rows.map(r => [r.recipient, { count: r.count, bytes: r.bytes }]))
  }

  async depositAll (to: string | string[], from: string, envelope: Envelope, bytes: number): Promise<{ stored: number, full: string[], shareFull: string[] }> {
    const recipients = [...new Set(typeof to === 'string' ? [to] : to)]
    return await this.tx(async (c) => {
      const r = await this.depositIn(c, recipients, from, envelope, bytes)
      if (r.stored === 0 && r.full.length > 0) throw this.shares.refusal(r.full, r.shareFull)
      return r
    })
  }

  /** One deposit inside a transaction; a full mailbox refuses only its own copy (never throws for it). */
  private async depositIn (c: pg.PoolClient, recipients: string[], from: string, envelope: Envelope, bytes: number): Promise<{ stored: number,
    full: string[], shareFull: string[] }> {
    if (recipients.length === 0) return { stored: 0, full: [], shareFull: [] }
    const text = JSON.stringify(envelope)
    const usage = await this.lockMailboxes(c, recipients)
    const dups = await c.query<{ recipient: string, cursor: string, envelope: string }>(
      'SELECT recipient, cursor, envelope FROM relay_mail WHERE recipient = ANY($1) AND author = $2 AND envelope_id = $3',
      [recipients, envelope.author, envelope.id])
    // the author's move (PROTOCOL.md, "Sequence reconciliation"): its copy at a higher number (the caller verified the
    // signature) replaces the one waiting, at a new cursor; the same copy or an older one is a duplicate
    const older = dups.rows.filter(r => (JSON.parse(r.envelope) as Envelope).seq < envelope.seq)
    if (older.length > 0) {
      const { rows } = await c.query<{ recipient: string, sender: string, bytes: number }>(
        `DELETE FROM relay_mail m USING unnest($1::text[], $2::bigint[]) AS d(r, k) WHERE m.recipient = d.r AND m.cursor = d.k
         RETURNING m.recipient, m.sender, m.bytes`, [older.map(r => r.recipient), older.map(r => r.cursor)])
      await this.subtract(c, rows)
      for (const r of rows) {
        const u = usage.get(r.recipient)
        if (u !== undefined) usage.set(r.recipient, { count: Math.max(0, u.count - 1), bytes: Math.max(0, u.bytes - r.bytes) })
      }
    }
    const dup = new Set(dups.rows.filter(r => !older.includes(r)).map(r => r.recipient))
    const senderRows = await c.query<{ recipient: string, count: number, bytes: number }>(
      'SELECT recipient, count, bytes FROM relay_sender_usage WHERE recipient = ANY($1) AND sender = $2', [recipients, from])
    const mine = new Map(senderRows.rows.map(r => [r.recipient, r]))
    const keep: string[] = []
    const full: string[] = []
    const shareFull: string[] = []
    for (const r of recipients) {
      if (dup.has(r)) continue
      const room = this.shares.room(usage.get(r) ?? { count: 0, bytes: 0 }, mine.get(r) ?? { count: 0, bytes: 0 }, bytes)
      if (room !== 'ok') {
        full.push(r)
        if (room === 'share') { shareFull.push(r); this.shares.refused(r, from) }
        continue
      }
      keep.push(r)
    }
    if (keep.length === 0) return { stored: 0, full, shareFull }
    // cursors taken now, under the mailboxes' locks, in recipient order
    await c.query(
      `INSERT INTO relay_mail (recipient, cursor, sender, author, envelope_id, envelope, deposited_at, bytes)
       SELECT r, nextval('relay_mail_cursor'), $2, $3, $4, $5, $6, $7 FROM unnest($1::text[]) WITH ORDINALITY AS t(r, i) ORDER BY i`,
      [keep, from, envelope.author, envelope.id, text, Date.now(), bytes])
    await c.query('UPDATE relay_usage SET count = count + 1, bytes = bytes + $2 WHERE recipient = ANY($1)', [keep, bytes])
    await c.query(
      `INSERT INTO relay_sender_usage (recipient, sender, count, bytes) SELECT r, $2, 1, $3 FROM unnest($1::text[]) AS r
       ON CONFLICT (recipient, sender) DO UPDATE SET count = relay_sender_usage.count + 1, bytes = relay_sender_usage.bytes + EXCLUDED.bytes`,
      [keep, from, bytes])
    // delivered to the listeners (every instance, this one too) when the transaction commits: the peer ID only
    await c.query('SELECT pg_notify($1, r) FROM unnest($2::text[]) AS r', [MAIL_CHANNEL, keep])
    return { stored: keep.length, full, shareFull }
  }

  async fetch (recipient: string, after: number, limit: number): Promise<StoredFetchResult> {
    const live = Date.now() - this.limits.ttlMs
    // sizes first, so an answer stays below FETCH_MAX_BYTES without reading envelopes it will not send
    const { rows } = await this.q<{ cursor: number, bytes: number }>(
      'SELECT cursor, bytes FROM relay_mail WHERE recipient = $1 AND cursor > $2 AND deposited_at >= $3 ORDER BY cursor LIMIT $4',
      [recipient, after, live, limit + 1])
    const take: number[] = []
    let total = 0
    let more = false
    for (const r of rows) {
      if (take.length >= limit || (take.length > 0 && total + r.bytes > FETCH_MAX_BYTES)) { more = true; break }
      take.push(r.cursor)
      total += r.bytes
    }
    if (take.length === 0) return { items: [], more: false }
    const got = await this.q<{ cursor: number, sender: string, envelope: string, deposited_at: number }>(
      'SELECT cursor, sender, envelope, deposited_at FROM relay_mail WHERE recipient = $1 AND cursor = ANY($2::bigint[]) ORDER BY cursor', [recipient, take])
    const items: StoredFetchResult['items'] = got.rows.map(r =>
      ({ cursor: r.cursor, from: r.sender, envelope: JSON.parse(r.envelope) as Envelope, depositedAt: Number(r.deposited_at) }))
    return { items, more }
  }

  async ack (recipient: string, upTo: number): Promise<number> {
    return await this.tx(async (c) => {
      await this.lockMailboxes(c, [recipient])
      const { rows } = await c.query<{ sender: string, bytes: number }>(
        'DELETE FROM relay_mail WHERE recipient = $1 AND cursor <= $2 RETURNING sender, bytes', [recipient, upTo])
      await this.subtract(c, rows.map(r => ({ recipient, ...r })))
      return rows.length
    })
  }

  async ackCursors (recipient: string, cursors: number[]): Promise<number> {
    if (cursors.length === 0) return 0
    return await this.tx(async (c) => {
      await this.lockMailboxes(c, [recipient])
      const { rows } = await c.query<{ sender: string, bytes: number }>(
        'DELETE FROM relay_mail WHERE recipient = $1 AND cursor = ANY($2::bigint[]) RETURNING sender, bytes', [recipient, [...new Set(cursors)]])
      await this.subtract(c, rows.map(r => ({ recipient, ...r })))
      return rows.length
    })
  }

  /** Gives the deleted rows' room back to the mailboxes and their senders' shares (inside the transaction that deleted them). */
  private async subtract (c: pg.PoolClient, rows: Array<{ recipient: string, sender: string, bytes: number }>): Promise<void> {
    if (rows.length === 0) return
    const sum = (key: (r: typeof rows[number]) => string): Map<string, { n: number, b: number, r: typeof rows[number] }> => {
      const m = new Map<string, { n: number, b: number, r: typeof rows[number] }>()
      for (const r of rows) { const k = key(r); const u = m.get(k) ?? { n: 0, b: 0, r }; u.n++; u.b += r.bytes; m.set(k, u) }
      return m
    }
    const boxes = [...sum(r => r.recipient).values()]
    await c.query(
      `UPDATE relay_usage u SET count = greatest(0, u.count - d.n), bytes = greatest(0, u.bytes - d.b)
       FROM unnest($1::text[], $2::int[], $3::bigint[]) AS d(r, n, b) WHERE u.recipient = d.r`,
      [boxes.map(x => x.r.recipient), boxes.map(x => x.n), boxes.map(x => x.b)])
    const pairs = [...sum(r => r.recipient + ' ' + r.sender).values()]
    await c.query(
      `UPDATE relay_sender_usage u SET count = greatest(0, u.count - d.n), bytes = greatest(0, u.bytes - d.b)
       FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[]) AS d(r, s, n, b) WHERE u.recipient = d.r AND u.sender = d.s`,
      [pairs.map(x => x.r.recipient), pairs.map(x => x.r.sender), pairs.map(x => x.n), pairs.map(x => x.b)])
    await c.query('DELETE FROM relay_sender_usage WHERE recipient = ANY($1) AND count = 0', [boxes.map(x => x.r.recipient)])
  }

  async queued (recipient: string): Promise<number> {
    return (await this.q<{ count: number }>('SELECT count FROM relay_usage WHERE recipient = $1', [recipient])).rows[0]?.count ?? 0
  }

  /**
   * Deletes mail older than the TTL, in chunks, while holding the sweep's
   * advisory lock: with several instances on the database, one sweeps and
   * the others skip (return 0) until it is done. A sweep still running in
   * this instance also skips the next.
   */
  async sweep (now = Date.now()): Promise<number> {
    if (this.sweeping) return 0
    this.sweeping = true
    let client: pg.PoolClient | undefined
    let release: ((destroy: boolean) => void) | undefined
    let locked = false
    try {
      ({ client, release } = await this.checkout())
      locked = (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [SWEEP_LOCK.toString()])).rows[0]?.ok === true
      if (!locked) { this.init.log?.debug('sweep skipped: another relay instance is sweeping'); return 0 }
      const cut = now - this.limits.ttlMs
      let n = 0
      for (;;) {
        const { rows } = await client.query<{ recipient: string, cursor: number }>(
          'SELECT recipient, cursor FROM relay_mail WHERE deposited_at < $1 ORDER BY deposited_at LIMIT $2', [cut, SWEEP_CHUNK])
        if (rows.length === 0) break
        const c = client
        await c.query('BEGIN')
        try {
          await this.lockMailboxes(c, rows.map(r => r.recipient))
          const gone = await c.query<{ recipient: string, sender: string, bytes: number }>(
            `DELETE FROM relay_mail m USING unnest($1::text[], $2::bigint[]) AS d(r, c)
             WHERE m.recipient = d.r AND m.cursor = d.c AND m.deposited_at < $3 RETURNING m.recipient, m.sender, m.bytes`,
            [rows.map(r => r.recipient), rows.map(r => r.cursor), cut])
          await this.subtract(c, gone.rows)
          await c.query('COMMIT')
          n += gone.rows.length
        } catch (err) {
          await c.query('ROLLBACK').catch(() => {})
          throw err
        }
      }
      return n
    } catch (err) {
      throw pgError(err, this.where)
    } finally {
      if (client !== undefined) {
        if (locked) await client.query('SELECT pg_advisory_unlock($1)', [SWEEP_LOCK.toString()]).catch(() => {})
        // a connection that may still hold the lock is closed, not reused (closing releases it)
        release?.(locked)
      }
      this.sweeping = false
    }
  }

  async topSenders (limit = 10): Promise<SenderUse[]> {
    const { rows } = await this.q<{ recipient: string, sender: string, count: number, bytes: number }>(
      `SELECT recipient, sender, count, bytes FROM relay_sender_usage
       ORDER BY greatest(count::float8 / $1, bytes::float8 / $2) DESC LIMIT $3`, [this.shares.shareMessages, this.shares.shareBytes, limit])
    const out = rows.map(r => this.shares.describe(r.recipient, r.sender, { count: r.count, bytes: r.bytes }))
    for (const p of this.shares.refusedPairs()) {
      if (!out.some(x => x.recipient === p.recipient && x.sender === p.sender)) out.push(this.shares.describe(p.recipient, p.sender, { count: 0, bytes: 0 }))
    }
    return out.sort((a, b) => b.refused - a.refused || b.shareUsed - a.shareUsed).slice(0, limit)
  }

  async usageByRecipient (): Promise<Map<string, { count: number, bytes: number }>> {
    const { rows } = await this.q<{ recipient: string, count: number, bytes: number }>('SELECT recipient, count, bytes FROM relay_usage WHERE count > 0')
    return new Map(rows.map(r => [r.recipient, { count: r.count, bytes: r.bytes }]))
  }

  async totals (): Promise<MailboxTotals> {
    const { rows } = await this.q<{ messages: number, bytes: number, recipients: number }>(
      `SELECT coalesce(sum(count), 0)::int8 AS messages, coalesce(sum(bytes), 0)::int8 AS bytes,
       count(*) FILTER (WHERE count > 0)::int8 AS recipients FROM relay_usage`)
    const r = rows[0]!
    return { messages: r.messages, bytes: r.bytes, recipients: r.recipients }
  }

  // ---- federation -------------------------------------------------------------

  async listFedPeers (): Promise<FedPeer[]> {
    return (await this.q<{ peer: FedPeer }>('SELECT peer FROM relay_fed_peers ORDER BY peer_id')).rows.map(r => r.peer)
  }

  async putFedPeer (peer: FedPeer): Promise<void> {
    await this.tx(async (c) => {
      await c.query('INSERT INTO relay_fed_peers (peer_id, peer) VALUES ($1, $2) ON CONFLICT (peer_id) DO UPDATE SET peer = EXCLUDED.peer',
        [peer.peerId, JSON.stringify(peer)])
      await c.query('INSERT INTO relay_fed_drain (peer_id) VALUES ($1) ON CONFLICT DO NOTHING', [peer.peerId])
    })
  }

  async removeFedPeer (peerId: string, bounces?: (dropped: FedQueueItem[]) => KeptNotice[]): Promise<number> {
    return await this.tx(async (c) => {
      const { rowCount } = await c.query('DELETE FROM relay_fed_peers WHERE peer_id = $1', [peerId])
      if ((rowCount ?? 0) === 0) return -1
      const { rows } = await c.query<{ seq: number, recipients: string[], envelope: string, bytes: number, queued_at: number }>(
        'DELETE FROM relay_fed_queue WHERE peer_id = $1 RETURNING seq, recipients, envelope, bytes, queued_at', [peerId])
      const dropped = rows.map(r => ({ seq: r.seq, to: r.recipients, envelope: JSON.parse(r.envelope) as Envelope, bytes: r.bytes, queuedAt: r.queued_at }))
        .sort((a, b) => a.seq - b.seq)
      // the senders are told in the same transaction (a crash cannot drop the items and lose their bounces)
      if (dropped.length > 0 && bounces !== undefined) await this.keepNotices(c, bounces(dropped), MAX_KEPT_NOTICES)
      return dropped.length
    })
  }

  async putFedInvite (invite: FedInvite): Promise<void> {
    await this.q('INSERT INTO relay_fed_invites (secret_hash, invite) VALUES ($1, $2) ON CONFLICT (secret_hash) DO UPDATE SET invite = EXCLUDED.invite',
      [invite.secretHash, JSON.stringify(invite)])
  }

  async listFedInvites (): Promise<FedInvite[]> {
    return (await this.q<{ invite: FedInvite }>('SELECT invite FROM relay_fed_invites')).rows.map(r => r.invite)
  }

  async useFedInvite (secretHash: string, by: string, now: number): Promise<FedInvite> {
    return await this.tx(async (c) => {
      const row = (await c.query<{ invite: FedInvite }>('SELECT invite FROM relay_fed_invites WHERE secret_hash = $1 FOR UPDATE', [secretHash])).rows[0]
      const used = usableFedInvite(row?.invite, by, now)
      await c.query('UPDATE relay_fed_invites SET invite = $2 WHERE secret_hash = $1', [secretHash, JSON.stringify(used)])
      return used
    })
  }

  async enqueueFed (peer: string, to: string[], envelope: Envelope, bytes: number, quota: { messages: number,
    bytes: number }): Promise<'queued' | 'duplicate'> {
    return await this.tx(async (c) => {
      // the peer's row first: enqueues to one relay serialise here, so their seqs commit in order
      const locked = await c.query<{ next_seq: number }>('SELECT next_seq FROM relay_fed_peers WHERE peer_id = $1 FOR UPDATE', [peer])
      if (locked.rows.length === 0) throw new ParleyError('ERR_FED_NOT_PAIRED', 'that office\'s relay is not paired with this one')
      const dup = await c.query('SELECT 1 FROM relay_fed_queue WHERE peer_id = $1 AND author = $2 AND envelope_id = $3', [peer, envelope.author, envelope.id])
      if (dup.rows.length > 0) return 'duplicate'
      const use = (await c.query<{ n: number, b: number }>(
        'SELECT count(*)::int8 AS n, coalesce(sum(bytes), 0)::int8 AS b FROM relay_fed_queue WHERE peer_id = $1', [peer])).rows[0]!
      if (use.n + 1 > quota.messages || use.b + bytes > quota.bytes) {
        throw new ParleyError('ERR_QUOTA_EXCEEDED', 'the queue to that office\'s relay is full; try again later')
      }
      const paired = (await c.query<{ peer: FedPeer }>('SELECT peer FROM relay_fed_peers WHERE peer_id = $1', [peer])).rows[0]!.peer
      const seq = fedSeqAfter(locked.rows[0]!.next_seq, paired.pairedAt)
      await c.query('UPDATE relay_fed_peers SET next_seq = $2 WHERE peer_id = $1', [peer, seq])
      await c.query(
        `INSERT INTO relay_fed_queue (peer_id, seq, author, envelope_id, recipients, envelope, bytes, queued_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [peer, seq, envelope.author, envelope.id, to, JSON.stringify(envelope), bytes, Date.now()])
      return 'queued'
    })
  }

  async drainFed (peer: string, limit: number, maxBytes: number, send: (items: FedQueueItem[]) => Promise<number>): Promise<number | null> {
    const { client: c, release } = await this.checkout()
    let broken = false
    try {
      await c.query('BEGIN')
      // whichever instance gets the row drains this queue; the others skip it, so one relay's items go out in order
      const lock = await c.query('SELECT 1 FROM relay_fed_drain WHERE peer_id = $1 FOR UPDATE SKIP LOCKED', [peer])
      if (lock.rows.length === 0) { await c.query('ROLLBACK'); return null }
      const { rows } = await c.query<{ seq: number, recipients: string[], envelope: string, bytes: number, queued_at: number }>(
        'SELECT seq, recipients, envelope, bytes, queued_at FROM relay_fed_queue WHERE peer_id = $1 ORDER BY seq LIMIT $2', [peer, limit])
      const items: FedQueueItem[] = []
      let bytes = 0
      for (const r of rows) {
        if (items.length > 0 && bytes + r.bytes > maxBytes) break
        items.push({ seq: r.seq, to: r.recipients, envelope: JSON.parse(r.envelope) as Envelope, bytes: r.bytes, queuedAt: r.queued_at })
        bytes += r.bytes
      }
      if (items.length === 0) { await c.query('ROLLBACK'); return 0 }
      const upTo = await send(items)
      const { rowCount } = await c.query('DELETE FROM relay_fed_queue WHERE peer_id = $1 AND seq <= $2 AND seq = ANY($3::bigint[])',
        [peer, upTo, items.map(i => i.seq)])
      await c.query('COMMIT')
      return rowCount ?? 0
    } catch (err) {
      await c.query('ROLLBACK').catch(() => { broken = true })
      throw pgError(err, this.where)
    } finally {
      release(broken)
    }
  }

  async expireFed (peer: string, before: number, bounces?: (expired: FedQueueItem[]) => KeptNotice[]): Promise<FedQueueItem[]> {
    return await this.tx(async (c) => {
      const { rows } = await c.query<{ seq: number, recipients: string[], envelope: string, bytes: number, queued_at: number }>(
        'DELETE FROM relay_fed_queue WHERE peer_id = $1 AND queued_at < $2 RETURNING seq, recipients, envelope, bytes, queued_at', [peer, before])
      const old = rows.map(r => ({ seq: r.seq, to: r.recipients, envelope: JSON.parse(r.envelope) as Envelope, bytes: r.bytes, queuedAt: r.queued_at }))
        .sort((a, b) => a.seq - b.seq)
      if (old.length > 0 && bounces !== undefined) await this.keepNotices(c, bounces(old), MAX_KEPT_NOTICES)
      return old
    })
  }

  async addFedNotices (items: KeptNotice[], max: number): Promise<string[]> {
    if (items.length === 0) return []
    await this.tx(async (c) => { await this.keepNotices(c, items, max) })
    return [...new Set(items.map(i => i.device))]
  }

  private async keepNotices (c: pg.PoolClient, items: KeptNotice[], max: number): Promise<void> {
    const byDevice = new Map<string, KeptNotice[]>()
    for (const i of items) byDevice.set(i.device, [...(byDevice.get(i.device) ?? []), i])
    // devices in a fixed order: two instances keeping notices for the same devices take the rows in the same order
    for (const device of [...byDevice.keys()].sort()) {
      const list = byDevice.get(device)!
      await c.query('INSERT INTO relay_fed_notice_seq (device, next, first) VALUES ($1, 1, 1) ON CONFLICT DO NOTHING', [device])
      const s = (await c.query<{ next: string, first: string }>('SELECT next, first FROM relay_fed_notice_seq WHERE device = $1 FOR UPDATE', [device])).rows[0]!
      let next = Number(s.next)
      let first = Number(s.first)
      for (const { notice } of list) {
        await c.query('INSERT INTO relay_fed_notices (device, n, notice) VALUES ($1, $2, $3)', [device, next, JSON.stringify({ n: next, ...notice })])
        next++
      }
      if (next - first > max) {
        first = next - max
        await c.query('DELETE FROM relay_fed_notices WHERE device = $1 AND n < $2', [device, first])
      }
      await c.query('UPDATE relay_fed_notice_seq SET next = $2, first = $3 WHERE device = $1', [device, next, first])
    }
  }

  async takeFedNotices (device: string, ack: number, limit: number): Promise<Notice[]> {
    if (ack > 0) await this.q('DELETE FROM relay_fed_notices WHERE device = $1 AND n <= $2', [device, ack])
    return (await this.q<{ notice: Notice }>('SELECT notice FROM relay_fed_notices WHERE device = $1 AND n > $2 ORDER BY n LIMIT $3',
      [device, Math.max(0, ack), limit])).rows.map(r => r.notice)
  }

  async fedQueueStats (): Promise<Map<string, { depth: number, bytes: number, oldestAt: number }>> {
    const { rows } = await this.q<{ peer_id: string, n: number, b: number, oldest: number }>(
      'SELECT peer_id, count(*)::int8 AS n, sum(bytes)::int8 AS b, min(queued_at)::int8 AS oldest FROM relay_fed_queue GROUP BY peer_id')
    return new Map(rows.map(r => [r.peer_id, { depth: r.n, bytes: r.b, oldestAt: r.oldest }]))
  }

  async receiveFed (peer: string, items: FedInboundItem[]): Promise<FedReceipt> {
    return await this.tx(async (c) => {
      await c.query('INSERT INTO relay_fed_in (peer_id) VALUES ($1) ON CONFLICT DO NOTHING', [peer])
      const last = (await c.query<{ last_seq: number }>('SELECT last_seq FROM relay_fed_in WHERE peer_id = $1 FOR UPDATE', [peer])).rows[0]!.last_seq
      const r = await takeFedBatch(items, last, (p) => this.admitted.has(p),
        async (mine, item) => await this.depositIn(c, mine, fedSender(item), item.envelope, item.bytes))
      await c.query('UPDATE relay_fed_in SET last_seq = $2 WHERE peer_id = $1', [peer, r.lastSeq])
      // replies to these authors go back to this relay, from whichever instance they are deposited on
      const authors = [...new Set(items.filter(i => i.to.length > 0 && !this.admitted.has(i.envelope.author)).map(i => i.envelope.author))]
      if (authors.length > 0) {
        await c.query(`INSERT INTO relay_fed_routes (author, peer_id, at) SELECT a, $2, $3 FROM unnest($1::text[]) AS a
          ON CONFLICT (author) DO UPDATE SET peer_id = EXCLUDED.peer_id, at = EXCLUDED.at`, [authors.sort(), peer, Date.now()])
      }
      return r
    })
  }

  async putListing (peerId: string, listing: Listing | null): Promise<void> {
    if (listing === null) await this.q('DELETE FROM relay_listings WHERE peer_id = $1', [peerId])
    else await this.q('INSERT INTO relay_listings (peer_id, listing) VALUES ($1, $2) ON CONFLICT (peer_id) DO UPDATE SET listing = EXCLUDED.listing',
      [peerId, JSON.stringify(listing)])
  }

  async listListings (): Promise<Listing[]> {
    return (await this.q<{ listing: Listing }>('SELECT listing FROM relay_listings ORDER BY peer_id')).rows.map(r => r.listing)
  }

  // ---- the instances on this database (one meta row each: no schema change) ----------------

  async putInstance (instance: RelayInstance): Promise<void> {
    await this.putMeta(INSTANCE_KEY + instance.peerId, instance)
  }

  async listInstances (): Promise<RelayInstance[]> {
    const { rows } = await this.q<{ value: RelayInstance }>('SELECT value FROM relay_meta WHERE key LIKE $1 ORDER BY key', [INSTANCE_KEY + '%'])
    return rows.map(r => r.value)
  }

  async fedRouteOf (author: string): Promise<string | undefined> {
    const { rows } = await this.q<{ peer_id: string }>('SELECT peer_id FROM relay_fed_routes WHERE author = $1', [author])
    return rows[0]?.peer_id
  }

  // ---- the admin side's shared state (SharedAdminStore) ------------------------------

  async listPeople (): Promise<Person[]> {
    const { rows } = await this.q<{ person: Person }>('SELECT person FROM relay_people ORDER BY id')
    return rows.map(r => r.person)
  }

  async getPerson (id: string): Promise<Person | undefined> {
    const { rows } = await this.q<{ person: Person }>('SELECT person FROM relay_people WHERE id = $1', [id])
    return rows[0]?.person
  }

  async addPeople (people: Person[]): Promise<{ added: Person[], existing: string[] }> {
    return await this.tx(async (c) => {
      const added: Person[] = []
      const existing: string[] = []
      for (const p of people) {
        const r = await c.query('INSERT INTO relay_people (id, person) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [p.id, JSON.stringify(p)])
        if (r.rowCount === 1) added.push(p); else existing.push(p.id)
      }
      return { added, existing }
    })
  }

  async removePerson (id: string): Promise<Person | undefined> {
    const { rows } = await this.q<{ person: Person }>('DELETE FROM relay_people WHERE id = $1 RETURNING person', [id])
    return rows[0]?.person
  }

  async putSeen (entries: Array<[string, number]>): Promise<void> {
    if (entries.length === 0) return
    const sorted = [...entries].sort((a, b) => a[0] < b[0] ? -1 : 1)
    await this.q(`INSERT INTO relay_seen (peer_id, at) SELECT * FROM unnest($1::text[], $2::bigint[])
      ON CONFLICT (peer_id) DO UPDATE SET at = GREATEST(relay_seen.at, EXCLUDED.at)`, [sorted.map(e => e[0]), sorted.map(e => e[1])])
  }

  async listSeen (): Promise<Array<[string, number]>> {
    const { rows } = await this.q<{ peer_id: string, at: number }>('SELECT peer_id, at FROM relay_seen')
    return rows.map(r => [r.peer_id, r.at])
  }

  async deleteSeen (peerId: string): Promise<void> { await this.q('DELETE FROM relay_seen WHERE peer_id = $1', [peerId]) }

  async getPolicy (): Promise<PolicyOverrides> { return (await this.getMeta(POLICY_KEY) ?? {}) as PolicyOverrides }

  async putPolicy (p: PolicyOverrides): Promise<void> {
    await this.tx(async (c) => {
      await c.query('INSERT INTO relay_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value',
        [POLICY_KEY, JSON.stringify(p)])
      await c.query('SELECT pg_notify($1, $2)', [POLICY_CHANNEL, POLICY_KEY])
    })
  }

  onPolicyChanged (fn: () => void): () => void {
    this.policyListeners.add(fn)
    return () => { this.policyListeners.delete(fn) }
  }
}

/** relay_meta key of the console's policy overrides (shared by every instance) */
const POLICY_KEY = 'policy'

/** relay_meta key prefix of the instance registry */
const INSTANCE_KEY = 'instance:'
