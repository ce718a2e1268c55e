/** What the views say about people, states and errors, in the reader's language. */
import type { GroupView, MessageView, PeerView, RelayState } from '../../../../node/src/api/contract.js'
import type { ApiError } from '../api.js'
import type { Messages } from '../i18n/index.js'
import { accountOf, isMe, type Link, type State } from '../store.js'
import { isGroup, shortId } from '../util.js'

export interface Words {
  /** a person's name (yours: "You" when `you`), or a short peer ID when they never told */
  person: (peerId: string, you?: boolean) => string
  /** a person or a group */
  chatName: (peer: string) => string
  presence: (p: PeerView | undefined) => string
  op: (m: MessageView) => string
  preview: (m: MessageView | null) => string
}

export function words (t: Messages, s: State): Words {
  const person = (peerId: string, you = false): string => {
    // a device ID (authors, recipients, typing) names its account's person
    if (isMe(s, peerId)) return you ? t.you : s.me?.name ?? t.you
    return s.peers.get(accountOf(s, peerId))?.name ?? shortId(peerId)
  }
  const chatName = (peer: string): string => isGroup(peer) ? s.groups.get(peer)?.name ?? peer.slice(0, 10) : person(peer)
  const presence = (p: PeerView | undefined): string => {
    // what we knew before our own node went away may be wrong by now
    if (s.link !== 'up') return t.presenceUnknown
    if (p === undefined || !p.online) return p?.lastSeen != null ? t.presenceLastSeen(p.lastSeen) : t.presenceOffline
    const where = p.reach === 'relay' ? t.presenceRelay : t.presenceLan
    return p.status === 'away' ? `${t.presenceAway} · ${where}` : p.status === 'dnd' ? `${t.presenceDnd} · ${where}` : where
  }
  /** membership lines are written from the signed op itself, never from text the author chose */
  const op = (m: MessageView): string => {
    const by = person(m.author, true)
    const o = m.op
    switch (o?.type) {
      case 'create': return t.opCreated(by, o.name)
      case 'add': return t.opAdded(by, person(o.member, true))
      case 'remove': return t.opRemoved(by, person(o.member, true))
      case 'rename': return t.opRenamed(by, o.name)
      case 'leave': return t.opLeft(by)
      default: return t.opChanged(by)
    }
  }
  const preview = (m: MessageView | null): string => {
    if (m === null) return ''
    if (m.op !== undefined) return op(m)
    if (m.recalled === true || m.change?.type === 'recall') return m.outgoing ? t.recalledYou : t.recalledBy(person(m.author))
    const text = m.text.replace(/\s+/g, ' ').slice(0, 120)
    if (m.outgoing) return t.previewYou(text)
    return isGroup(m.conv) ? t.previewAuthor(person(m.author), text) : text
  }
  return { person, chatName, presence, op, preview }
}

/** the sidebar's relay line: what is true, and on hover why */
export function relayLine (t: Messages, relay: RelayState | null, link: Link): { text: string, hint: string, tone: 'ok' | 'warn' | 'bad' | 'muted' } {
  if (link !== 'up') return { text: t.relayUnknown, hint: '', tone: 'muted' }
  if (relay === null || relay.addr === null) return { text: t.relayNone, hint: '', tone: 'muted' }
  // in the user's words, from the catalogs (the node's message is English for the logs)
  const why = relay.lastError !== null ? errorText(t, relay.lastError as ApiError) : ''
  if (relay.admitted === false) return { text: t.relayRefused, hint: t.relayRefusedHint, tone: 'bad' }
  if (relay.connected && relay.admitted !== true && relay.lastError !== null) {
    return { text: t.relayInviteRefused, hint: `${t.relayRefusedHint} (${why})`, tone: 'bad' }
  }
  if (relay.connected && relay.admitted === true) return { text: relay.waiting > 0 ? t.relayFetching(relay.waiting) : t.relayConnected, hint: '', tone: 'ok' }
  if (relay.connected) return { text: t.relayInvite, hint: '', tone: 'warn' }
  return { text: t.relayUnreachable, hint: why, tone: 'warn' }
}

/** what to tell the user about a failed call; `field` names what they typed, for the argument errors */
export function errorText (t: Messages, err: ApiError, field?: 'relayAddress' | 'invite' | 'name' | 'groupName'): string {
  // an edit or recall after its time (the node names the rule in `detail`)
  if (err.detail?.reason === 'too-late') return t.error.tooLate
  if (err.code === 'ERR_INVALID_ARGUMENT' && field !== undefined) return t.error[field]
  const known = (t.error as Record<string, unknown>)[err.code] ?? (t.errorCodes as Record<string, string | undefined>)[err.code]
  return typeof known === 'string' ? known : t.error.other(err.code)
}

export const groupMembersText = (t: Messages, w: Words, g: GroupView): string => t.memberList(g.members.map(m => w.person(m, true)))
