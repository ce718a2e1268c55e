/**
 * What the relay keeps of accounts for admission per account (issue 11), on
 * the store's meta table, so LevelDB and PostgreSQL keep it alike and every
 * instance of a cluster sees it:
 * - `acct:<account>`: the verified ops of the account the relay has seen
 *   (merged by the mailbox service, never only the record a caller shows);
 * - `acctOf:<device>`: the one account a device belongs to at this relay (review s4-11b N1): the mailbox
 *   service binds a device to the first account kept that lists it and refuses it in a second one (a
 *   one-device account's key device may still join another account: linking);
 * - `deny:<device>`: a device that may never be admitted by its account again:
 *   `revoked` (a verified revoke op; for good) or `removed` (an admin removed
 *   the person; lifted only when that device redeems a new invite).
 */
import type { AccountOp } from '../../../core/protocol/account.js'

export type DenyReason = 'revoked' | 'removed'

/** The part of MailboxStore these marks live in. */
interface Meta {
  getMeta(key: string): Promise<unknown>
  putMeta(key: string, value: unknown): Promise<void>
}

export async function getAccountOps (s: Meta, account: string): Promise<AccountOp[]> {
  const v = await s.getMeta(`acct:${account}`)
  return Array.isArray(v) ? v as AccountOp[] : []
}

export async function putAccountOps (s: Meta, account: string, ops: AccountOp[], devices: string[]): Promise<void> {
  await s.putMeta(`acct:${account}`, ops)
  // the mailbox service passes only the devices free to be this account's (one device, one account)
  for (const d of devices) if (await s.getMeta(`acctOf:${d}`) !== account) await s.putMeta(`acctOf:${d}`, account)
}

export async function accountOfDevice (s: Meta, device: string): Promise<string | undefined> {
  const v = await s.getMeta(`acctOf:${device}`)
  return typeof v === 'string' ? v : undefined
}

export async function denied (s: Meta, device: string): Promise<DenyReason | undefined> {
  const v = await s.getMeta(`deny:${device}`)
  return v === 'revoked' || v === 'removed' ? v : undefined
}

/** A revoked mark is never replaced by a removed one. */
export async function deny (s: Meta, devices: string[], reason: DenyReason): Promise<void> {
  for (const d of devices) {
    const was = await denied(s, d)
    if (was === 'revoked' || was === reason) continue
    await s.putMeta(`deny:${d}`, reason)
  }
}

/** Lifts a `removed` mark (the admin invited the device again); a `revoked` one stays. */
export async function undeny (s: Meta, device: string): Promise<void> {
  if (await denied(s, device) === 'removed') await s.putMeta(`deny:${device}`, 'lifted')
}
