/** The left column: who I am and how I am connected, search across chats, and every chat by last activity. */
import { useState } from 'preact/hooks'
import type { PeerView } from '../../../../node/src/api/contract.js'
import { useI18n } from '../i18n/index.js'
import type { Store } from '../store.js'
import { isGroup } from '../util.js'
import { Avatar } from './Avatar.js'
import { Highlighted } from './Text.js'
import { relayLine, words } from './words.js'

export type PresenceDot = 'lan' | 'relay' | 'away' | 'dnd' | 'off' | 'unknown'

export function presenceOf (p: PeerView | undefined, linkUp: boolean): PresenceDot {
  if (!linkUp) return 'unknown'
  if (p?.online !== true) return 'off'
  return p.status === 'away' || p.status === 'dnd' ? p.status : p.reach ?? 'lan'
}

export function Sidebar ({ store, onSettings, onNewGroup, onDirectory, onOffices }: {
  store: Store, onSettings: () => void, onNewGroup: () => void, onDirectory: () => void, onOffices?: () => void
}) {
  const { t, f } = useI18n()
  const s = store.state
  const w = words(t, s)
  const relay = relayLine(t, s.relay, s.link)
  const [query, setQuery] = useState(s.searchText)
  const [timer, setTimer] = useState<ReturnType<typeof setTimeout> | undefined>(undefined)
  const onSearch = (text: string): void => {
    setQuery(text)
    clearTimeout(timer)
    setTimer(setTimeout(() => { void store.search(text) }, 250))
  }
  const linkUp = s.link === 'up'
  const chats = store.conversations(w.chatName)
  return (
    <aside class="sidebar" aria-label={t.chats}>
      <header class="me">
        <Avatar id={s.me?.peerId ?? ''} name={s.me?.name ?? ''} />
        <div class="me-text">
          <div id="my-name" class="me-name">{s.me?.name ?? '…'}{s.prefs.dnd && <span class="dnd-mark" title={t.dndShort}> ⛔</span>}</div>
          <div id="relay-status" class={`small tone-${relay.tone}`} title={relay.hint}>{relay.text}</div>
        </div>
        <button id="open-settings" class="icon-button" title={t.settings} aria-label={t.settings} onClick={onSettings}>⚙</button>
      </header>
      <div class="sidebar-search">
        <input id="search-all" type="search" value={query} placeholder={t.searchAll} aria-label={t.searchAll}
          onInput={(e) => { onSearch(e.currentTarget.value) }}
          onKeyDown={(e) => { if (e.key === 'Escape' && query !== '') { e.preventDefault(); onSearch('') } }} />
      </div>
      {s.searchHits !== null
        ? (
          <section class="search-results" aria-live="polite">
            <p id="search-summary" class="muted small pad">
              {s.searchHits.length === 0 ? t.searchNone(s.searchText) : t.searchHits(s.searchHits.length, s.searchText)}
            </p>
            <ul class="people">
              {s.searchHits.map(h => (
                <li key={h.message.id} class="person hit" data-id={h.message.id} tabIndex={0} role="button"
                  onClick={() => { void store.open(h.peer, h.message.id) }}
                  onKeyDown={(e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); void store.open(h.peer, h.message.id) } }}>
                  <Avatar id={h.peer} name={w.chatName(h.peer)} small />
                  <span class="name">{w.chatName(h.peer)}
                    <span class="last"><Highlighted text={w.preview(h.message)} needle={s.searchText.trim()} /></span>
                  </span>
                  <span class="when small muted">{f.day(h.message.hlc.w)}</span>
                </li>
              ))}
            </ul>
          </section>
          )
        : (
          <>
            <h2 class="section section-row">{t.chats}
              <span>
                <button id="open-directory" class="link-button" title={t.directoryTitle} onClick={onDirectory}>{t.directory}</button>
                {onOffices !== undefined && <button id="open-offices" class="link-button" title={t.officesTitle} onClick={onOffices}>{t.offices}</button>}
                <button id="new-group" class="link-button" title={t.newGroup} onClick={onNewGroup}>+ {t.newGroup}</button>
              </span>
            </h2>
            <ul id="chats" class="people" aria-label={t.chats}>
              {chats.map(peer => <ChatItem key={peer} store={store} peer={peer} linkUp={linkUp} />)}
            </ul>
            <p id="no-people" class="muted small pad" hidden={chats.length > 0}>{t.noPeople}</p>
          </>
          )}
    </aside>
  )
}

function ChatItem ({ store, peer, linkUp }: { store: Store, peer: string, linkUp: boolean }) {
  const { t, f } = useI18n()
  const s = store.state
  const w = words(t, s)
  const conv = s.convs.get(peer)
  const active = s.current === peer
  const unread = conv !== undefined && conv.unread > 0 && (!active || document.hidden) ? conv.unread : 0
  const open = (): void => { void store.open(peer) }
  const group = isGroup(peer)
  const g = group ? s.groups.get(peer) : undefined
  const p = group ? undefined : s.peers.get(peer)
  const name = w.chatName(peer)
  const presence = group ? undefined : presenceOf(p, linkUp)
  const sub = g !== undefined && !g.member ? t.noLongerMember : w.preview(conv?.last ?? null)
  const label = group ? t.groupLabel(name) : t.chatWith(name, w.presence(p))
  return (
    <li class={`person${group ? ' group' : ''}${active ? ' active' : ''}`} data-peer={group ? undefined : peer} data-group={group ? peer : undefined}
      tabIndex={0} role="button" aria-current={active ? 'true' : undefined} aria-label={unread > 0 ? `${label}, ${t.unread(unread)}` : label}
      title={group ? undefined : w.presence(p)} onClick={open}
      onKeyDown={(e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open() } }}>
      <Avatar id={peer} name={name} presence={presence} />
      <span class="name">{name}{p?.nameWarning != null && <span class="warn-mark"> ⚠</span>}
        {p?.needsUpdate === true && <span class="update-mark muted small" title={t.needsUpdate}> · {t.needsUpdateShort}</span>}
        {sub !== '' && <span class="last">{sub}</span>}
      </span>
      <span class="side">
        {conv !== undefined && conv.lastAt > 0 && <span class="when small muted">{sameDay(conv.lastAt) ? f.time(conv.lastAt) : f.day(conv.lastAt)}</span>}
        {unread > 0 && <span class="badge" aria-hidden="true">{unread}</span>}
      </span>
    </li>
  )
}

const sameDay = (ms: number): boolean => new Date(ms).toDateString() === new Date().toDateString()
