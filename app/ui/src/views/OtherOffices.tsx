/**
 * Other offices (issue 12, federation): people of the offices our relay is
 * paired with who chose to be listed (`GET /v1/offices?q=`), searched on the
 * relay, each with a chat button; and the user's own choice to be listed
 * there (opt-in, off by default: `PUT /v1/offices/listing`).
 */
import { useEffect, useState } from 'preact/hooks'
import type { OfficePerson } from '../../../../core/protocol/relay-rpc.js'
import { ApiError } from '../api.js'
import { useI18n } from '../i18n/index.js'
import type { Store } from '../store.js'
import { Dialog } from './Dialog.js'
import { errorText } from './words.js'

export function OtherOffices ({ store, onClose }: { store: Store, onClose: () => void }) {
  const { t } = useI18n()
  const [people, setPeople] = useState<OfficePerson[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [query, setQuery] = useState('')
  const [listed, setListed] = useState(false)
  const [department, setDepartment] = useState('')
  const [saved, setSaved] = useState('')
  const fail = (err: unknown): void => {
    const e = err instanceof ApiError ? err : new ApiError('ERR_INTERNAL', String(err))
    setError(e.code === 'ERR_NOT_FOUND' ? t.officesNoRelay : e.code === 'ERR_PEER_UNREACHABLE' ? t.officesUnreachable : errorText(t, e))
  }
  useEffect(() => {
    // searched on the relay, a moment after the typing stops
    const timer = setTimeout(() => { store.api.offices(query.trim()).then((p) => { setPeople(p); setError(null) }, fail) }, 200)
    return () => { clearTimeout(timer) }
  }, [query])
  const chat = (peerId: string): void => { onClose(); void store.open(peerId) }
  const save = (e: Event): void => {
    e.preventDefault()
    store.api.publishListing(listed, department).then(() => { setSaved(t.officesSaved) }, fail)
  }
  return (
    <Dialog id="offices" label={t.officesTitle} onClose={onClose} wide>
      <h2>{t.officesTitle}</h2>
      <p class="muted small">{t.officesHint}</p>
      <input id="offices-search" type="search" placeholder={t.officesSearch} aria-label={t.officesSearch} value={query}
        onInput={e => { setQuery(e.currentTarget.value) }}
        onKeyDown={e => { if (e.key === 'Escape') { e.preventDefault(); onClose() } }} />
      {error !== null && <p class="error" role="alert">{error}</p>}
      {error === null && people === null && <p class="muted">{t.officesLoading}</p>}
      {people !== null && people.length === 0 && <p class="muted" id="offices-empty">{t.officesEmpty}</p>}
      <ul class="directory-people" id="offices-people">
        {people?.map(p => (
          <li key={p.peerId} data-peer={p.peerId} class="directory-person">
            <span class="directory-name">{p.name}</span>
            {p.department !== undefined && <span class="muted small"> {p.department}</span>}
            <span class="muted small"> · {p.office}</span>
            <button type="button" class="link-button directory-chat" onClick={() => { chat(p.peerId) }}>{t.officesChat}</button>
          </li>
        ))}
      </ul>
      <form id="offices-listing" onSubmit={save}>
        <label>
          <input type="checkbox" id="offices-list-me" checked={listed} onChange={e => { setListed(e.currentTarget.checked); setSaved('') }} /> {t.officesListMe}
        </label>
        <p class="muted small">{t.officesListMeHint}</p>
        {listed && (
          <label>{t.officesDepartment}
            <input id="offices-department" maxLength={200} value={department} onInput={e => { setDepartment(e.currentTarget.value); setSaved('') }} />
          </label>
        )}
        <button type="submit" id="offices-save">{t.save}</button>
        {saved !== '' && <span class="muted small" role="status"> {saved}</span>}
      </form>
      <div class="dialog-actions"><button type="button" id="offices-close" onClick={onClose}>{t.close}</button></div>
    </Dialog>
  )
}
