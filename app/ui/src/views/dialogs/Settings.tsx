/** Settings (name, relay, invite, language, appearance, do not disturb), and the first-run name question. */
import { useState } from 'preact/hooks'
import type { UiPrefs } from '../../../../../node/src/api/contract.js'
import { ApiError } from '../../api.js'
import { useI18n } from '../../i18n/index.js'
import type { Store } from '../../store.js'
import { Dialog, ErrorLine, NameOver } from '../Dialog.js'
import { errorText } from '../words.js'
import { DownloadsSetting } from '../Files.js'
import { Devices, LinkJoin } from './Devices.js'

export function Settings ({ store, onClose }: { store: Store, onClose: () => void }) {
  const { t } = useI18n()
  const s = store.state
  const savedRelay = s.relay?.addr ?? ''
  const [name, setName] = useState(s.me?.name ?? '')
  const [relay, setRelay] = useState(savedRelay)
  const [invite, setInvite] = useState('')
  const [prefs, setPrefs] = useState<UiPrefs>(s.prefs)
  const [error, setError] = useState<string | null>(null)
  const [devices, setDevices] = useState(false)

  const save = async (e: Event): Promise<void> => {
    e.preventDefault()
    const body: Parameters<typeof store.api.saveSettings>[0] = { name: name.trim(), ui: prefs }
    // the relay is sent only when it or the invite changed: sending it again would reset a pending invite
    const relayChanged = relay.trim() !== savedRelay || invite.trim() !== ''
    if (relayChanged) { body.relay = relay.trim() === '' ? null : relay.trim(); body.invite = invite.trim() === '' ? null : invite.trim() }
    try {
      const saved = await store.api.saveSettings(body)
      store.setMe(saved.name)
      store.setRelay(saved.relay)
      store.setPrefs(saved.ui)
      onClose()
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError('ERR_INTERNAL', String(err))
      // the server names the field in its message; the user gets the field's rule in their words
      const field = /relay|multiaddr/i.test(e.message) ? 'relayAddress' : /invite/i.test(e.message) ? 'invite' : /name/i.test(e.message) ? 'name' : undefined
      setError(errorText(t, e, field))
    }
  }

  return (
    <Dialog id="settings" label={t.settings} onClose={onClose}>
      <form id="settings-form" onSubmit={(e) => { void save(e) }}>
        <h2>{t.settings}</h2>
        <label>{t.displayName} <input id="set-name" value={name} required
          onInput={(e) => { setName(e.currentTarget.value) }} /></label>
        <NameOver id="set-name-over" value={name} />
        <label>{t.relayAddress} <input id="set-relay" value={relay} placeholder={t.relayPlaceholder}
          onInput={(e) => { setRelay(e.currentTarget.value) }} /></label>
        <label>{t.invite} <input id="set-invite" value={invite} placeholder={t.invitePlaceholder}
          onInput={(e) => { setInvite(e.currentTarget.value) }} /></label>
        <div class="settings-row">
          <label>{t.language}
            <select id="set-locale" value={prefs.locale} onChange={(e) => { setPrefs({ ...prefs, locale: e.currentTarget.value as UiPrefs['locale'] }) }}>
              <option value="auto">{t.languageAuto}</option>
              <option value="zh-CN" lang="zh-CN">简体中文</option>
              <option value="en" lang="en">English</option>
            </select>
          </label>
          <label>{t.theme}
            <select id="set-theme" value={prefs.theme} onChange={(e) => { setPrefs({ ...prefs, theme: e.currentTarget.value as UiPrefs['theme'] }) }}>
              <option value="auto">{t.themeAuto}</option>
              <option value="light">{t.themeLight}</option>
              <option value="dark">{t.themeDark}</option>
            </select>
          </label>
        </div>
        <label class="check"><input id="set-dnd" type="checkbox" checked={prefs.dnd}
          onChange={(e) => { setPrefs({ ...prefs, dnd: e.currentTarget.checked }) }} /> {t.dnd}</label>
        <DownloadsSetting store={store} />
        <p class="muted small" id="change-windows">{t.changeWindowsNote(s.changeWindows.editMs, s.changeWindows.recallMs)}</p>
        <p class="muted small">{t.yourId} <code id="my-id">{s.me?.peerId}</code></p>
        <p><button type="button" id="settings-devices" class="button-secondary" onClick={() => { setDevices(true) }}>{t.devices}</button></p>
        <ErrorLine id="settings-error" text={error} />
        <div class="dialog-actions">
          <button type="button" id="settings-cancel" class="button-secondary" onClick={onClose}>{t.cancel}</button>
          <button type="submit" id="settings-save">{t.save}</button>
        </div>
      </form>
      {devices && <Devices store={store} onClose={() => { setDevices(false) }} />}
    </Dialog>
  )
}

/** First run: the name colleagues will see, instead of everyone being "Parley user". */
export function Welcome ({ store, onClose }: { store: Store, onClose: () => void }) {
  const { t } = useI18n()
  const [name, setName] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [linking, setLinking] = useState(false)
  const save = async (e: Event): Promise<void> => {
    e.preventDefault()
    try {
      const saved = await store.api.saveSettings({ name: name.trim() })
      store.setMe(saved.name)
      onClose()
    } catch (err) {
      setError(errorText(t, err instanceof ApiError ? err : new ApiError('ERR_INTERNAL', String(err)), 'name'))
    }
  }
  return (
    <Dialog id="welcome" label={t.welcomeTitle} onClose={() => {}}>
      {linking && <LinkJoin store={store} onDone={onClose} onBack={() => { setLinking(false) }} />}
      {!linking && <form onSubmit={(e) => { void save(e) }}>
        <h2>{t.welcomeTitle}</h2>
        <p>{t.welcomeText}</p>
        <label>{t.displayName} <input id="welcome-name" value={name} required autoFocus
          onInput={(e) => { setName(e.currentTarget.value) }} /></label>
        <NameOver id="welcome-name-over" value={name} />
        <ErrorLine id="welcome-error" text={error} />
        <div class="dialog-actions">
          <button type="button" id="welcome-link" class="button-secondary" onClick={() => { setLinking(true) }}>{t.linkExisting}</button>
          <button type="submit" id="welcome-save" disabled={name.trim() === ''}>{t.welcomeStart}</button>
        </div>
      </form>}
    </Dialog>
  )
}
