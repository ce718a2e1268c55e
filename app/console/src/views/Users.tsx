/** Admitted devices: who, how, last seen, mailbox and files against their quotas; remove. */
import { api } from '../api.js'
import { errorText } from '../errors.js'
import { bytes, useI18n } from '../i18n.js'
import { useLoad } from './load.js'

export function Users () {
  const i18n = useI18n()
  const { t, f } = i18n
  const users = useLoad(api.users, 5000)
  const policy = useLoad(api.policy)
  const quota = policy.data?.effective.quotaMessages ?? 0
  const quotaBytes = policy.data?.effective.quotaBytes ?? 0
  const remove = (peerId: string): void => {
    if (!confirm(t.confirmRemove(peerId))) return
    api.removeUser(peerId).then(users.reload, (err: unknown) => { alert(t.error(errorText(t, err))) })
  }
  return (
    <section>
      {users.error !== null && <p class="error">{t.error(errorText(t, users.error))}</p>}
      {users.data?.length === 0 && <p class="muted">{t.noUsers}</p>}
      {(users.data?.length ?? 0) > 0 && (
        <table data-testid="users">
          <thead>
            <tr>
              <th>{t.device}</th><th>{t.person}</th><th>{t.via}</th><th>{t.admitted}</th><th>{t.lastSeen}</th><th>{t.mailbox}</th><th>{t.files}</th><th />
            </tr>
          </thead>
          <tbody>
            {users.data?.map(u => (
              <tr data-peer={u.peerId}>
                <td><code class="peer">{u.peerId}</code></td>
                <td>{u.person?.name ?? ''}</td>
                <td>{u.via === 'invite' ? t.viaInvite : u.via === 'account' ? t.viaAccount : t.viaAllow}</td>
                <td title={f.dateTime(u.admittedAt)}>{f.relative(u.admittedAt)}</td>
                <td>{u.online ? <span class="online">{t.online}</span> : u.lastSeen === null ? t.never : f.relative(u.lastSeen)}</td>
                <td>{t.mailboxUse(u.mailbox.messages, quota, bytes(u.mailbox.bytes, f), bytes(quotaBytes, f))}</td>
                <td data-testid="user-files">{t.filesOf(u.files.files, bytes(u.files.bytes, f), bytes(u.files.quotaBytes, f))}</td>
                <td><button class="danger" data-testid="remove-user" onClick={() => { remove(u.peerId) }}>{t.remove}</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}
