/** New invites, checked the same way by every MailboxStore: uses 1..10000, a positive lifetime, a note of at most 200 characters. */
import { ParleyError } from '../../../core/errors.js'
import { pasteSafeToken } from '../../../core/util/tokens.js'
import { DEFAULT_INVITE_TTL_MS, type Invite, type InviteOptions } from './types.js'

export function newInvites (list: InviteOptions[], now = Date.now()): Invite[] {
  return list.map((opts): Invite => {
    const maxUses = opts.maxUses ?? 1
    const ttlMs = opts.ttlMs ?? DEFAULT_INVITE_TTL_MS
    if (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > 10_000) throw new ParleyError('ERR_INVALID_ARGUMENT', 'invite uses must be 1..10000')
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new ParleyError('ERR_INVALID_ARGUMENT', 'invite lifetime must be positive')
    return { token: pasteSafeToken(), createdAt: now, expiresAt: now + ttlMs, maxUses, uses: 0, note: (opts.note ?? '').slice(0, 200) }
  })
}
