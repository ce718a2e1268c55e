/**
 * Settings → Devices (issue 11): the devices of your account with last seen, revoking one (a lost
 * laptop), and a one-time link code (text and QR code) for a new device; and the first-run form that
 * links this computer to an existing account with such a code.
 */
import { useEffect, useState } from 'preact/hooks'
import type { AccountView } from '../../../../../node/src/api/contract.js'
import { ApiError } from '../../api.js'
import { useI18n } from '../../i18n/index.js'
import type { Store } from '../../store.js'
import { Confirm, Dialog, ErrorLine } from '../Dialog.js'
import { errorText } from '../words.js'

const asApiError = (err: unknown): ApiError => err instanceof ApiError ? err : new ApiError('ERR_INTERNAL', String(err))

/** through a relay just joined, the other computer's circuit may take a while: linking is tried again for this long. @default 30000 */
export const RELAY_LINK_WAIT_MS = 30_000
const pause = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

export function Devices ({ store, onClose }: { store: Store, onClose: () => void }) {
  const { t } = useI18n()
  const [link, setLink] = useState<{ code: string, expiresAt: number, qr: string } | null>(null)
  const [revoking, setRevoking] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  // the store's copy: a device linked or revoked elsewhere (accountUpdated) shows at once
  const account = store.state.account
  const load = async (): Promise<void> => {
    try { await store.refreshAccount() } catch (err) { setError(errorText(t, asApiError(err))) }
  }
  useEffect(() => { void load() }, [])
  // a code is used once: when a device joined, the code shown is spent
  const count = account?.devices.length ?? 0
  useEffect(() => { setLink(null) }, [count])
  const makeCode = async (): Promise<void> => {
    try { setLink(await store.api.linkCode()) } catch (err) { setError(errorText(t, asApiError(err))) }
  }
  const revoke = async (peerId: string): Promise<void> => {
    setRevoking(null)
    try { await store.api.revokeDevice(peerId); await store.refreshAccount() } catch (err) { setError(errorText(t, asApiError(err))) }
  }
  const seen = (d: AccountView['devices'][number]): string =>
    d.self ? t.deviceThis : d.online ? t.deviceOnline : d.lastSeen === null ? t.deviceNeverSeen : t.deviceLastSeen(new Date(d.lastSeen).toLocaleString())
  return (
    <Dialog id="devices" label={t.devices} onClose={onClose}>
      <h2>{t.devices}</h2>
      {account !== null && (
        <>
          <p class="muted small">{t.devicesIntro}</p>
          <ul id="device-list" class="device-list">
            {account.devices.map(d => (
              <li key={d.peerId} data-peer={d.peerId}>
                <span class="device-name">{d.label ?? (d.accountKey ? t.deviceFirst : t.deviceUnnamed)}</span>
                {' '}<code class="small">…{d.peerId.slice(-8)}</code>
                {' '}<span class="muted small">{seen(d)}</span>
                {account.accountKey && !d.accountKey &&
                  <button type="button" class="button-secondary device-revoke" onClick={() => { setRevoking(d.peerId) }}>{t.deviceRevoke}</button>}
              </li>
            ))}
          </ul>
          {account.since > 0 && <p class="muted small" id="history-note">{t.deviceHistoryNote(new Date(account.since).toLocaleString())}</p>}
          {account.accountKey
            ? (
              <div id="link-box">
                {link === null
                  ? <button type="button" id="link-make" onClick={() => { void makeCode() }}>{t.linkMake}</button>
                  : (
                    <>
                      <p>{t.linkShow(new Date(link.expiresAt).toLocaleTimeString())}</p>
                      <img id="link-qr" alt={t.linkQrAlt} width={200} height={200} src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(link.qr)}`} />
                      <p><code id="link-code" class="link-code">{link.code}</code></p>
                    </>)}
              </div>)
            : <p class="muted small">{t.linkOnFirstDevice}</p>}
        </>
      )}
      {revoking !== null && <Confirm text={t.deviceRevokeConfirm} onYes={() => { void revoke(revoking) }} onNo={() => { setRevoking(null) }} />}
      <ErrorLine id="devices-error" text={error} />
      <div class="dialog-actions"><button type="button" id="devices-close" onClick={onClose}>{t.close}</button></div>
    </Dialog>
  )
}

/** First run: link this computer to an account you already use on another one. */
export function LinkJoin ({ store, onDone, onBack }: { store: Store, onDone: () => void, onBack: () => void }) {
  const { t } = useI18n()
  const [code, setCode] = useState('')
  const [label, setLabel] = useState('')
  const [invite, setInvite] = useState('')
  const [connecting, setConnecting] = useState(false)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const join = async (e: Event): Promise<void> => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      // away from the office: the relay invite first (the new computer reaches the other one through the relay)
      const viaRelay = invite.trim() !== ''
      if (viaRelay) {
        setConnecting(true)
        store.setRelay((await store.api.saveSettings({ join: invite.trim() })).relay)
      }
      const deadline = Date.now() + (viaRelay ? RELAY_LINK_WAIT_MS : 0)
      for (;;) {
        try {
          await store.api.joinAccount(code.trim(), label.trim() === '' ? undefined : label.trim())
          break
        } catch (err) {
          if (asApiError(err).code !== 'ERR_PEER_UNREACHABLE' || Date.now() > deadline) throw err
          await pause(1000)
        }
      }
      // this computer is now a device of that account, under its name
      await store.refreshAccount().catch(() => {})
      onDone()
    } catch (err) {
      const a = asApiError(err)
      setError(a.code === 'ERR_INVITE_INVALID' ? t.linkCodeInvalid : a.code === 'ERR_INVALID_ARGUMENT' ? t.linkNotFresh : errorText(t, a))
    } finally { setBusy(false); setConnecting(false) }
  }
  return (
    <form id="link-join" onSubmit={(e) => { void join(e) }}>
      <h2>{t.linkJoinTitle}</h2>
      <p>{t.linkJoinText}</p>
      <label>{t.linkCode} <input id="link-join-code" value={code} required autoFocus onInput={(e) => { setCode(e.currentTarget.value) }} /></label>
      <label>{t.deviceLabel} <input id="link-join-label" value={label} maxLength={64} placeholder={t.deviceLabelPlaceholder}
        onInput={(e) => { setLabel(e.currentTarget.value) }} /></label>
      <label>{t.linkInvite} <input id="link-join-invite" value={invite} placeholder="parley://join?…"
        onInput={(e) => { setInvite(e.currentTarget.value) }} /></label>
      <p class="muted small">{t.linkHistoryWarning}</p>
      {connecting && <p id="link-join-connecting" class="muted small" role="status">{t.linkViaRelay}</p>}
      <ErrorLine id="link-join-error" text={error} />
      <div class="dialog-actions">
        <button type="button" class="button-secondary" onClick={onBack}>{t.cancel}</button>
        <button type="submit" id="link-join-submit" disabled={busy || code.trim() === ''}>{t.linkJoin}</button>
      </div>
    </form>
  )
}
