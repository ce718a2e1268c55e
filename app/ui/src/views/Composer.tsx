/** The message box: grows with its text, Enter sends (never while an input method is composing), refuses over-long text with a count. */
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks'
import { MAX_TEXT_CHARS, textLength } from '../../../../node/src/api/contract.js'
import { useI18n } from '../i18n/index.js'
import { isMe, type Store } from '../store.js'
import { isGroup } from '../util.js'
import { words } from './words.js'
import { AttachButton, useFileDrop } from './Files.js'

/** the box grows up to this height, then scrolls */
const MAX_HEIGHT_PX = 220
/** the count shows from this share of the limit on */
const COUNT_FROM = 0.9
export const EMOJI = [
  '😀', '😂', '😊', '😍', '🤔', '😅', '😢', '😮', '👍', '👎', '👏', '🙏', '💪', '🎉', '❤️', '🔥',
  '✅', '❌', '⏰', '☕', '🍜', '🍕', '📎', '📅', '🚀', '👀', '🙂', '😉', '🤝', '💡', '📌', '🆗'
]

/** the composer's count: measured as the node measures (UTF-16 units), shown from 90 % of the limit, `over` > 0 refuses */
export function textCount (text: string): { length: number, over: number, shown: boolean } {
  const length = textLength(text)
  return { length, over: length - MAX_TEXT_CHARS, shown: length >= MAX_TEXT_CHARS * COUNT_FROM }
}

export function Composer ({ store }: { store: Store }) {
  const { t } = useI18n()
  const s = store.state
  const w = words(t, s)
  const current = s.current as string
  const [text, setText] = useState(store.draftOf(current))
  const [sending, setSending] = useState(false)
  // the state above re-renders later; a second Enter in the same tick must see the send at once
  const busy = useRef(false)
  const [emoji, setEmoji] = useState(false)
  const [mention, setMention] = useState<{ at: number, query: string, index: number } | null>(null)
  const box = useRef<HTMLTextAreaElement>(null)
  // files (issue 13): a pasted image or file is sent as a file
  const { onPaste } = useFileDrop(store)

  useLayoutEffect(() => {
    const el = box.current
    if (el === null) return
    el.style.height = 'auto'
    el.style.height = `${Math.min(el.scrollHeight + 2, MAX_HEIGHT_PX)}px`
  }, [text])
  useLayoutEffect(() => { box.current?.focus() }, [current])
  const composing = s.composing
  useEffect(() => {
    // editing starts from the message's text; answering keeps what was typed
    if (composing?.mode === 'edit') change(composing.message.text)
    if (composing !== null) box.current?.focus()
  }, [composing])

  const { length, over, shown } = textCount(text)
  const change = (value: string): void => {
    setText(value)
    store.setDraft(current, value)
    store.typed()
    setMention(findMention(value, box.current?.selectionStart ?? value.length))
  }
  const members = isGroup(current) ? (s.groups.get(current)?.members ?? []).filter(m => !isMe(s, m)) : []
  const candidates = mention === null
    ? []
    : members.map(m => w.person(m)).filter(n => n.toLocaleLowerCase().startsWith(mention.query.toLocaleLowerCase())).slice(0, 6)

  const insert = (piece: string, replaceFrom?: number): void => {
    const el = box.current
    const end = el?.selectionStart ?? text.length
    const start = replaceFrom ?? end
    const value = text.slice(0, start) + piece + text.slice(el?.selectionEnd ?? end)
    change(value)
    setMention(null)
    requestAnimationFrame(() => { el?.focus(); el?.setSelectionRange(start + piece.length, start + piece.length) })
  }

  const submit = async (): Promise<void> => {
    // a second Enter while the first send is on its way must not send again; an over-long text is refused, never cut
    if (busy.current || text.trim() === '' || over > 0) return
    // an edit that changes nothing is no edit
    if (composing?.mode === 'edit' && text === composing.message.text) { change(''); store.cancelCompose(); return }
    const sent = text
    busy.current = true
    setSending(true)
    const ok = await store.send(sent)
    busy.current = false
    setSending(false)
    // only clear what was sent (the user may have typed on meanwhile)
    if (ok && box.current?.value === sent) change('')
    box.current?.focus()
  }

  const onKeyDown = (e: KeyboardEvent): void => {
    // a key that belongs to an input method composition (Chinese, Japanese…) is the input method's:
    // its Enter only confirms the characters, never sends nor picks a mention
    if (e.isComposing || e.keyCode === 229) return
    if (candidates.length > 0 && mention !== null) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault()
        const n = candidates.length
        setMention({ ...mention, index: (mention.index + (e.key === 'ArrowDown' ? 1 : n - 1)) % n })
        return
      }
      if (e.key === 'Enter' || e.key === 'Tab') { e.preventDefault(); insert(`@${candidates[mention.index] ?? ''} `, mention.at); return }
      if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); setMention(null); return }
    }
    if (e.key === 'Escape' && composing !== null) {
      e.preventDefault()
      if (composing.mode === 'edit') change('')
      store.cancelCompose()
      return
    }
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault()
      void submit()
    }
  }

  const group = isGroup(current) ? s.groups.get(current) : undefined
  return (
    <form id="composer" class="composer" onSubmit={(e) => { e.preventDefault(); void submit() }}>
      {composing !== null && (
        <div id="composing" class={`composing ${composing.mode}`}>
          <span class="composing-text">
            {composing.mode === 'edit' ? t.editing : t.replyingTo(w.person(composing.message.author))}
            {composing.mode === 'reply' && <span class="muted"> · {composing.message.text.slice(0, 80)}</span>}
          </span>
          <button type="button" id="compose-cancel" class="icon-button" aria-label={t.cancelCompose} title={t.cancelCompose}
            onClick={() => { if (composing.mode === 'edit') change(''); store.cancelCompose() }}>✕</button>
        </div>
      )}
      <div class="composer-row">
        <button type="button" id="emoji-button" class="icon-button" aria-label={t.emoji} title={t.emoji} aria-expanded={emoji}
          onClick={() => { setEmoji(!emoji) }}>☺</button>
        <AttachButton store={store} />
        <textarea id="text" ref={box} rows={1} value={text} aria-label={t.messageLabel} aria-invalid={over > 0}
          aria-describedby="text-count" placeholder={group !== undefined ? t.placeholderGroup(group.name) : t.placeholder}
          onInput={(e) => { change(e.currentTarget.value) }} onKeyDown={onKeyDown} onPaste={onPaste} />
        <button id="send" type="submit" disabled={sending || over > 0}>{t.send}</button>
      </div>
      <div id="text-count" class={`count small${over > 0 ? ' over' : ''}`} role={over > 0 ? 'alert' : undefined}
        hidden={!shown}>
        {over > 0 ? t.tooLong(over, MAX_TEXT_CHARS) : t.charCount(length, MAX_TEXT_CHARS)}
      </div>
      {emoji && (
        <div id="emoji-picker" class="emoji-picker" role="dialog" aria-label={t.emoji}
          onKeyDown={(e) => { if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); setEmoji(false); box.current?.focus() } }}>
          {EMOJI.map(em => <button type="button" key={em} class="emoji" onClick={() => { insert(em); setEmoji(false) }}>{em}</button>)}
        </div>
      )}
      {candidates.length > 0 && mention !== null && (
        <ul id="mention-list" class="mention-list" role="listbox">
          {candidates.map((n, i) => (
            <li key={n} role="option" aria-selected={i === mention.index} class={i === mention.index ? 'selected' : undefined}
              onMouseDown={(e) => { e.preventDefault(); insert(`@${n} `, mention.at) }}>@{n}</li>
          ))}
        </ul>
      )}
    </form>
  )
}

/** an "@abc" being typed just before the cursor: where it starts and what follows the @ */
export function findMention (text: string, cursor: number): { at: number, query: string, index: number } | null {
  const m = /(^|\s)@([^\s@]{0,32})$/u.exec(text.slice(0, cursor))
  return m === null ? null : { at: cursor - (m[2] as string).length - 1, query: m[2] as string, index: 0 }
}
