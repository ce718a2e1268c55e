/** The company directory: CSV import (批量导入组织结构), links and sheet, people with their devices; remove a person. */
import { useState } from 'preact/hooks'
import { api } from '../api.js'
import { errorText } from '../errors.js'
import { useI18n } from '../i18n.js'
import { useLoad } from './load.js'

export function Directory () {
  const { t, f } = useI18n()
  const people = useLoad(api.people)
  const [message, setMessage] = useState('')
  const [ids, setIds] = useState<string | null>(null)
  const onFile = (e: Event): void => {
    const file = (e.target as HTMLInputElement).files?.[0]
    if (file === undefined) return
    file.text().then(async (csv) => await api.importDirectory(csv)).then((r) => {
      setMessage(t.imported(r.added.length, r.skipped.length))
      setIds(r.added.map(a => a.id).join(','))
      people.reload()
    }, (err: unknown) => { setMessage(t.error(errorText(t, err))) })
  }
  const remove = (id: string, name: string): void => {
    if (!confirm(t.confirmRemove(name))) return
    api.removePerson(id).then(people.reload, (err: unknown) => { setMessage(t.error(errorText(t, err))) })
  }
  const q = ids === null ? '' : `?ids=${encodeURIComponent(ids)}`
  return (
    <section>
      <div class="card">
        <h2>{t.importTitle}</h2>
        <p class="muted">{t.importHint}</p>
        <label>{t.chooseFile} <input type="file" accept=".csv,text/csv" data-testid="import-file" onChange={onFile} /></label>
        {message !== '' && <p role="status" data-testid="import-result">{message}</p>}
        <p>
          <a href={`/api/v1/directory/invites.csv${q}`} download>{t.downloadCsv}</a>{' · '}
          <a href={`/api/v1/directory/sheet.html${q}`} target="_blank" rel="noopener">{t.printSheet}</a>
        </p>
      </div>
      {people.data?.length === 0 && <p class="muted">{t.noPeople}</p>}
      {(people.data?.length ?? 0) > 0 && (
        <table data-testid="people">
          <thead><tr><th>{t.person}</th><th>{t.department}</th><th>{t.email}</th><th>{t.staffNo}</th><th>{t.invite}</th><th>{t.devices}</th><th /></tr></thead>
          <tbody>
            {people.data?.map(p => (
              <tr data-person={p.id}>
                <td>{p.name}</td>
                <td>{p.department.join(' / ')}</td>
                <td>{p.email}</td>
                <td>{p.staffNo}</td>
                <td>{t.state[p.inviteState]}</td>
                <td>{f.number(p.devices.length)}</td>
                <td><button class="danger" onClick={() => { remove(p.id, p.name) }}>{t.remove}</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}
