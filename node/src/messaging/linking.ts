/**
 * Linking a device to an account (docs/PROTOCOL.md, "Linking a device").
 *
 * The account's first device makes a one-time link code: its own peer ID and
 * a 128-bit random secret. The new device dials that peer ID (on the LAN, or
 * through the relay's circuit) over libp2p's Noise XX, which authenticates the
 * account device against the key inside the code; inside that channel it
 * sends the secret and its consent (`dsig`), and the account device, which
 * sees the new device's authenticated peer ID, signs an `add` op for it. The
 * secret is used once, expires, and lives in memory only.
 *
 * No half-linked state after a kill -9 at any moment: the new device notes
 * the link as pending (durably) before it asks; the account device makes its
 * op durable before it answers; a pending link completes as soon as the new
 * device sees the account's record list it (from the answer, or later from
 * any profile of the account's devices), and is dropped when the code's time
 * is over without that.
 */
import { timingSafeEqual } from 'node:crypto'
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { deviceConsentValid, deviceStatus, foldAccount, signDeviceConsent } from '../../../core/crypto/account.js'
import { MAX_LABEL_CHARS, formatLinkCode, parseAccountRecord, parseLinkCode, type AccountState } from '../../../core/protocol/account.js'
import { B64URL, Checker } from '../../../core/protocol/validate.js'
import { pasteSafeToken } from '../../../core/util/tokens.js'
import type { Accounts } from './accounts.js'
import type { PeerChannels } from './peer-channels.js'
import { dialWithRetry } from './dial-retry.js'
import type { MessagingComponents, PeerRpcHandlers } from './types.js'

/** A link code is good for this long. @default 600000 (10 min) */
export const LINK_CODE_TTL_MS = 10 * 60_000
export const LINK_PENDING_META = 'linkPending'

export interface LinkPending { device: string, at: number, expiresAt: number }

export interface LinkingComponents extends Pick<MessagingComponents, 'store' | 'identity' | 'log' | 'host'> {
  accounts: Accounts
  channels: PeerChannels
  /** the account changed on this device (it joined): publish, sync with our devices */
  joined: (s: AccountState) => Promise<void>
}

export interface LinkingInit {
  /** how long `join` keeps dialling the account's device while discovery runs. @default 10000 (dial-retry.ts) */
  dialWaitMs?: number
}

const check = new Checker('ERR_MALFORMED_FRAME', 'link')

export class Linking {
  private readonly codes = new Map<string, number>()
  private pending?: LinkPending

  readonly handlers: Pick<PeerRpcHandlers, 'link'> = {
    link: async (remote, body) => await this.answer(remote, body)
  }

  constructor (private readonly c: LinkingComponents, private readonly init: LinkingInit = {}) {}

  async start (): Promise<void> {
    const p = await this.c.store.getMeta(LINK_PENDING_META) as LinkPending | undefined
    if (p === undefined) return
    // completed before a crash (the join was written, the pending mark not yet removed)
    if (this.c.accounts.account === p.device) { await this.c.store.deleteMeta(LINK_PENDING_META); return }
    this.pending = p
    // asked at least once more, even past the code's time: the account device may have answered just before a crash
    this.resume()
  }

  private resumeTimer?: NodeJS.Timeout

  stop (): void { clearTimeout(this.resumeTimer); this.resumeTimer = undefined }

  /**
   * After a restart with a link pending: ask the account device for its record (every 2 s while the link
   * may still complete) until it lists us or the code's time is over.
   */
  private resume (): void {
    const p = this.pending
    if (p === undefined) return
    this.resumeTimer = setTimeout(() => {
      void (async () => {
        try {
          const ch = await this.c.channels.get(p.device, { signal: AbortSignal.timeout(5000) })
          const answer = await ch.call('getProfile', {}) as { account?: unknown } | null
          if (answer?.account !== undefined) await this.c.accounts.accept(parseAccountRecord(answer.account))
          await this.seen(p.device)
        } catch (err) {
          this.c.log.debug('pending link: account device not reached yet', { err: toParleyError(err).message })
        }
        await this.expire()
        if (this.pending !== undefined && this.c.accounts.account !== p.device) this.resume()
      })().catch(err => { this.c.log.warn('pending link not resumed', { err: toParleyError(err).message }) })
    }, 2000)
    this.resumeTimer.unref()
  }

  /** A pending link, while it may still complete (for `parley devices` and the first-run screen). */
  get pendingLink (): LinkPending | undefined { return this.pending }

  /** On the account's first device: a one-time code, as text (the UI also draws it as a QR code). */
  createCode (ttlMs = LINK_CODE_TTL_MS): { code: string, expiresAt: number } {
    if (!this.c.accounts.holdsAccountKey) {
      throw new ParleyError('ERR_NOT_A_MEMBER', 'only the account\'s first device can link devices; run parley link there')
    }
    const now = Date.now()
    for (const [s, exp] of this.codes) if (exp <= now) this.codes.delete(s)
    const secret = pasteSafeToken(16)
    const expiresAt = now + ttlMs
    this.codes.set(secret, expiresAt)
    return { code: formatLinkCode({ device: this.c.identity.peerId, secret }), expiresAt }
  }

  /** Takes `secret` if it is a live code (compared in constant time); one use only. */
  private take (secret: string): boolean {
    const now = Date.now()
    const given = Buffer.from(secret)
    for (const [s, exp] of this.codes) {
      const mine = Buffer.from(s)
      if (mine.length === given.length && timingSafeEqual(mine, given)) {
        this.codes.delete(s)
        return exp > now
      }
    }
    return false
  }

  /** The account device's side: a new device presents a code's secret over its authenticated connection. */
  private async answer (remote: string, body: unknown): Promise<{ record: unknown }> {
    const o = check.obj(body, 'body')
    const secret = check.str(o, 'secret', { max: 64 })
    const dsig = check.str(o, 'dsig', { min: 86, max: 86, pattern: B64URL })
    const label = o.label === undefined ? undefined : check.str(o, 'label', { min: 0, max: MAX_LABEL_CHARS })
    const account = this.c.accounts.account
    // the consent first: a malformed one does not spend a good code (review s4 m12)
    if (this.c.accounts.holdsAccountKey && !deviceConsentValid(account, remote, dsig)) {
      throw new ParleyError('ERR_BAD_SIGNATURE', 'the device\'s consent does not verify')
    }
    if (!this.c.accounts.holdsAccountKey || !this.take(secret)) {
      throw new ParleyError('ERR_INVITE_INVALID', 'this link code is unknown, used or expired: make a new one with parley link')
    }
    const status = deviceStatus(this.c.accounts.ownState(), remote)
    if (status === 'revoked') throw new ParleyError('ERR_NOT_A_MEMBER', 'this device was revoked; link it anew with a new data dir')
    // durable before the answer: the new device may die any moment after it
    if (status === 'unknown') await this.c.accounts.change({ type: 'add', device: remote, dsig, ...(label !== undefined && label !== '' ? { label } : {}) })
    this.c.log.info('device linked', { account, device: remote })
    return { record: this.c.accounts.ownRecord() }
  }

  /** On the new device: joins the account of `codeText`. */
  async join (codeText: string, label?: string): Promise<AccountState> {
    const code = parseLinkCode(codeText)
    if (code === null) throw new ParleyError('ERR_INVALID_ARGUMENT', 'not a link code: copy it from parley link (or Settings → Devices) on your other device')
    const accounts = this.c.accounts
    if (accounts.account === code.device) return accounts.ownState()
    if (!accounts.alone) {
      throw new ParleyError('ERR_INVALID_ARGUMENT', 'this device already belongs to an account')
    }
    if ((await this.c.store.listConversations()).length > 0) {
      throw new ParleyError('ERR_INVALID_ARGUMENT', 'this device already has conversations of its own: link a new device (a new data dir)')
    }
    const now = Date.now()
    this.pending = { device: code.device, at: now, expiresAt: now + LINK_CODE_TTL_MS }
    await this.c.store.putMeta(LINK_PENDING_META, this.pending)
    let answer: unknown
    // the laptop may have started a moment ago: discovery has not given it the other device's addresses yet
    const ch = await dialWithRetry(async (o) => await this.c.channels.get(code.device, o), {
      what: 'your other device', waitMs: this.init.dialWaitMs, log: this.c.log
    }).catch(async (err: unknown) => {
      // nothing was asked: nothing can be added there
      await this.clearPending()
      throw new ParleyError('ERR_PEER_UNREACHABLE', `${toParleyError(err).message}; is it running, on this network or the relay?`, { cause: err })
    })
    try {
      answer = await ch.call('link', { secret: code.secret, dsig: signDeviceConsent(this.c.identity, code.device), ...(label !== undefined ? { label } : {}) })
    } catch (err) {
      const e = toParleyError(err)
      const refused = e.code === 'ERR_REMOTE'
      // refused: nothing was added there; else (a connection lost mid-way) the add may be there: stays pending
      if (refused) await this.clearPending()
      throw new ParleyError(refused ? 'ERR_INVITE_INVALID' : 'ERR_PEER_UNREACHABLE',
        refused ? e.message.replace(/^ERR_[A-Z_]+: /, '') : `could not reach your other device (${e.message}); is it running, on this network or the relay?`, { cause: err })
    }
    if (process.env.PARLEY_TEST_LINK_CRASH === 'after-answer') process.kill(process.pid, 'SIGKILL')
    const record = parseAccountRecord((answer as { record?: unknown } | null)?.record)
    if (record.account !== code.device) throw new ParleyError('ERR_INVALID_ENVELOPE', 'the other device answered for another account')
    return await this.complete(record)
  }

  /**
   * A record of an account was seen (a profile): when it lists this device while we are still alone, the
   * link completes, pending mark or not. The fold lists a device only with its own consent signature
   * (`dsig`), which this device gives only when it asks to link: so a crash after the answer, and a
   * restart after the code's time, still end linked (never half-linked).
   */
  async seen (account: string): Promise<void> {
    if (account === this.c.identity.peerId || !this.c.accounts.alone) return
    const record = this.c.accounts.recordOf(account)
    // cheap first: most profiles are of accounts that never named this device
    if (record?.ops.some(op => op.type === 'add' && op.device === this.c.identity.peerId) !== true) return
    if (deviceStatus(foldAccount(account, record.ops), this.c.identity.peerId) !== 'current') return
    await this.complete(record).catch(err => { this.c.log.warn('pending link not completed', { err: toParleyError(err).message }) })
  }

  private async complete (record: ReturnType<typeof parseAccountRecord>): Promise<AccountState> {
    const s = await this.c.accounts.join(record)
    await this.clearPending()
    await this.c.joined(s)
    return s
  }

  private async expire (): Promise<void> {
    if (this.pending !== undefined && this.pending.expiresAt <= Date.now()) {
      this.c.log.warn('the link did not complete in time: run parley link again', { device: this.pending.device })
      await this.clearPending()
    }
  }

  private async clearPending (): Promise<void> {
    this.pending = undefined
    await this.c.store.deleteMeta(LINK_PENDING_META)
  }
}
