/** The reply and change (edit, recall) fields of `POST /v1/messages`, checked against the store before anything is sent. */
import { ParleyError } from '../../../core/errors.js'
import { MAX_QUOTE_CHARS, type MessageChange, type Quote } from '../../../core/protocol/envelope.js'
import type { MessageStore } from '../store/types.js'
import { changeRefusal, foldChanges, type AccountOfDevice, type ChangeWindows } from './changes.js'

/** the newest messages of a conversation looked at for an earlier change of the target */
const RECENT_FOR_CHANGES = 1000

export interface MessageExtras { reply?: Quote, change?: MessageChange }

const REFUSAL_TEXT = {
  unknown: 'no such message in this conversation',
  'not-yours': 'only its author can change a message',
  'not-changeable': 'this message cannot be changed (a group change, an edit itself, or recalled)',
  'too-late': 'this message is older than the time in which it can be changed'
} as const

/** `reply`: a message id of conversation `conv`; `change`: `{ type: 'edit' | 'recall', id }` of my own message there. */
export async function resolveExtras (
  body: Record<string, unknown>, c: { store: MessageStore, conv: string, me: string, windows: ChangeWindows, now?: number, accountOf?: AccountOfDevice }
): Promise<MessageExtras> {
  const out: MessageExtras = {}
  const inConv = async (id: unknown, what: string): Promise<NonNullable<Awaited<ReturnType<MessageStore['getMessage']>>>> => {
    if (typeof id !== 'string' || id === '') throw new ParleyError('ERR_INVALID_ARGUMENT', `${what} must be a message id`)
    const m = await c.store.getMessage(id)
    if (m === undefined || m.conv !== c.conv) throw new ParleyError('ERR_NOT_FOUND', `${what}: ${REFUSAL_TEXT.unknown}`)
    return m
  }
  if (body.reply !== undefined) {
    const m = await inConv(body.reply, 'reply')
    out.reply = { id: m.id, author: m.author, text: [...m.text].slice(0, MAX_QUOTE_CHARS).join('') }
  }
  if (body.change !== undefined) {
    const ch = body.change as { type?: unknown, id?: unknown } | null
    if (typeof ch !== 'object' || ch === null || (ch.type !== 'edit' && ch.type !== 'recall')) {
      throw new ParleyError('ERR_INVALID_ARGUMENT', 'change must be { type: "edit" | "recall", id }')
    }
    const stored = await inConv(ch.id, 'change')
    // as shown: already recalled? (receivers ignore a change of a recalled message anyway: this is for the sender's sake)
    const recent = foldChanges(await c.store.history(c.conv, { limit: RECENT_FOR_CHANGES }), c.accountOf)
    const target = recent.find(m => m.id === stored.id) ?? stored
    const change: MessageChange = { type: ch.type, id: target.id }
    const why = changeRefusal(target, c.me, change, c.now ?? Date.now(), c.windows, c.accountOf)
    // `detail.reason` for the UI, which says it in the user's words (a message too old to change: t.error.tooLate)
    if (why !== null) throw new ParleyError('ERR_INVALID_ARGUMENT', `change: ${REFUSAL_TEXT[why]}`, { detail: { reason: why } })
    if (change.type === 'recall' && body.text !== '') throw new ParleyError('ERR_INVALID_ARGUMENT', 'a recall has no text')
    out.change = change
  }
  if (out.reply !== undefined && out.change !== undefined) throw new ParleyError('ERR_INVALID_ARGUMENT', 'a message is a reply or a change, not both')
  return out
}
