/**
 * The company directory from the office relay (`GET /v1/directory`): a
 * department tree to browse, with a chat button per colleague who has a
 * device. Self-contained (its own few words in both languages), so the app
 * shell only mounts it.
 */
import { useEffect, useState } from 'preact/hooks'
import type { Locale } from '../../../shared/i18n.js'
import type { DepartmentNode, DirectoryPerson } from '../../../../core/protocol/directory.js'

const WORDS = {
  en: {
    title: 'Company directory',
    loading: 'Loading…',
    empty: 'The relay has no directory yet.',
    chat: 'Chat',
    noDevice: 'not joined yet',
    search: 'Search the directory'
  },
  'zh-CN': { title: '公司通讯录', loading: '加载中…', empty: '中继上还没有通讯录。', chat: '发消息', noDevice: '尚未加入', search: '搜索通讯录' }
} satisfies Record<Locale, Record<string, string>>

export interface DirectoryProps {
  locale: Locale
  /** the node's `GET /v1/directory` */
  load: () => Promise<DepartmentNode>
  /** opens a chat with this device */
  onChat: (peerId: string) => void
  /** how a load error reads to the user (the app's own error words) */
  describeError: (err: unknown) => string
}

const matches = (p: DirectoryPerson, q: string): boolean =>
  q === '' || [p.name, p.email, p.staffNo].some(v => v.toLocaleLowerCase().includes(q))

/** the department with only the people matching `q` (and the departments that still have some) */
function filter (d: DepartmentNode, q: string): DepartmentNode | null {
  const people = d.people.filter(p => matches(p, q))
  const departments = d.departments.map(x => filter(x, q)).filter((x): x is DepartmentNode => x !== null)
  return people.length + departments.length === 0 && q !== '' ? null : { ...d, people, departments }
}

function Department ({ d, w, onChat, open }: { d: DepartmentNode, w: typeof WORDS.en, onChat: (peerId: string) => void, open: boolean }) {
  const body = (
    <>
      <ul class="directory-people">
        {d.people.map(p => (
          <li data-person={p.id}>
            <span class="directory-name">{p.name}</span>
            {p.email !== '' && <span class="muted small"> {p.email}</span>}
            {p.devices[0] !== undefined
              ? <button class="link-button" onClick={() => { onChat(p.devices[0] as string) }}>{w.chat}</button>
              : <span class="muted small"> · {w.noDevice}</span>}
          </li>
        ))}
      </ul>
      {d.departments.map(x => <Department d={x} w={w} onChat={onChat} open={open} />)}
    </>
  )
  if (d.name === '') return body
  return <details class="directory-department" open={open}><summary>{d.name}</summary>{body}</details>
}

export function Directory ({ locale, load, onChat, describeError }: DirectoryProps) {
  const w = WORDS[locale]
  const [tree, setTree] = useState<DepartmentNode | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [query, setQuery] = useState('')
  useEffect(() => { load().then(setTree, (err: unknown) => { setError(describeError(err)) }) }, [])
  const q = query.trim().toLocaleLowerCase()
  const shown = tree === null ? null : filter(tree, q)
  return (
    <section class="directory" aria-label={w.title}>
      <h2>{w.title}</h2>
      <input type="search" placeholder={w.search} aria-label={w.search} value={query} onInput={e => { setQuery((e.target as HTMLInputElement).value) }} />
      {error !== null && <p class="error" role="alert">{error}</p>}
      {error === null && tree === null && <p class="muted">{w.loading}</p>}
      {shown !== null && shown.people.length + shown.departments.length === 0 && <p class="muted">{w.empty}</p>}
      {shown !== null && <Department d={shown} w={w} onChat={onChat} open={q !== ''} />}
    </section>
  )
}
