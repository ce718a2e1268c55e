/** The open chat's messages: day separators, the "new messages" divider, long ones collapsed, older ones loaded on scroll. */
import { useLayoutEffect, useRef, useState } from 'preact/hooks'
import { changeRefusal, type MessageView } from '../../../../node/src/api/contract.js'
import { useI18n } from '../i18n/index.js'
import type { Store } from '../store.js'
import { dayOf, isGroup, isLong, mentionsName } from '../util.js'
import { Confirm } from './Dialog.js'
import { MessageText } from './Text.js'
import { heldNote } from './StoreHealth.js'
import { words } from './words.js'

/** within this many pixels of the bottom, new messages keep the list scrolled down */
const STICK_PX = 40
/** this close to the top, older messages are fetched */
const OLDER_PX = 120

export function MessageList ({ store, onInfo }: { store: Store, onInfo: (m: MessageView) => void }) {
  const { t, f } = useI18n()
  const s = store.state
  const w = words(t, s)
  const ref = useRef<HTMLOListElement>(null)
  const stick = useRef(true)
  const before = useRef<{ height: number, top: number, first: string | undefined } | null>(null)
  const shownFor = useRef<string | null>(null)
  const jumped = useRef<string | null>(null)

  useLayoutEffect(() => {
    const list = ref.current
    if (list === null) return
    const first = s.messages[0]?.id
    // the first render of a chat with its messages: at the divider if there is one, else at the bottom
    const opened = shownFor.current !== s.current && s.messages.length > 0
    if (opened) { shownFor.current = s.current; stick.current = true }
    const jump = s.focusId !== null && s.focusId !== jumped.current ? s.focusId : null
    const selector = jump !== null ? `[data-id="${CSS.escape(jump)}"]` : opened && s.unreadFrom !== null ? '#unread-divider' : null
    const target = selector !== null ? list.querySelector(selector) : null
    if (target !== null) {
      if (jump !== null) jumped.current = jump
      target.scrollIntoView({ block: jump !== null ? 'center' : 'start' })
      stick.current = list.scrollHeight - list.scrollTop - list.clientHeight < STICK_PX
    } else if (before.current !== null && before.current.first !== first) {
      // older messages went in above: keep what the user was reading where it was
      list.scrollTop = before.current.top + (list.scrollHeight - before.current.height)
      before.current = null
    } else if (stick.current) {
      list.scrollTop = list.scrollHeight
    }
    // kept until the older page is in: a message arriving meanwhile must not make the list forget where the
    // reader was (it stayed at the top, and every scroll then fetched one more page: the whole history)
    if (opened) before.current = null
  }, [s.messages, s.current, s.focusId])

  const onScroll = (): void => {
    const list = ref.current
    if (list === null) return
    stick.current = list.scrollHeight - list.scrollTop - list.clientHeight < STICK_PX
    if (list.scrollTop < OLDER_PX && s.hasOlder && !s.loadingOlder) {
      before.current = { height: list.scrollHeight, top: list.scrollTop, first: s.messages[0]?.id }
      void store.loadOlder()
    }
  }

  const names = isGroup(s.current) ? (s.groups.get(s.current)?.members ?? []).map(m => w.person(m)) : []
  const items = []
  let day = -1
  for (const m of s.messages) {
    const d = dayOf(m.hlc.w)
    if (d !== day) {
      day = d
      items.push(<li key={`day-${d}`} class="day-separator" role="separator"><span>{f.day(m.hlc.w)}</span></li>)
    }
    if (m.id === s.unreadFrom) items.push(<li key="unread" id="unread-divider" class="unread-divider" role="separator"><span>{t.newMessages}</span></li>)
    items.push(m.op !== undefined
      ? <li key={m.id} class="msg system" data-id={m.id}>{w.op(m)}</li>
      : <Message key={m.id} store={store} m={m} names={names} onInfo={onInfo} />)
  }
  return (
    <ol id="messages" class="messages" ref={ref} onScroll={onScroll} aria-live="polite" tabIndex={-1}>
      {s.filter === '' && (s.loadingOlder
        ? <li class="history-edge muted small">{t.loadingOlder}</li>
        : !s.hasOlder && s.messages.length > 0 && <li class="history-edge muted small">{t.beginning}</li>)}
      {items}
    </ol>
  )
}

function Message ({ store, m, names, onInfo }: { store: Store, m: MessageView, names: string[], onInfo: (m: MessageView) => void }) {
  const { t, f } = useI18n()
  const s = store.state
  const w = words(t, s)
  const long = isLong(m.text)
  const [open, setOpen] = useState(false)
  const [copied, setCopied] = useState(false)
  const [asking, setAsking] = useState(false)
  if (m.recalled === true) {
    return <li class="msg system recalled" data-id={m.id}>{m.outgoing ? t.recalledYou : t.recalledBy(w.person(m.author))}</li>
  }
  const copy = (): void => {
    void navigator.clipboard?.writeText(m.text).then(() => { setCopied(true); setTimeout(() => { setCopied(false) }, 1500) }, () => {})
  }
  const myName = s.me?.name ?? ''
  const mentionsMe = !m.outgoing && mentionsName(m.text, myName)
  const refusal = m.state === 'failed' && m.error !== undefined ? (t.refusal as Record<string, string>)[m.error] ?? t.refusalOther(m.error) : undefined
  // queued, and the relay would not keep a copy: say why
  const held = m.state === 'queued' ? m.relayRefusal : undefined
  // held until colleagues confirmed our message numbers (issue 9)
  const waiting = heldNote(t, m)
  const me = s.me?.peerId ?? ''
  const now = Date.now()
  const canEdit = m.outgoing && changeRefusal(m, me, { type: 'edit', id: m.id }, now, s.changeWindows) === null
  const canRecall = m.outgoing && changeRefusal(m, me, { type: 'recall', id: m.id }, now, s.changeWindows) === null
  const member = !isGroup(s.current) || s.groups.get(s.current)?.member !== false
  return (
    <li class={`msg${m.outgoing ? ' mine' : ''}${s.focusId === m.id ? ' focused' : ''}${mentionsMe ? ' mentions-me' : ''}`} data-id={m.id}>
      {isGroup(m.conv) && !m.outgoing && <div class="author">{w.person(m.author)}</div>}
      {m.reply !== undefined && (
        <button type="button" class="quote reply-quote" onClick={() => { store.jump(m.reply?.id ?? '') }}>
          <span class="quote-author">{w.person(m.reply.author)}</span> {m.reply.text}
        </button>
      )}
      <div class={`body${long && !open ? ' collapsed' : ''}`}>
        <MessageText text={m.text} needle={s.filter !== '' ? s.filter : s.focusId === m.id ? s.searchText.trim() : ''} names={names} myName={myName} />
      </div>
      {long && <button type="button" class="link-button more" aria-expanded={open} onClick={() => { setOpen(!open) }}>{open ? t.showLess : t.showMore}</button>}
      <div class="meta">
        {m.editedAt !== undefined && <span class="edited" title={t.editedAt(m.editedAt)}>{t.edited}</span>}
        <time dateTime={new Date(m.hlc.w).toISOString()} title={f.dateTime(m.hlc.w)}>{f.time(m.hlc.w)}</time>
        {m.outgoing && (
          <span class={`state state-${m.state}`} data-state={m.state} data-refusal={held} data-held={waiting !== null ? 'true' : undefined}
            title={waiting?.hint ?? (held !== undefined ? t.relayRefusalNext : refusal)}>
            {' '}{t.state[m.state]}{waiting !== null ? `: ${waiting.text}` : held !== undefined && `: ${t.relayRefusal[held] ?? t.relayRefusalOther(held)}`}
          </span>
        )}
        <span class="actions">
          {member && <button type="button" class="msg-action reply" onClick={() => { store.compose('reply', m) }}>{t.reply}</button>}
          {canEdit && <button type="button" class="msg-action edit" onClick={() => { store.compose('edit', m) }}>{t.edit}</button>}
          {canRecall && <button type="button" class="msg-action recall" onClick={() => { setAsking(true) }}>{t.recall}</button>}
          <button type="button" class="msg-action copy" onClick={copy} aria-label={t.copy}>{copied ? t.copied : t.copy}</button>
          <button type="button" class="msg-action info" onClick={() => { onInfo(m) }} aria-label={t.info}>{t.info}</button>
        </span>
      </div>
      {asking && <Confirm text={t.confirmRecall} onNo={() => { setAsking(false) }} onYes={() => { setAsking(false); void store.recall(m) }} />}
    </li>
  )
}
