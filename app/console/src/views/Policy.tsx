/**
 * Retention, quotas, federation, the file store's retention, quota and largest file: in days and MiB,
 * checked here against the relay's ranges, validated again by the relay, applied at once.
 */
import { useEffect, useState } from 'preact/hooks'
import { POLICY_RANGES, type PolicyRangeKey } from '../../../../core/protocol/admin-api.js'
import { api, type PolicyKey, type PolicyOverrides, type PolicyView } from '../api.js'
import { DAY_MS, MIB, errorText, policyRangeText } from '../errors.js'
import { useI18n } from '../i18n.js'

/** the value in the relay's unit (ms, count, bytes) of what was typed in the form's unit, or null when it is out of the relay's range */
function inRange (key: PolicyRangeKey, typed: string, unit: number, whole: boolean): number | null {
  const n = Number(typed)
  if (typed.trim() === '' || !Number.isFinite(n) || (whole && !Number.isInteger(n))) return null
  const v = Math.round(n * unit)
  return v >= POLICY_RANGES[key].min && v <= POLICY_RANGES[key].max ? v : null
}

/** The form's fields as the relay's policy shows them. */
const fields = (v: PolicyView) => ({
  ttlDays: String(Math.round(v.effective.mailboxTtlMs / DAY_MS * 100) / 100),
  quota: String(v.effective.quotaMessages),
  quotaMb: String(Math.round(v.effective.quotaBytes / MIB)),
  federation: v.effective.federationAllowed,
  fileTtlDays: String(Math.round(v.effective.fileTtlMs / DAY_MS * 100) / 100),
  fileQuotaMb: String(Math.round(v.effective.fileQuotaBytes / MIB)),
  maxFileMb: String(Math.round(v.effective.maxFileBytes / MIB))
})

export function Policy () {
  const { t } = useI18n()
  const [view, setView] = useState<PolicyView | null>(null)
  const [ttlDays, setTtlDays] = useState('')
  const [quota, setQuota] = useState('')
  const [quotaMb, setQuotaMb] = useState('')
  const [federation, setFederation] = useState(false)
  const [fileTtlDays, setFileTtlDays] = useState('')
  const [fileQuotaMb, setFileQuotaMb] = useState('')
  const [maxFileMb, setMaxFileMb] = useState('')
  const [message, setMessage] = useState('')
  const show = (v: PolicyView): void => {
    setView(v)
    const f = fields(v)
    setTtlDays(f.ttlDays)
    setQuota(f.quota)
    setQuotaMb(f.quotaMb)
    setFederation(f.federation)
    setFileTtlDays(f.fileTtlDays)
    setFileQuotaMb(f.fileQuotaMb)
    setMaxFileMb(f.maxFileMb)
  }
  const failed = (err: unknown): void => { setMessage(t.error(errorText(t, err))) }
  useEffect(() => { api.policy().then(show, failed) }, [])
  const save = (e: Event): void => {
    e.preventDefault()
    // only what the admin changed: saving a new quota must not pin the retention the config file gives
    const shown = view === null ? null : fields(view)
    const set: PolicyOverrides = {}
    const fieldsToCheck: Array<[PolicyRangeKey, string, string | undefined, number, boolean]> = [
      ['mailboxTtlMs', ttlDays, shown?.ttlDays, DAY_MS, false],
      ['quotaMessages', quota, shown?.quota, 1, true],
      ['quotaBytes', quotaMb, shown?.quotaMb, MIB, true],
      ['fileTtlMs', fileTtlDays, shown?.fileTtlDays, DAY_MS, false],
      ['fileQuotaBytes', fileQuotaMb, shown?.fileQuotaMb, MIB, true],
      ['maxFileBytes', maxFileMb, shown?.maxFileMb, MIB, true]
    ]
    for (const [key, typed, was, unit, whole] of fieldsToCheck) {
      if (typed === was) continue
      const v = inRange(key, typed, unit, whole)
      if (v === null) { setMessage(t.error(policyRangeText(t, key))); return }
      set[key] = v
    }
    if (federation !== shown?.federation) set.federationAllowed = federation
    api.setPolicy(set).then((v) => { show(v); setMessage(t.saved) }, failed)
  }
  const reset = (k: PolicyKey): void => {
    api.setPolicy({}, [k]).then((v) => { show(v); setMessage(t.saved) }, failed)
  }
  const source = (k: PolicyKey) => view === null ? null : view.source[k] === 'console'
    ? <span class="muted small">{t.fromConsole} <button type="button" class="link-button" onClick={() => { reset(k) }}>{t.reset}</button></span>
    : <span class="muted small">{t.fromConfig}</span>
  return (
    <form class="card policy" onSubmit={save} noValidate>
      <h2>{t.policyTitle}</h2>
      {/* nothing to edit until the relay's policy is here: a value typed before would be overwritten by it */}
      <fieldset disabled={view === null}>
      <label>{t.mailboxTtlDays}
        <input type="number" step="any" min="0" value={ttlDays} data-testid="policy-ttl" onInput={e => { setTtlDays((e.target as HTMLInputElement).value) }} />
        {source('mailboxTtlMs')}
      </label>
      <label>{t.quotaMessages}
        <input type="number" min="1" value={quota} data-testid="policy-quota" onInput={e => { setQuota((e.target as HTMLInputElement).value) }} />
        {source('quotaMessages')}
      </label>
      <label>{t.quotaMb}
        <input type="number" min="1" value={quotaMb} data-testid="policy-quota-mb" onInput={e => { setQuotaMb((e.target as HTMLInputElement).value) }} />
        {source('quotaBytes')}
      </label>
      <label>{t.fileTtlDays}
        <input type="number" step="any" min="0" value={fileTtlDays} data-testid="policy-file-ttl"
          onInput={e => { setFileTtlDays((e.target as HTMLInputElement).value) }} />
        {source('fileTtlMs')}
      </label>
      <label>{t.fileQuotaMb}
        <input type="number" min="0" value={fileQuotaMb} data-testid="policy-file-quota-mb"
          onInput={e => { setFileQuotaMb((e.target as HTMLInputElement).value) }} />
        {source('fileQuotaBytes')}
      </label>
      <label>{t.maxFileMb}
        <input type="number" min="1" value={maxFileMb} data-testid="policy-max-file-mb"
          onInput={e => { setMaxFileMb((e.target as HTMLInputElement).value) }} />
        {source('maxFileBytes')}
      </label>
      <label class="check">
        <input type="checkbox" checked={federation} onChange={e => { setFederation((e.target as HTMLInputElement).checked) }} />
        {t.federationAllowed}{source('federationAllowed')}
      </label>
      <button type="submit" data-testid="policy-save">{t.save}</button>
      </fieldset>
      {message !== '' && <p role="status" data-testid="policy-message">{message}</p>}
    </form>
  )
}
