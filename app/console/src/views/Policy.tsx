/** Retention, quotas, federation: validated by the relay, applied at once. */
import { useEffect, useState } from 'preact/hooks'
import { api, type PolicyKey, type PolicyView } from '../api.js'
import { useI18n } from '../i18n.js'

const DAY_MS = 86_400_000
const MIB = 1024 * 1024

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
    setTtlDays(String(Math.round(v.effective.mailboxTtlMs / DAY_MS * 100) / 100))
    setQuota(String(v.effective.quotaMessages))
    setQuotaMb(String(Math.round(v.effective.quotaBytes / MIB)))
    setFederation(v.effective.federationAllowed)
  }
  useEffect(() => { api.policy().then(show, (err: Error) => { setMessage(t.error(err.message)) }) }, [])
  const save = (e: Event): void => {
    e.preventDefault()
    const set = {
      mailboxTtlMs: Math.round(Number(ttlDays) * DAY_MS),
      quotaMessages: Number(quota),
      quotaBytes: Math.round(Number(quotaMb) * MIB),
      federationAllowed: federation
    }
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
      {message !== '' && <p role="status" data-testid="policy-message">{message}</p>}
    </form>
  )
}
