/** Invites: create (uses, expiry, note) shown as a link and a QR code, list with redeemers, revoke. */
import { useState } from 'preact/hooks'
import { api, type InviteView } from '../api.js'
import { errorText } from '../errors.js'
import { useI18n } from '../i18n.js'
import { useLoad } from './load.js'

export function Invites () {
  const { t, f } = useI18n()
  const invites = useLoad(api.invites, 10_000)
  const [uses, setUses] = useState('1')
  const [hours, setHours] = useState('168')
  const [note, setNote] = useState('')
  const [created, setCreated] = useState<InviteView | null>(null)
  const [error, setError] = useState('')
  const create = (e: Event): void => {
    e.preventDefault()
    api.createInvite({ uses: Number(uses), hours: Number(hours), note }).then((i) => { setCreated(i); setError(''); setNote(''); invites.reload() },
      (err: unknown) => { setError(t.error(errorText(t, err))) })
  }
  const revoke = (id: string): void => { api.revokeInvite(id).then(invites.reload, (err: unknown) => { setError(t.error(errorText(t, err))) }) }
  return (
    <section>
      <form class="card row" onSubmit={create}>
        <h2>{t.newInvite}</h2>
        <label>{t.uses}
          <input type="number" min="1" max="10000" value={uses} data-testid="invite-uses" onInput={e => { setUses((e.target as HTMLInputElement).value) }} />
        </label>
        <label>{t.hours}
          <input type="number" min="1" value={hours} data-testid="invite-hours" onInput={e => { setHours((e.target as HTMLInputElement).value) }} />
        </label>
        <label>{t.note}<input maxLength={200} value={note} data-testid="invite-note" onInput={e => { setNote((e.target as HTMLInputElement).value) }} /></label>
        <button type="submit" data-testid="create-invite">{t.create}</button>
      </form>
      {error !== '' && <p class="error" role="alert">{error}</p>}
      {created !== null && (
        <div class="card created" data-testid="created-invite">
          <p>{t.inviteCreated}</p>
          <img src={`/api/v1/invites/${encodeURIComponent(created.id)}/qr.svg`} alt={t.qrAlt} width={160} height={160} />
          <code class="link" data-testid="invite-link">{created.link}</code>
          <div class="muted small">{t.token}: <code data-testid="invite-token">{created.token}</code></div>
        </div>
      )}
      {invites.data?.length === 0 && <p class="muted">{t.noInvites}</p>}
      {(invites.data?.length ?? 0) > 0 && (
        <table data-testid="invites">
          <thead><tr><th>{t.id}</th><th>{t.note}</th><th>{t.uses}</th><th>{t.expires}</th><th>{t.redeemedBy}</th><th /></tr></thead>
          <tbody>
            {invites.data?.map(i => (
              <tr data-invite={i.id}>
                <td><code>{i.id}</code> <span class={`state ${i.state}`}>{t.state[i.state]}</span></td>
                <td>{i.note}</td>
                <td>{f.number(i.uses)} / {f.number(i.maxUses)}</td>
                <td title={f.dateTime(i.expiresAt)}>{f.relative(i.expiresAt)}</td>
                <td>{(i.redeemedBy ?? []).map(r => <div><code class="peer">{r.peerId}</code> <span class="muted small">{f.relative(r.at)}</span></div>)}</td>
                <td>{i.state === 'active' && <button data-testid="revoke" onClick={() => { revoke(i.id) }}>{t.revoke}</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}
