/** The whole page: list/detail layout, dialogs, language and theme, shortcuts, title and notifications. */
import { useEffect, useLayoutEffect, useMemo, useState } from 'preact/hooks'
import { DEFAULT_NAME, type MessageView } from '../../../../node/src/api/contract.js'
import { resolveLocale } from '../../../shared/i18n.js'
import { I18nContext, uiI18n, type UiI18n } from '../i18n/index.js'
import type { Store } from '../store.js'
import { isGroup, mentionsName } from '../util.js'
import { Chat } from './Chat.js'
import { Directory } from './Directory.js'
import { OtherOffices } from './OtherOffices.js'
import { MembersFor, NewGroup } from './dialogs/Groups.js'
import { MessageInfo, QuickSwitcher, Verify } from './dialogs/Info.js'
import { Settings, Welcome } from './dialogs/Settings.js'
import { Sidebar } from './Sidebar.js'
import { StoreBanner } from './StoreHealth.js'
import { words } from './words.js'


type Open =
  | { kind: 'settings' } | { kind: 'newGroup' } | { kind: 'members' } | { kind: 'verify' } | { kind: 'switcher' } | { kind: 'directory' } | { kind: 'offices' }
  | { kind: 'info', message: MessageView } | null

function useStore (store: Store): void {
  const [, setTick] = useState(0)
  useEffect(() => store.subscribe(() => { setTick(n => n + 1) }), [store])
}

function useSystemDark (): boolean {
  const query = useMemo(() => matchMedia('(prefers-color-scheme: dark)'), [])
  const [dark, setDark] = useState(query.matches)
  useEffect(() => {
    const on = (e: MediaQueryListEvent): void => { setDark(e.matches) }
    query.addEventListener('change', on)
    return () => { query.removeEventListener('change', on) }
  }, [query])
  return dark
}

export function App ({ store }: { store: Store }) {
  useStore(store)
  const s = store.state
  const i18n = useMemo(() => uiI18n(resolveLocale(s.prefs.locale, navigator.languages)), [s.prefs.locale])
  const systemDark = useSystemDark()
  const dark = s.prefs.theme === 'dark' || (s.prefs.theme === 'auto' && systemDark)
  const [open, setOpen] = useState<Open>(null)
  const [welcomed, setWelcomed] = useState(false)
  const close = (): void => { setOpen(null) }

  // before paint, so the page never shows words of one language under the lang of the other
  useLayoutEffect(() => {
    document.documentElement.lang = i18n.locale
    document.documentElement.dataset.theme = dark ? 'dark' : 'light'
  }, [i18n.locale, dark])
  const unread = store.unreadTotal()
  useEffect(() => { document.title = unread > 0 ? `(${unread}) ${i18n.t.appName}` : i18n.t.appName }, [unread, i18n])
  useEffect(() => { store.onIncoming = (m) => { notify(store, i18n, m) } }, [store, i18n])
  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'k') { e.preventDefault(); setOpen({ kind: 'switcher' }) }
    }
    const onVisible = (): void => { void store.markSeen() }
    document.addEventListener('keydown', onKey)
    document.addEventListener('visibilitychange', onVisible)
    return () => { document.removeEventListener('keydown', onKey); document.removeEventListener('visibilitychange', onVisible) }
  }, [store])

  const peer = s.current !== null && !isGroup(s.current) ? s.peers.get(s.current) : undefined
  const group = isGroup(s.current) ? s.groups.get(s.current) : undefined
  const needsName = !welcomed && s.me !== null && s.me.name === DEFAULT_NAME
  return (
    <I18nContext.Provider value={i18n}>
      <div id="app" class={`layout${s.current !== null ? ' has-chat' : ''}`}>
        {/* above the list and the chat, so a narrow window shows them on either */}
        <div class="banners">
          <StoreBanner store={store} />
          {s.link !== 'up' && <div id="offline" class="banner error" role="status">{s.link === 'down' ? i18n.t.linkDown : i18n.t.linkConnecting}</div>}
        </div>
        <Sidebar store={store} onSettings={() => { setOpen({ kind: 'settings' }) }} onNewGroup={() => { setOpen({ kind: 'newGroup' }) }}
          onDirectory={() => { setOpen({ kind: 'directory' }) }} onOffices={() => { setOpen({ kind: 'offices' }) }} />
        <main class="chat">
          {s.current === null
            ? <section id="empty" class="empty"><h1>{i18n.t.appName}</h1><p class="muted">{i18n.t.pickChat}</p></section>
            : <Chat store={store} actions={{
              onVerify: () => { setOpen({ kind: 'verify' }) },
              onMembers: () => { setOpen({ kind: 'members' }) },
              onInfo: (m) => { setOpen({ kind: 'info', message: m }) }
            }} />}
        </main>
      </div>
      {needsName && <Welcome store={store} onClose={() => { setWelcomed(true) }} />}
      {open?.kind === 'settings' && <Settings store={store} onClose={close} />}
      {open?.kind === 'newGroup' && <NewGroup store={store} onClose={close} onCreated={(id) => { close(); void store.open(id) }} />}
      {open?.kind === 'members' && group !== undefined && <MembersFor store={store} group={group} onClose={close} />}
      {open?.kind === 'verify' && peer !== undefined && <Verify store={store} peer={peer} onClose={close} />}
      {open?.kind === 'info' && <MessageInfo store={store} message={open.message} onClose={close} />}
      {open?.kind === 'switcher' && <QuickSwitcher store={store} onClose={close} />}
      {open?.kind === 'directory' && <Directory store={store} onClose={close} />}
      {open?.kind === 'offices' && <OtherOffices store={store} onClose={close} />}
    </I18nContext.Provider>
  )
}

/** A system notification for a message that came in while the window is hidden; it names the group, and says so when it mentions you. */
function notify (store: Store, { t }: UiI18n, m: MessageView): void {
  const s = store.state
  if (!document.hidden || s.prefs.dnd || !('Notification' in window) || Notification.permission !== 'granted') return
  const w = words(t, s)
  const author = w.person(m.author)
  const group = isGroup(m.conv) ? w.chatName(m.conv) : null
  const title = group === null ? t.notifyFrom(author) : mentionsName(m.text, s.me?.name ?? '') ? t.notifyMention(author, group) : t.notifyInGroup(author, group)
  const n = new Notification(title, { body: m.text.slice(0, 140), tag: m.conv })
  n.onclick = () => { window.focus(); void store.open(store.peerOf(m.conv)) }
}
