/** Federation (issue 12): pair with another office's relay (make or use a one-time token), the paired relays' state and queues, unpair. */
import { useState } from 'preact/hooks'
import { api, type FedPeerView } from '../api.js'
import { errorText } from '../errors.js'
import { useI18n } from '../i18n.js'
import { useLoad } from './load.js'

export function Federation () {
  const { t, f } = useI18n()
  const peers = useLoad(api.federation, 5000)
  const [token, setToken] = useState('')
  const [made, setMade] = useState<{ token: string, expiresAt: number } | null>(null)
  const [error, setError] = useState('')
  const [done, setDone] = useState('')
  // the console's words for the relay's refusal (never the relay's English message)
  const fail = (err: unknown): void => { setError(t.error(errorText(t, err))); setDone('') }
  const invite = (): void => { api.federationInvite().then((r) => { setMade(r); setError('') }, fail) }
  const add = (e: Event): void => {
    e.preventDefault()
    api.federationAdd(token.trim()).then((p) => { setToken(''); setError(''); setDone(t.fedPaired(p.name)); peers.reload() }, fail)
  }
  const remove = (p: FedPeerView): void => {
    if (!confirm(t.fedConfirmRemove(p.name))) return
    api.federationRemove(p.peerId).then(() => { setDone(t.removed); peers.reload() }, fail)
  }
  const state = (p: FedPeerView): string => t.fedState[p.state]
  return (
    <section>
      <div class="card row">
        <h2>{t.fedInviteTitle}</h2>
        <p class="muted">{t.fedInviteHint}</p>
        <button data-testid="fed-invite" onClick={invite}>{t.fedMakeInvite}</button>
        {made !== null && (
          <div data-testid="fed-token">
            <code class="link">{made.token}</code>
            <div class="muted small">{t.expires}: {f.dateTime(made.expiresAt)}</div>
          </div>
        )}
      </div>
      <form class="card row" onSubmit={add}>
        <h2>{t.fedAddTitle}</h2>
        <label>{t.fedToken}
          <input data-testid="fed-add-token" value={token} required onInput={e => { setToken((e.target as HTMLInputElement).value) }} />
        </label>
        <button type="submit" data-testid="fed-add">{t.fedPair}</button>
      </form>
      {error !== '' && <p class="error" role="alert">{error}</p>}
      {done !== '' && <p class="ok" role="status">{done}</p>}
      {peers.data?.length === 0 && <p class="muted">{t.fedNone}</p>}
      {(peers.data?.length ?? 0) > 0 && (
        <table data-testid="fed-peers">
          <thead>
            <tr><th>{t.fedOffice}</th><th>{t.fedStateTitle}</th><th>{t.fedQueue}</th><th>{t.fedLastContact}</th><th>{t.fedCounts}</th><th /></tr>
          </thead>
          <tbody>
            {peers.data?.map(p => (
              <tr data-peer={p.peerId}>
                <td>{p.name}<div><code class="peer">{p.peerId}</code></div></td>
                <td>
                  <span class={`state ${p.state}`}>{state(p)}</span>
                  {p.lastError !== null && <div class="muted small" data-testid="fed-last-error" title={p.lastError}>{t.fedLastError}</div>}
                </td>
                <td data-testid="fed-queue">
                  {f.number(p.queue.depth)}
                  {p.queue.depth > 0 && <div class="muted small">{t.fedOldest(f.relative(Date.now() - p.queue.oldestAgeMs))}</div>}
                </td>
                <td>{p.lastContact === null ? t.never : <span title={f.dateTime(p.lastContact)}>{f.relative(p.lastContact)}</span>}</td>
                <td class="small">{t.fedCountLine(p.counts)}</td>
                <td><button data-testid="fed-remove" onClick={() => { remove(p) }}>{t.remove}</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}
