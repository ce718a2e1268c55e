/**
 * What the relay's parts share without importing each other: the stats, and
 * the narrow admin interface the admin socket (and the console) drive, which
 * the composition root implements.
 */
import type { Invite, InviteOptions, MailboxTotals, RelayUser } from './store/types.js'
import type { SenderUse } from './store/sender-shares.js'

export type RelayCounters = Record<'deposited' | 'duplicates' | 'fetched' | 'acked' | 'refused' | 'redeemed' | 'expired', number>

export interface RelayStats {
  peerId: string
  addresses: string[]
  uptimeMs: number
  connections: number
  reservations: number
  users: number
  mailbox: MailboxTotals
  /** who holds the most of whose mailbox, relative to the per-sender share (floods first) */
  senders: SenderUse[]
  counters: RelayCounters
}

/** What an admin may do to a running relay. */
export interface RelayAdmin {
  createInvite(opts: InviteOptions): Promise<Invite>
  listUsers(): Promise<RelayUser[]>
  /** admits without an invite (allow-list) */
  admit(peerId: string): Promise<RelayUser>
  /** withdraws admission and cuts the peer's connections; true when it was admitted */
  removeUser(peerId: string): Promise<boolean>
  stats(): Promise<RelayStats>
}
