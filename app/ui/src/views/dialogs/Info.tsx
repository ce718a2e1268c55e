/** Safety-number verification, message info (times, state, route, recipients), and the Ctrl/Cmd+K quick switcher. */
import { useEffect, useState } from 'preact/hooks'
import { STATE_RANK, type MessageView, type PeerView, type RecipientView } from '../../../../../node/src/api/contract.js'
import { useI18n, type Messages } from '../../i18n/index.js'
import { accountOf, isMe, type State, type Store } from '../../store.js'
import { isGroup } from '../../util.js'
import { Avatar } from '../Avatar.js'
import { Dialog } from '../Dialog.js'
import { words } from '../words.js'

export function Verify ({ store, peer, onClose }: { store: Store, peer: PeerView, onClose: () => void }) {
  const { t } = useI18n()
  const w = words(t, store.state)
  const toggle = async (): Promise<void> => { store.putPeer(await store.api.verify(peer.peerId, !peer.verified)) }
  return (
    <Dialog id="verify" label={t.verifyTitle(w.person(peer.peerId))} onClose={onClose}>
      <h2>{t.verifyTitle(w.person(peer.peerId))}</h2>
      <p>{t.verifyExplain}</p>
      <pre id="safety-number" class="safety">{peer.safetyNumber.replace(/(\d{5} \d{5} \d{5}) /g, '$1\n')}</pre>
      <p class="muted small">{t.theirId} <code id="verify-id">{peer.peerId}</code></p>
      <p id="verify-state" class="small">{peer.verified ? t.verifiedState : t.notVerified}</p>
      <div class="dialog-actions">
        <button type="button" id="verify-close" class="button-secondary" onClick={onClose}>{t.close}</button>
        <button type="button" id="verify-toggle" onClick={() => { void toggle() }}>{peer.verified ? t.clearVerified : t.markVerified}</button>
      </div>
    </Dialog>
  )
}

/**
 * The recipients of a message, one row per person (`peer`: their account): their devices folded into the
 * furthest state, failed only when no device has it. Our own other devices are not recipients to show.
 */
export function byPerson (s: State, recipients: RecipientView[]): RecipientView[] {
  const rank = (r: RecipientView): number => r.state === 'failed' ? -1 : STATE_RANK[r.state]
  const people = new Map<string, RecipientView>()
  for (const r of recipients) {
    const who = r.account ?? accountOf(s, r.peer)
    if (isMe(s, who)) continue
    const seen = people.get(who)
    if (seen === undefined || rank(r) > rank(seen)) people.set(who, { ...r, peer: who })
  }
  return [...people.values()]
}

/**
 * The per-device detail under a person's row (issue 11): each of their devices that got a key wrap, with
 * its label (or the end of its ID) and its own state; empty for a person with one device.
 */
export function devicesOfPerson (s: State, recipients: RecipientView[], who: string): Array<{ peer: string, label: string, state: RecipientView['state'] }> {
  const mine = recipients.filter(r => (r.account ?? accountOf(s, r.peer)) === who)
  if (mine.length < 2) return []
  const labels = s.peers.get(who)?.devices ?? []
  return mine.map(r => ({ peer: r.peer, label: labels.find(d => d.peerId === r.peer)?.label ?? `…${r.peer.slice(-6)}`, state: r.state }))
}

/**
 * The route line of message info: how the message went, or why it waits; for another office's recipient
 * or author, through which office's relay (federation, issue 12). `rows`: its recipients, one per person.
 */
export function routeLine (t: Messages, m: MessageView, rows: RecipientView[], person: (peer: string) => string): string {
  const held = m.relayRefusal
  // the way it went, when every recipient that has it took the same one
  const routes = new Set(rows.map(r => r.via))
  const via = routes.size === 1 ? [...routes][0] : undefined
  const received = m.via === undefined ? t.routeIncoming
    : `${t.routeReceived(t.routeVia[m.via])}${m.viaPeer !== undefined ? ` ${t.routeForwarded(person(m.viaPeer))}` : ''}`
  // federation (issue 12): a recipient of another office, the words of our relay's bounce
  const office = rows.find(r => r.office !== undefined)?.office
  const fedError = m.error !== undefined ? t.fedRefusal[m.error] ?? t.fedRefusalMore[m.error] : undefined
  // waiting in our relay's queue: that office's relay cannot be reached (fed12)
  const waiting = m.waiting ?? rows.find(r => r.waiting !== undefined)?.waiting
  return !m.outgoing ? (m.office !== undefined ? `${received} ${t.routeOffice(m.office)}` : received)
    : m.state === 'queued' ? `${t.routeQueued}${held !== undefined ? ` ${t.relayRefusal[held] ?? t.relayRefusalOther(held)}.` : ''}`
      : m.state === 'sent'
        ? (waiting !== undefined ? t.routeOfficeWaiting(waiting.office, waiting.since) : office !== undefined ? t.routeOfficeSent(office) : t.routeRelay)
        : m.state === 'failed' && fedError !== undefined && (office !== undefined || m.error === 'ERR_FED_EXPIRED' || m.error === 'ERR_FED_NOT_PAIRED')
          ? `${t.fedFailed} ${fedError}`
          : m.state === 'failed' ? `${t.routeFailed} ${m.error !== undefined ? (t.refusal as Record<string, string>)[m.error] ?? t.refusalOther(m.error) : ''}`
            : `${via !== undefined ? t.routeDelivered(t.routeVia[via]) : t.routeDirect}${office !== undefined ? ` ${t.routeOfficeVia(office)}` : ''}`
}

export function MessageInfo ({ store, message, onClose }: { store: Store, message: MessageView, onClose: () => void }) {
  const { t, f } = useI18n()
  const s = store.state
  const w = words(t, s)
  // the newest state of this message, as events move it on
  const m = s.messages.find(x => x.id === message.id) ?? message
  // each recipient's state, from this node's outbox (asked again whenever the message moves on)
  const [recipients, setRecipients] = useState<RecipientView[]>([])
  useEffect(() => {
    if (m.outgoing) void store.api.recipients(m.id).then(setRecipients, () => {})
  }, [m.id, m.state, m.readBy?.length])
  const rows = byPerson(s, recipients)
  const route = routeLine(t, m, rows, w.person)
  return (
    <Dialog id="message-info" label={t.infoTitle} onClose={onClose}>
      <h2>{t.infoTitle}</h2>
      <blockquote class="quote">{m.text.slice(0, 300)}</blockquote>
      <dl class="info-list">
        <dt>{t.infoWritten}</dt><dd>{f.dateTime(m.hlc.w)}</dd>
        <dt>{t.infoStored}</dt><dd>{f.dateTime(m.storedAt)}</dd>
        <dt>{t.infoState}</dt><dd id="info-state" data-state={m.state}>{t.state[m.state]}</dd>
        <dt>{t.infoRoute}</dt><dd id="info-route">{route}</dd>
      </dl>
      {rows.length > 0 && (
        <>
          <h3>{t.infoRecipients}</h3>
          <ul id="info-recipients" class="members-list">
            {rows.map(r => (
              <li key={r.peer} data-peer={r.peer} data-state={r.state}>
                <Avatar id={r.peer} name={w.person(r.peer)} small />
                <span>{w.person(r.peer)}</span>
                <span class="small muted">{r.state === 'failed' ? t.infoRefusedBy : t.state[r.state]}
                  {r.via !== undefined && <span class="via" data-via={r.via}> · {t.routeVia[r.via]}</span>}
                  {r.office !== undefined && <span class="office" data-office={r.office}> {t.routeOfficeVia(r.office)}</span>}</span>
                {devicesOfPerson(s, recipients, r.peer).map(d => (
                  <div key={d.peer} class="small muted info-device" data-device={d.peer} data-state={d.state}>
                    {d.label}: {d.state === 'failed' ? t.infoRefusedBy : t.state[d.state]}
                  </div>
                ))}
              </li>
            ))}
          </ul>
        </>
      )}
      <div class="dialog-actions"><button type="button" id="info-close" onClick={onClose}>{t.close}</button></div>
    </Dialog>
  )
}

export function QuickSwitcher ({ store, onClose }: { store: Store, onClose: () => void }) {
  const { t } = useI18n()
  const w = words(t, store.state)
  const [query, setQuery] = useState('')
  const [index, setIndex] = useState(0)
  const q = query.trim().toLocaleLowerCase()
  const matches = store.conversations(w.chatName).filter(p => w.chatName(p).toLocaleLowerCase().includes(q)).slice(0, 8)
  const go = (peer: string | undefined): void => { if (peer !== undefined) { onClose(); void store.open(peer) } }
  return (
    <Dialog id="switcher" label={t.switcherLabel} onClose={onClose}>
      <input id="switcher-input" type="search" value={query} placeholder={t.switcherPlaceholder} aria-label={t.switcherLabel} autoFocus
        aria-controls="switcher-list" aria-activedescendant={matches[index] !== undefined ? `sw-${index}` : undefined}
        onInput={(e) => { setQuery(e.currentTarget.value); setIndex(0) }}
        onKeyDown={(e) => {
          // an input method's Enter only confirms its characters (拼音 → 陈静): it picks no chat yet
          if (e.isComposing || e.keyCode === 229) return
          if (e.key === 'ArrowDown') { e.preventDefault(); setIndex(Math.min(index + 1, matches.length - 1)) }
          if (e.key === 'ArrowUp') { e.preventDefault(); setIndex(Math.max(index - 1, 0)) }
          if (e.key === 'Enter') { e.preventDefault(); go(matches[index]) }
        }} />
      <ul id="switcher-list" class="people" role="listbox">
        {matches.map((p, i) => (
          <li key={p} id={`sw-${i}`} role="option" aria-selected={i === index} class={`person${i === index ? ' active' : ''}`} data-peer={p}
            onMouseDown={(e) => { e.preventDefault(); go(p) }}>
            <Avatar id={p} name={w.chatName(p)} small /><span class="name">{w.chatName(p)}</span>
          </li>
        ))}
      </ul>
      {matches.length === 0 && <p class="muted small">{t.switcherNone}</p>}
    </Dialog>
  )
}
