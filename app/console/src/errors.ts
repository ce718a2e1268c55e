/**
 * A failed admin API call in the admin's language: the relay answers `{ code, message, detail }`, where `detail`
 * names the rule that refused and its values (core/protocol/admin-api.ts); the words come from the console's
 * catalogs, never from the relay's English `message`. The policy form checks the same ranges before sending.
 */
import { POLICY_RANGES, type AdminErrorDetail, type CsvProblem, type PolicyRangeKey } from '../../../core/protocol/admin-api.js'
import type { I18n } from '../../shared/i18n.js'
import { ApiError } from './api.js'
import type { Messages } from './messages.js'

export const DAY_MS = 86_400_000
export const MIB = 1024 * 1024

type T = I18n<Messages>['t']

/** a policy number out of its range, said in the form's units (days, MiB) */
export function policyRangeText (t: T, key: PolicyRangeKey): string {
  const r = POLICY_RANGES[key]
  if (key === 'mailboxTtlMs') return t.refusal.policyTtl(Math.round(r.min / 60_000), Math.round(r.max / DAY_MS))
  if (key === 'quotaBytes') return t.refusal.policyBytes(Math.round(r.min / MIB), Math.round(r.max / MIB))
  if (key === 'fileTtlMs') return t.policyFileTtl(Math.round(r.min / 60_000), Math.round(r.max / DAY_MS))
  if (key === 'fileQuotaBytes') return t.policyFileQuota(Math.round(r.max / MIB))
  if (key === 'maxFileBytes') return t.policyMaxFile(Math.round(r.min / MIB), Math.round(r.max / MIB))
  return t.refusal.policyQuota(r.min, r.max)
}

function csvProblemText (t: T, p: CsvProblem): string {
  const r = t.refusal
  switch (p.problem) {
    case 'nameEmpty': return r.csvLine(p.line, r.csvNameEmpty)
    case 'needsId': return r.csvLine(p.line, r.csvNeedsId)
    case 'tooLong': return r.csvLine(p.line, r.csvTooLong(r.csvField[p.field], p.max))
    case 'unsafe': return r.csvLine(p.line, r.csvUnsafe(r.csvField[p.field]))
    case 'badEmail': return r.csvLine(p.line, r.csvBadEmail(p.value))
    case 'duplicate': return r.csvLine(p.line, r.csvDuplicate(p.sameAs))
  }
}

function detailText (t: T, d: AdminErrorDetail): string {
  const r = t.refusal
  switch (d.reason) {
    case 'policyRange': return policyRangeText(t, d.key)
    case 'policyUnknownKey': return r.policyUnknownKey(d.key)
    case 'policyNotBoolean': return r.policyNotBoolean
    case 'policyNotObject': case 'policyReset': return r.policyBad
    case 'inviteUses': return r.inviteUses(d.min, d.max)
    case 'inviteHours': return r.inviteHours(d.maxHours)
    case 'inviteNote': return r.inviteNote(d.max)
    case 'inviteRef': return r.inviteRef(d.min)
    case 'inviteAmbiguous': return r.inviteAmbiguous(d.count)
    case 'inviteUnknown': return r.inviteUnknown
    case 'personUnknown': return r.personUnknown
    case 'peerId': return r.peerId
    case 'csvText': return r.csvText
    case 'csvTooLarge': return r.csvTooLarge(d.maxMiB)
    case 'csvUnreadable': return r.csvUnreadable
    case 'csvEmpty': return r.csvEmpty
    case 'csvNoName': return r.csvNoName
    case 'csvNoId': return r.csvNoId
    case 'csvTooMany': return r.csvTooMany(d.max, d.got)
    case 'csvLines': return r.csvLines(d.count, d.problems.map(p => csvProblemText(t, p)))
    case 'loginWrong': return r.loginWrong
    case 'loginLocked': return r.loginLocked(d.seconds)
    case 'passwordShort': return r.passwordShort(d.min)
    case 'passwordType': return r.passwordType
    case 'foreignOrigin': return t.refusalForeignOrigin
  }
}

/** what to tell the admin about a failed call */
export function errorText (t: T, err: unknown): string {
  const e = err instanceof ApiError ? err : new ApiError('ERR_INTERNAL', String(err))
  const d = e.detail as AdminErrorDetail | undefined
  if (d !== undefined && typeof d.reason === 'string') {
    // a relay newer than the console may name a rule the console has no words for: fall back to the code
    const text = (detailText(t, d) as string | undefined)
    if (text !== undefined) return text
  }
  return t.errorCode[e.code] ?? t.errorOther(e.code)
}
