/**
 * What the node found in its own message store at start (GET /status
 * `store`, issue 9): a banner while the damage is news, and the words for a
 * message held until colleagues confirmed our message numbers.
 */
import { useEffect, useState } from 'preact/hooks'
import type { MessageView, StoreHealthView } from '../../../../node/src/api/contract.js'
import type { Messages } from '../i18n/index.js'
import { useI18n } from '../i18n/index.js'
import type { Store } from '../store.js'

/** The banner's text, or null when there is nothing to say. */
export function storeDamageText (t: Messages, h: StoreHealthView | undefined): string | null {
  if (h === undefined || !h.damaged) return null
  const lost = h.uncounted.length > 0 ? (h.lost === 0 ? t.storeLostUnknown : t.storeLostAtLeast(h.lost)) : t.storeLost(h.lost)
  return `${t.storeDamaged} ${lost} ${t.storeComesBack}${h.checking ? ' ' + t.storeChecking : ''}`
}

/** For an outgoing message held (not sent yet): what the state line adds, and its hint; null otherwise. */
export function heldNote (t: Messages, m: Pick<MessageView, 'held' | 'outgoing'>): { text: string, hint: string } | null {
  return m.outgoing && m.held === true ? { text: t.heldState, hint: t.heldHint } : null
}

/** while the node still checks its message numbers, the banner reads GET /status again this often */
export const STATUS_RECHECK_MS = 5000

/** the timer functions pollStoreHealth uses (the window's, or a test's) */
export interface PollTimers {
  setTimeout: (f: () => void, ms: number) => unknown
  clearTimeout: (t: unknown) => void
}

/**
 * Reads the store health now, and again every STATUS_RECHECK_MS while the
 * node still checks its message numbers (`checking`), so the banner's "new
 * messages wait" goes away when that ends. Returns the stop function.
 */
export function pollStoreHealth (
  status: () => Promise<{ store?: StoreHealthView }>, set: (h: StoreHealthView | undefined) => void,
  timers: PollTimers = { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (t) => { clearTimeout(t as ReturnType<typeof setTimeout>) } }
): () => void {
  let stopped = false
  let timer: unknown
  const read = (): void => {
    void status().then(s => {
      if (stopped) return
      set(s.store)
      if (s.store?.checking === true) timer = timers.setTimeout(read, STATUS_RECHECK_MS)
    }, () => {})
  }
  read()
  return () => { stopped = true; if (timer !== undefined) timers.clearTimeout(timer) }
}

export function StoreBanner ({ store }: { store: Store }) {
  const { t } = useI18n()
  const [health, setHealth] = useState<StoreHealthView | undefined>(undefined)
  const [closed, setClosed] = useState(false)
  // read again while our numbers are being checked with colleagues, so "new messages wait" goes away when it ends
  useEffect(() => pollStoreHealth(async () => await store.api.status(), setHealth), [store])
  const text = storeDamageText(t, health)
  if (text === null || closed) return null
  return (
    <div id="store-damage" class="banner warn" role="status">
      {text} <button type="button" class="link-button" onClick={() => { setClosed(true) }}>{t.storeDismiss}</button>
    </div>
  )
}
