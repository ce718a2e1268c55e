// Entry of the web UI bundle (scripts/build.mjs → dist/ui/main.js and main.css).
// It talks only to the local API of the node that served it.
import { render } from 'preact'
import './style.css'
import { ApiClient, ApiError } from './api.js'
import { errorText } from './views/words.js'
import { Store } from './store.js'
import { pickLocale } from '../../shared/i18n.js'
import { uiI18n } from './i18n/index.js'
import { App } from './views/App.js'

const TOKEN_KEY = 'parley-token'
/** `#idle=MS` (tests) shortens the time without input after which the user shows as away; read before the token clears the fragment */
const IDLE_MS = Number(new URLSearchParams(location.hash.slice(1)).get('idle') ?? NaN)

function takeToken (): string {
  // the address printed by `parley start` carries the token in the fragment (never sent to a server): keep it, clear the bar
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token')
  if (fromHash !== null) {
    sessionStorage.setItem(TOKEN_KEY, fromHash)
    history.replaceState(null, '', location.pathname)
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? ''
}

/** how often a page whose node does not answer tries again */
const START_RETRY_MS = 3000

function fail (text: string): void {
  const p = document.createElement('p')
  p.className = 'pad error'
  p.id = 'start-error'
  p.setAttribute('role', 'alert')
  p.textContent = text
  // in #root, which the app replaces once the node answers
  const root = document.getElementById('root')
  if (root !== null) root.replaceChildren(p)
  else document.body.replaceChildren(p)
}

async function main (): Promise<void> {
  const token = takeToken()
  const { t } = uiI18n(pickLocale(navigator.languages))
  if (token === '') { fail(t.noToken); return }
  const store = new Store(new ApiClient(token))
  // while the node does not answer (it may still be starting, or restarting), say so in words and try again
  for (;;) {
    try {
      await store.start()
      break
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError('ERR_INTERNAL', String(err))
      fail(t.startFailed(errorText(t, e)))
      if (e.code !== 'ERR_UNREACHABLE') return
      await new Promise(resolve => setTimeout(resolve, START_RETRY_MS))
    }
  }
  store.watchIdle(Number.isFinite(IDLE_MS) && IDLE_MS > 0 ? IDLE_MS : undefined)
  const root = document.getElementById('root') as HTMLElement
  root.replaceChildren()
  render(<App store={store} />, root)
  // ask for notifications on the first click (browsers refuse a request without a gesture)
  document.addEventListener('click', () => {
    if ('Notification' in window && Notification.permission === 'default') void Notification.requestPermission()
  }, { once: true })
}

void main()
