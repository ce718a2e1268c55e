/**
 * What the relay's parts share without importing each other: the stats, and
 * the narrow admin interface the admin socket and the console (relay/src/admin/)
 * drive, which the composition root implements.
 */
import type { Invite, InviteOptions, MailboxStore, MailboxTotals, RelayUser } from './store/types.js'
import type { SenderUse } from './store/sender-shares.js'
import type { RelayStats as AdminStats } from '../../core/protocol/admin-api.js'
import type { Federation } from './federation/federation.js'

export type { RelayCounters } from '../../core/protocol/admin-api.js'

/** The console's view of the stats (core/protocol/admin-api.ts), with who fills whose mailbox. */
export interface RelayStats extends AdminStats {
  mailbox: MailboxTotals
  /** who holds the most of whose mailbox, relative to the per-sender share (floods first) */
  senders: SenderUse[]
}

/** The part of the store the admin side reads and changes directly. */
export type AdminMailbox = Pick<MailboxStore,
'isAdmitted' | 'admit' | 'listUsers' | 'createInvites' | 'listInvites' | 'revokeInvite' | 'usageByRecipient' | 'getMeta'>

/** What an admin may do to the relay's federation (relay/src/federation/federation.ts). */
export type FederationAdmin = Pick<Federation, 'invite' | 'add' | 'list' | 'remove' | 'setPolicy'>

/** What an admin may do to a running relay. */
export interface RelayAdmin {
  readonly peerId: string
  readonly federation: FederationAdmin
  readonly mailbox: AdminMailbox
  addresses(): string[]
  /**
   * One address of every instance of this relay (this one first; others from
   * the shared store's instance registry), for invite links and sheets.
   */
  instanceAddresses?(): Promise<string[]>
  /** has an open connection to the relay now */
  isOnline(peerId: string): boolean
  createInvite(opts: InviteOptions): Promise<Invite>
  listUsers(): Promise<RelayUser[]>
  /** admits without an invite (allow-list) */
  admit(peerId: string): Promise<RelayUser>
  /** withdraws admission and cuts the peer's connections; true when it was admitted */
  removeUser(peerId: string): Promise<boolean>
  stats(): Promise<RelayStats>
  /** files and bytes each uploader has in the file store (issue 17: usage against the per-user file quota) */
  fileUsage(): Map<string, { files: number, bytes: number }>
}
