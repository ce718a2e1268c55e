/** The web UI's settings (language, theme, do not disturb), kept in the node's store so they survive a new port. */
import { ParleyError } from '../../../core/errors.js'
import type { MessageStore } from '../store/types.js'
import { DEFAULT_UI_PREFS, UI_LOCALES, UI_THEMES, type UiPrefs } from './contract.js'

const META_KEY = 'ui-prefs'

/** Checks a partial update from the API; throws ERR_INVALID_ARGUMENT naming the bad field. */
export function parseUiPrefs (value: unknown): Partial<UiPrefs> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ParleyError('ERR_INVALID_ARGUMENT', 'ui must be an object')
  const o = value as Record<string, unknown>
  const out: Partial<UiPrefs> = {}
  if (o.locale !== undefined) {
    if (!UI_LOCALES.includes(o.locale as UiPrefs['locale'])) throw new ParleyError('ERR_INVALID_ARGUMENT', `ui.locale must be one of ${UI_LOCALES.join(', ')}`)
    out.locale = o.locale as UiPrefs['locale']
  }
  if (o.theme !== undefined) {
    if (!UI_THEMES.includes(o.theme as UiPrefs['theme'])) throw new ParleyError('ERR_INVALID_ARGUMENT', `ui.theme must be one of ${UI_THEMES.join(', ')}`)
    out.theme = o.theme as UiPrefs['theme']
  }
  if (o.dnd !== undefined) {
    if (typeof o.dnd !== 'boolean') throw new ParleyError('ERR_INVALID_ARGUMENT', 'ui.dnd must be true or false')
    out.dnd = o.dnd
  }
  return out
}

export async function loadUiPrefs (store: MessageStore): Promise<UiPrefs> {
  const saved = await store.getMeta(META_KEY)
  // a value from an older or damaged store (anything parseUiPrefs refuses) falls back to the defaults
  let known: Partial<UiPrefs> = {}
  try { known = saved === undefined ? {} : parseUiPrefs(saved) } catch {}
  return { ...DEFAULT_UI_PREFS, ...known }
}

export async function saveUiPrefs (store: MessageStore, update: Partial<UiPrefs>): Promise<UiPrefs> {
  const next = { ...(await loadUiPrefs(store)), ...update }
  await store.putMeta(META_KEY, next)
  return next
}
