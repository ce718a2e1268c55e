/** Retention, quotas, federation: validated by the relay, applied at once. */
import { useEffect, useState } from 'preact/hooks'
import { api, type PolicyKey, type PolicyOverrides, type PolicyView } from '../api.js'
import { useI18n } from '../i18n.js'

const DAY_MS = 86_400_000
const MIB = 1024 * 1024

/** The form's fields as the relay's policy shows them. */
const fields = (v: PolicyView) => ({
  ttlDays: String(Math.round(v.effective.mailboxTtlMs / DAY_MS * 100) / 100),
  quota: String(v.effective.quotaMessages),
  quotaMb: String(Math.round(v.effective.quotaBytes / MIB)),
  federation: v.effective.federationAllowed
})

export function Policy () {
  const { t } = useI18n()
  const [view, setView] = useState<PolicyView | null>(null)
  const [ttlDays, setTtlDays] = useState('')
  const [quota, setQuota] = useState('')
  const [quotaMb, setQuotaMb] = useState('')
  const [federation, setFederation] = useState(false)
  const [message, setMessage] = useState('')
  const show = (v: PolicyView): void => {
    setView(v)
    const f = fields(v)
    setTtlDays(f.ttlDays)
    setQuota(f.quota)
    setQuotaMb(f.quotaMb)
    setFederation(f.federation)
  }
  useEffect(() => { api.policy().then(show, (err: Error) => { setMessage(t.error(err.message)) }) }, [])
  const save = (e: Event): void => {
    e.preventDefault()
    // only what the admin changed: saving a new quota must not pin the retention the config file gives
    const shown = view === null ? null : fields(view)
    const set: PolicyOverrides = {}
    if (ttlDays !== shown?.ttlDays) set.mailboxTtlMs = Math.round(Number(ttlDays) * DAY_MS)
    if (quota !== shown?.quota) set.quotaMessages = Number(quota)
    if (quotaMb !== shown?.quotaMb) set.quotaBytes = Math.round(Number(quotaMb) * MIB)
    if (federation !== shown?.federation) set.federationAllowed = federation
    api.setPolicy(set).then((v) => { show(v); setMessage(t.saved) }, (err: Error) => { setMessage(t.error(err.message)) })
  }
  const reset = (k: PolicyKey): void => {
    api.setPolicy({}, [k]).then((v) => { show(v); setMessage(t.saved) }, (err: Error) => { setMessage(t.error(err.message)) })
  }
  const source = (k: PolicyKey) => view === null ? null : view.source[k] === 'console'
    ? <span class="muted small">{t.fromConsole} <button type="button" class="link-button" onClick={() => { reset(k) }}>{t.reset}</button></span>
    : <span class="muted small">{t.fromConfig}</span>
  return (
    <form class="card policy" onSubmit={save}>
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
        <input type="number" min="1" value={quotaMb} onInput={e => { setQuotaMb((e.target as HTMLInputElement).value) }} />
        {source('quotaBytes')}
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
