/** The open conversation: header, messages, typing line, composer. */
import { useEffect, useState } from 'preact/hooks'
import type { MessageView } from '../../../../node/src/api/contract.js'
import { useI18n } from '../i18n/index.js'
import type { Store } from '../store.js'
import { isGroup } from '../util.js'
import { Avatar } from './Avatar.js'
import { Composer } from './Composer.js'
import { MessageList } from './MessageList.js'
import { presenceOf } from './Sidebar.js'
import { errorText, groupMembersText, words } from './words.js'
import { useFileDrop } from './Files.js'

export interface ChatActions { onVerify: () => void, onMembers: () => void, onInfo: (m: MessageView) => void }

export function Chat ({ store, actions }: { store: Store, actions: ChatActions }) {
  const { t } = useI18n()
  const s = store.state
  const w = words(t, s)
  const current = s.current as string
  const group = isGroup(current) ? s.groups.get(current) : undefined
  const peer = isGroup(current) ? undefined : s.peers.get(current)
  const [filter, setFilter] = useState('')
  // files (issue 13): drop files anywhere on the conversation to send them
  const drop = useFileDrop(store)
  useEffect(() => { setFilter('') }, [current])
  useEffect(() => {
    const timer = setTimeout(() => { if (filter.trim() !== s.filter) void store.setFilter(filter.trim()) }, 250)
    return () => { clearTimeout(timer) }
  }, [filter])
  const sub = group !== undefined
    ? `${t.memberCount(group.members.length)} · ${groupMembersText(t, w, group)}${group.member ? '' : ` · ${t.noLongerMember}`}`
    : w.presence(peer) + (peer?.verified === true ? t.verifiedSuffix : '') +
      // a colleague on several computers: one person, and how many devices their account lists (issue 11)
      ((peer?.devices.length ?? 0) > 1 ? ` · ${t.peerDevices(peer?.devices.length ?? 0)}` : '')
  return (
    <section id="conversation" class={`conversation${drop.dragging ? ' dropping' : ''}`} aria-label={w.chatName(current)}
      onDragOver={drop.onDragOver} onDragLeave={drop.onDragLeave} onDrop={drop.onDrop} data-drop-text={t.files.dropHere}>
      <header class="chat-header">
        <button type="button" id="back" class="icon-button back" aria-label={t.back} title={t.back} onClick={() => { store.close() }}>‹</button>
        <Avatar id={current} name={w.chatName(current)} presence={group !== undefined ? undefined : presenceOf(peer, s.link === 'up')} />
        <div class="chat-title">
          <div id="peer-name" class="peer-name">{w.chatName(current)}</div>
          <div id="peer-presence" class="muted small" title={sub}>{sub}</div>
        </div>
        <div class="header-actions">
          <input id="search" type="search" value={filter} placeholder={t.searchChat} aria-label={t.searchChat}
            onInput={(e) => { setFilter(e.currentTarget.value) }} />
          {group === undefined
            ? <button type="button" id="open-verify" class="button-secondary" onClick={actions.onVerify}>{t.verify}</button>
            : <button type="button" id="open-members" class="button-secondary" onClick={actions.onMembers}>{t.members}</button>}
        </div>
      </header>
      {peer?.nameWarning != null &&
        <div id="key-warning" class="warning" role="alert" data-code={peer.nameWarning.code}>{t.nameWarning(peer.nameWarning)}</div>}
      {peer?.needsUpdate === true && <div id="needs-update" class="warning" role="status">{t.needsUpdateBanner(w.chatName(current))}</div>}
      {s.filter !== '' && <div id="search-banner" class="search-banner">{t.filterBanner(s.messages.length, s.filter)}</div>}
      <MessageList store={store} onInfo={actions.onInfo} />
      <div id="typing" class="typing muted small" hidden={s.typing === null}>{s.typing !== null ? t.typing(w.person(s.typing)) : ''}</div>
      {group?.member !== false && <Composer key={current} store={store} />}
      {s.error !== null && <div id="error" class="error" role="alert" data-code={s.error.code}>{errorText(t, s.error)}</div>}
    </section>
  )
}
