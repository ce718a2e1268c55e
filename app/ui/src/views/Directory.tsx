/**
 * The company directory from the office relay (`GET /v1/directory`): the
 * department tree the admin imported, to browse and search, with a chat
 * button per colleague who has joined with a device.
 */
import { useEffect, useState } from 'preact/hooks'
import type { DepartmentNode, DirectoryPerson } from '../../../../core/protocol/directory.js'
import { ApiError } from '../api.js'
import { useI18n, type Messages } from '../i18n/index.js'
import { accountOf, isMe, type Store } from '../store.js'
import { Dialog } from './Dialog.js'
import { errorText } from './words.js'

const matches = (p: DirectoryPerson, q: string): boolean =>
  q === '' || [p.name, p.email, p.staffNo].some(v => v.toLocaleLowerCase().includes(q))

/** the department with only the people matching `q` (and the departments that still have some) */
function filter (d: DepartmentNode, q: string): DepartmentNode | null {
  const people = d.people.filter(p => matches(p, q))
  const departments = d.departments.map(x => filter(x, q)).filter((x): x is DepartmentNode => x !== null)
  return people.length + departments.length === 0 && q !== '' ? null : { ...d, people, departments }
}

const count = (d: DepartmentNode): number => d.people.length + d.departments.reduce((n, x) => n + count(x), 0)

/** `me`: whether a device ID is one of ours (our account's devices) */
interface DepartmentProps { d: DepartmentNode, t: Messages, me: (id: string) => boolean, onChat: (peerId: string) => void, open: boolean }

function Department ({ d, t, me, onChat, open }: DepartmentProps) {
  const body = (
    <>
      <ul class="directory-people">
        {d.people.map(p => {
          const mine = p.devices.some(me)
          const device = p.devices[0]
          return (
            <li key={p.id} data-person={p.id} class="directory-person">
              <span class="directory-name">{p.name}</span>
              {mine && <span class="muted small"> {t.directoryYou}</span>}
              {p.email !== '' && <span class="muted small"> {p.email}</span>}
              {device === undefined
                ? <span class="muted small"> · {t.directoryNoDevice}</span>
                : !mine && <button type="button" class="link-button directory-chat" onClick={() => { onChat(device) }}>{t.directoryChat}</button>}
            </li>
          )
        })}
      </ul>
      {d.departments.map(x => <Department key={x.name} d={x} t={t} me={me} onChat={onChat} open={open} />)}
    </>
  )
  if (d.name === '') return body
  return <details class="directory-department" data-department={d.name} open={open}><summary>{d.name}</summary>{body}</details>
}

export function Directory ({ store, onClose }: { store: Store, onClose: () => void }) {
  const { t } = useI18n()
  const [tree, setTree] = useState<DepartmentNode | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [query, setQuery] = useState('')
  useEffect(() => {
    store.api.directory().then(setTree, (err: unknown) => {
      const e = err instanceof ApiError ? err : new ApiError('ERR_INTERNAL', String(err))
      setError(e.code === 'ERR_NOT_FOUND' ? t.directoryNoRelay : e.code === 'ERR_PEER_UNREACHABLE' ? t.directoryUnreachable : errorText(t, e))
    })
  }, [])
  const q = query.trim().toLocaleLowerCase()
  const shown = tree === null ? null : filter(tree, q)
  // the chat is the person's (their account), whichever device the directory names
  const chat = (peerId: string): void => { onClose(); void store.open(accountOf(store.state, peerId)) }
  return (
    <Dialog id="directory" label={t.directoryTitle} onClose={onClose} wide>
      <h2>{t.directoryTitle}</h2>
      <input id="directory-search" type="search" placeholder={t.directorySearch} aria-label={t.directorySearch} value={query}
        onInput={e => { setQuery(e.currentTarget.value) }}
        // a search box's Esc would only clear it: Esc closes the dialog, as everywhere
        onKeyDown={e => { if (e.key === 'Escape') { e.preventDefault(); onClose() } }} />
      {error !== null && <p class="error" role="alert">{error}</p>}
      {error === null && tree === null && <p class="muted">{t.directoryLoading}</p>}
      {shown !== null && count(shown) === 0 && <p class="muted">{t.directoryEmpty}</p>}
      {tree !== null && shown === null && query.trim() !== '' && <p id="directory-none" class="muted">{t.directoryNoMatch(query.trim())}</p>}
      <div class="directory-tree">
        {shown !== null && <Department d={shown} t={t} me={id => isMe(store.state, id)} onChat={chat} open={q !== '' || count(shown) <= 50} />}
      </div>
      <div class="dialog-actions"><button type="button" id="directory-close" onClick={onClose}>{t.close}</button></div>
    </Dialog>
  )
}
