/**
 * Edits and recalls (撤回) of a message, folded into what is shown. A change
 * is an ordinary message of the same conversation whose signed body names the
 * message it replaces (`change: { type, id }`), so it travels, is acked, synced
 * and fetched from the mailbox like any other, and every device of every
 * member ends up holding the same set of changes. Folding that set is
 * deterministic, so they all show the same thing:
 *
 * - a change counts only when its author wrote the target, in the same
 *   conversation, and the target is a text message (not a group op, not a change);
 *   the author is the account (issue 11): what one device of a person wrote, the
 *   person may edit or recall from any of their current devices (`accountOf`);
 * - changes apply in HLC order (ties by id): the last edit wins;
 * - a recall is final: later edits of a recalled message are ignored.
 *
 * The time window is the sender's rule (`changeRefusal`, checked before a
 * change is sent), not the receivers': a receiver with another setting, or a
 * clock ahead, would otherwise show something else than the rest.
 *
 * Pure code with no Node imports: the web UI folds the same way (via contract.ts).
 */
import type { MessageChange } from '../../../core/protocol/envelope.js'

export type { MessageChange }

/** how long after writing a message its author may still edit it. @default 24 h */
export const DEFAULT_EDIT_WINDOW_MS = 24 * 3600_000
/** how long after writing a message its author may still recall it. @default 24 h */
export const DEFAULT_RECALL_WINDOW_MS = 24 * 3600_000

export interface ChangeWindows { editMs: number, recallMs: number }
export const DEFAULT_CHANGE_WINDOWS: Readonly<ChangeWindows> = Object.freeze({ editMs: DEFAULT_EDIT_WINDOW_MS, recallMs: DEFAULT_RECALL_WINDOW_MS })


/** what folding needs of a message */
export interface Changeable {
  id: string
  conv: string
  author: string
  hlc: { w: number, c: number }
  text: string
  op?: unknown
  change?: MessageChange
  /** set by folding: the time of the edit now shown */
  editedAt?: number
  /** set by folding: the author recalled it (its text is gone) */
  recalled?: boolean
}

/** A device's account (identity while its account is not known: a one-device account). */
export type AccountOfDevice = (device: string) => string
const sameDevice: AccountOfDevice = (d) => d

/** `ch` may change `target`: the same author (account) and conversation, and a text message */
const mayChange = (target: Changeable, ch: Changeable, accountOf: AccountOfDevice): boolean =>
  accountOf(target.author) === accountOf(ch.author) && target.conv === ch.conv && target.op === undefined && target.change === undefined

const order = (a: Changeable, b: Changeable): number => a.hlc.w - b.hlc.w || a.hlc.c - b.hlc.c || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/**
 * Why the author (a device or its account) may not send `change` of `target` at `now` (null: they may).
 * The sender's rule.
 */
export function changeRefusal (
  target: Changeable | undefined, author: string, change: MessageChange, now: number, windows: ChangeWindows = DEFAULT_CHANGE_WINDOWS,
  accountOf: AccountOfDevice = sameDevice
): 'unknown' | 'not-yours' | 'not-changeable' | 'too-late' | null {
  if (target === undefined) return 'unknown'
  if (accountOf(target.author) !== accountOf(author)) return 'not-yours'
  if (target.op !== undefined || target.change !== undefined || target.recalled === true) return 'not-changeable'
  if (now - target.hlc.w > (change.type === 'edit' ? windows.editMs : windows.recallMs)) return 'too-late'
  return null
}

/**
 * The messages as shown: each change folded into its target, the change messages themselves left out.
 * A change whose target is not in `messages` is left out too (the target is older than the page: it is not shown).
 */
export function foldChanges<M extends Changeable> (messages: readonly M[], accountOf: AccountOfDevice = sameDevice): M[] {
  const changes = messages.filter(m => m.change !== undefined).sort(order)
  if (changes.length === 0) return [...messages]
  const shown = new Map<string, M>()
  for (const m of messages) if (m.change === undefined) shown.set(m.id, m)
  for (const ch of changes) {
    const change = ch.change as MessageChange
    const target = shown.get(change.id)
    if (target === undefined || target.recalled === true || !mayChange(target, ch, accountOf)) continue
    // an edit older than the one shown (it arrived late, e.g. by sync) changes nothing
    if (change.type === 'edit' && target.editedAt !== undefined && ch.hlc.w < target.editedAt) continue
    shown.set(target.id, change.type === 'recall'
      ? { ...target, text: '', recalled: true }
      : { ...target, text: ch.text, editedAt: ch.hlc.w })
  }
  return messages.filter(m => m.change === undefined).map(m => shown.get(m.id) as M)
}
