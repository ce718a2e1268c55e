/**
 * A new invite, checked, the same for every MailboxStore: a paste-safe token
 * (core/util/tokens.ts), 1..10000 uses, a positive lifetime, a note of at
 * most 200 characters.
 */
import { ParleyError } from '../../../core/errors.js'
import { pasteSafeToken } from '../../../core/util/tokens.js'
import type { Invite, InviteOptions } from './types.js'

/** @default lifetime of an invite: 7 days */
export const DEFAULT_INVITE_TTL_MS = 7 * 24 * 3600 * 1000

export function newInvite (opts: InviteOptions = {}, now = Date.now()): Invite {
  const maxUses = opts.maxUses ?? 1
  const ttlMs = opts.ttlMs ?? DEFAULT_INVITE_TTL_MS
  if (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > 10_000) throw new ParleyError('ERR_INVALID_ARGUMENT', 'invite uses must be 1..10000')
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new ParleyError('ERR_INVALID_ARGUMENT', 'invite lifetime must be positive')
  return { token: pasteSafeToken(), createdAt: now, expiresAt: now + ttlMs, maxUses, uses: 0, note: (opts.note ?? '').slice(0, 200) }
}
