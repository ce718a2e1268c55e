/** The console shell: login, tabs, language. */
import { useEffect, useState } from 'preact/hooks'
import type { LocaleChoice } from '../../../shared/i18n.js'
import { api } from '../api.js'
import { errorText } from '../errors.js'
import { I18nContext, makeI18n, savedChoice, useI18n } from '../i18n.js'
import { Audit } from './Audit.js'
import { Directory } from './Directory.js'
import { Federation } from './Federation.js'
import { Invites } from './Invites.js'
import { Overview } from './Overview.js'
import { Policy } from './Policy.js'
import { Users } from './Users.js'

type Tab = 'overview' | 'users' | 'invites' | 'directory' | 'federation' | 'policy' | 'audit'
const TABS: Tab[] = ['overview', 'users', 'invites', 'directory', 'federation', 'policy', 'audit']

export function App () {
  const [choice, setChoice] = useState<LocaleChoice>(savedChoice())
  const i18n = makeI18n(choice)
  const [who, setWho] = useState<string | null | undefined>(undefined)
  useEffect(() => {
    // a login link (parley-relay console-url) carries the token in the fragment, which never reaches a server log
    const token = new URLSearchParams(location.hash.slice(1)).get('token')
    if (token !== null) history.replaceState(null, '', location.pathname)
    const start = token !== null ? api.login({ token, name: 'admin' }) : api.session()
    start.then(s => { setWho(s.who) }, () => { setWho(null) })
  }, [])
  return (
    <I18nContext.Provider value={i18n}>
      <header class="top">
        <h1>{i18n.t.title}</h1>
        <label class="lang">{i18n.t.language}{' '}
          <select value={choice} onChange={e => { setChoice((e.target as HTMLSelectElement).value as LocaleChoice) }} data-testid="language">
            <option value="auto">{i18n.t.auto}</option><option value="zh-CN">中文</option><option value="en">English</option>
          </select>
        </label>
        {who !== null && who !== undefined && (
          <span class="who">{i18n.t.loggedInAs(who)}{' '}
            <button onClick={() => { void api.logout().then(() => { setWho(null) }) }}>{i18n.t.logOut}</button>
          </span>
        )}
      </header>
      {who === null && <Login onDone={setWho} />}
      {who !== null && who !== undefined && <Tabs />}
    </I18nContext.Provider>
  )
}

function Login ({ onDone }: { onDone: (who: string) => void }) {
  const { t } = useI18n()
  const [secret, setSecret] = useState('')
  const [name, setName] = useState('')
  const [byPassword, setByPassword] = useState(false)
  const [error, setError] = useState('')
  const submit = (e: Event): void => {
    e.preventDefault()
    const creds = byPassword ? { password: secret, name } : { token: secret, name }
    api.login(creds).then(r => { onDone(r.who) }, (err: unknown) => { setError(t.loginFailed(errorText(t, err))) })
  }
  return (
    <form class="login card" onSubmit={submit}>
      <h2>{t.loginTitle}</h2>
      <p class="muted">{t.loginHint}</p>
      <label><input type="radio" checked={!byPassword} onChange={() => { setByPassword(false) }} /> {t.token}</label>{' '}
      <label><input type="radio" checked={byPassword} onChange={() => { setByPassword(true) }} /> {t.password}</label>
      <input type="password" data-testid="secret" value={secret} autocomplete="off" required
        onInput={e => { setSecret((e.target as HTMLInputElement).value) }} />
      <label>{t.yourName}<input data-testid="login-name" value={name} onInput={e => { setName((e.target as HTMLInputElement).value) }} /></label>
      <button type="submit" data-testid="login">{t.logIn}</button>
      {error !== '' && <p class="error" role="alert">{error}</p>}
    </form>
  )
}

function Tabs () {
  const { t } = useI18n()
  const [tab, setTab] = useState<Tab>('overview')
  return (
    <>
      <nav class="tabs" role="tablist">
        {TABS.map(x => (
          <button role="tab" aria-selected={tab === x} data-testid={`tab-${x}`} onClick={() => { setTab(x) }}>
            {x === 'federation' ? t.fedTab : t.tabs[x]}
          </button>
        ))}
      </nav>
      <main>
        {tab === 'overview' && <Overview />}
        {tab === 'users' && <Users />}
        {tab === 'invites' && <Invites />}
        {tab === 'directory' && <Directory />}
        {tab === 'federation' && <Federation />}
        {tab === 'policy' && <Policy />}
        {tab === 'audit' && <Audit />}
      </main>
    </>
  )
}
