/** The audit log, newest first. */
import { api } from '../api.js'
import { errorText } from '../errors.js'
import { useI18n } from '../i18n.js'
import { useLoad } from './load.js'

export function Audit () {
  const { t, f } = useI18n()
  const audit = useLoad(api.audit, 10_000)
  return (
    <section>
      {audit.error !== null && <p class="error">{t.error(errorText(t, audit.error))}</p>}
      <table data-testid="audit">
        <thead><tr><th>{t.when}</th><th>{t.who}</th><th>{t.action}</th><th>{t.target}</th><th>{t.result}</th></tr></thead>
        <tbody>
          {audit.data?.map(e => (
            <tr>
              <td title={e.t}>{f.dateTime(Date.parse(e.t))}</td>
              <td>{e.who}</td>
              <td title={e.action} data-action={e.action}>{(t.auditAction as Record<string, string | undefined>)[e.action] ?? e.action}</td>
              <td><code class="peer">{e.target ?? ''}</code></td>
              <td class={e.ok ? 'ok' : 'error'}>{e.ok ? t.ok : `${t.failed} ${String(e.details?.code ?? '')}`}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}
