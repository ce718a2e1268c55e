/**
 * The relay's PostgreSQL schema, as numbered migrations applied in order at
 * start. `parley_schema` holds one row per applied migration; the database's
 * version is the highest. A database of a newer version than this relay knows
 * (upgraded by a newer parley-relay) is refused with ERR_SCHEMA_TOO_NEW, never
 * written to. Two instances starting at once serialise on an advisory lock,
 * so each migration runs once.
 */
import type pg from 'pg'
import { ParleyError } from '../../../core/errors.js'

export interface Migration { version: number, name: string, sql: string }

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'users, invites, mailboxes, usage',
    sql: `
      CREATE TABLE relay_meta (key text PRIMARY KEY, value jsonb NOT NULL);
      CREATE TABLE relay_users (
        peer_id text PRIMARY KEY, admitted_at bigint NOT NULL, via text NOT NULL, invite text
      );
      CREATE TABLE relay_invites (
        token text PRIMARY KEY, created_at bigint NOT NULL, expires_at bigint NOT NULL,
        max_uses integer NOT NULL, uses integer NOT NULL DEFAULT 0, note text NOT NULL DEFAULT ''
      );
      -- one sequence for all mailboxes: a recipient's cursors increase in deposit order (see deposit)
      CREATE SEQUENCE relay_mail_cursor;
      CREATE TABLE relay_mail (
        recipient text NOT NULL, cursor bigint NOT NULL, sender text NOT NULL, author text NOT NULL,
        envelope_id text NOT NULL, envelope text NOT NULL, deposited_at bigint NOT NULL, bytes integer NOT NULL,
        PRIMARY KEY (recipient, cursor),
        UNIQUE (recipient, author, envelope_id)
      );
      CREATE INDEX relay_mail_deposited_at ON relay_mail (deposited_at);
      -- per recipient: the quota's count, and the row every write to that mailbox locks first
      CREATE TABLE relay_usage (recipient text PRIMARY KEY, count integer NOT NULL DEFAULT 0, bytes bigint NOT NULL DEFAULT 0);
      CREATE TABLE relay_sender_usage (
        recipient text NOT NULL, sender text NOT NULL, count integer NOT NULL, bytes bigint NOT NULL,
        PRIMARY KEY (recipient, sender)
      );
    `
  },
  {
    version: 2,
    name: 'invites: revoked, redeemed by',
    sql: `
      ALTER TABLE relay_invites ADD COLUMN revoked_at bigint;
      ALTER TABLE relay_invites ADD COLUMN redeemed_by jsonb NOT NULL DEFAULT '[]';
    `
  },
  {
    version: 3,
    name: 'federation: paired relays, queues, high-water marks, listings',
    sql: `
      -- next_seq: the enqueue that takes a seq holds this row until it commits, so one relay's queue commits in seq order
      CREATE TABLE relay_fed_peers (peer_id text PRIMARY KEY, peer jsonb NOT NULL, next_seq bigint NOT NULL DEFAULT 0);
      -- one row per paired relay, locked FOR UPDATE SKIP LOCKED by the one instance draining that queue
      CREATE TABLE relay_fed_drain (peer_id text PRIMARY KEY);
      CREATE TABLE relay_fed_invites (secret_hash text PRIMARY KEY, invite jsonb NOT NULL);
      CREATE TABLE relay_fed_queue (
        peer_id text NOT NULL, seq bigint NOT NULL, author text NOT NULL, envelope_id text NOT NULL,
        recipients text[] NOT NULL, envelope text NOT NULL, bytes integer NOT NULL, queued_at bigint NOT NULL,
        PRIMARY KEY (peer_id, seq),
        UNIQUE (peer_id, author, envelope_id)
      );
      CREATE TABLE relay_fed_in (peer_id text PRIMARY KEY, last_seq bigint NOT NULL DEFAULT 0);
      CREATE TABLE relay_listings (peer_id text PRIMARY KEY, listing jsonb NOT NULL);
    `
  },
  {
    version: 4,
    name: 'shared by every instance: federation routes learned, company directory, last seen (policy: relay_meta)',
    sql: `
      -- author of forwarded mail -> the paired relay it came from, written with the mail (replies go back there)
      CREATE TABLE relay_fed_routes (author text PRIMARY KEY, peer_id text NOT NULL, at bigint NOT NULL);
      CREATE TABLE relay_people (id text PRIMARY KEY, person jsonb NOT NULL);
      CREATE TABLE relay_seen (peer_id text PRIMARY KEY, at bigint NOT NULL);
    `
  },
  {
    version: 5,
    name: 'federation: notices (receipts, bounces) kept per device, shared by every instance',
    sql: `
      -- next: the number the device's next notice gets; first: its lowest kept
      CREATE TABLE relay_fed_notice_seq (device text PRIMARY KEY, next bigint NOT NULL, first bigint NOT NULL);
      CREATE TABLE relay_fed_notices (device text NOT NULL, n bigint NOT NULL, notice jsonb NOT NULL, PRIMARY KEY (device, n));
    `
  }
]

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version

/** advisory lock keys ("parley" in ASCII, then the purpose) */
export const MIGRATE_LOCK = 0x7061726c6579_01n
export const SWEEP_LOCK = 0x7061726c6579_02n

/** Brings the database to SCHEMA_VERSION; returns the versions applied. */
export async function migrate (client: pg.ClientBase, where: string): Promise<number[]> {
  await client.query('BEGIN')
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK.toString()])
    // created only when missing: a database user with no CREATE privilege (after the first start) still starts
    const { rows: has } = await client.query<{ t: string | null }>("SELECT to_regclass('parley_schema')::text AS t")
    if (has[0]?.t == null) {
      await client.query(`CREATE TABLE parley_schema (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
    }
    const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM parley_schema')
    const current = rows[0]?.v ?? 0
    if (current > SCHEMA_VERSION) {
      throw new ParleyError('ERR_SCHEMA_TOO_NEW',
        `the relay database ${where} has schema version ${current}, newer than this parley-relay knows (${SCHEMA_VERSION}): ` +
        'a newer parley-relay upgraded it. Run that version on every instance (or restore the backup taken before the upgrade)')
    }
    const applied: number[] = []
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue
      await client.query(m.sql)
      await client.query('INSERT INTO parley_schema (version, name) VALUES ($1, $2)', [m.version, m.name])
      applied.push(m.version)
    }
    await client.query('COMMIT')
    return applied
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}
