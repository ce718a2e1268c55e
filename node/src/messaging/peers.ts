/**
 * Peers: presence (a LAN discovery record or a connection, see the host),
 * signed profiles and display names
 * (ours and theirs), safety numbers, verification, and the look-alike key
 * warning; answers `getProfile` and `announceProfile`.
 */
import { DEFAULT_NAME } from '../api/contract.js'
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { signProfile, verifyProfile } from '../../../core/crypto/envelope.js'
import { safetyNumber } from '../../../core/crypto/safety.js'
import { parseDisplayName, parsePresenceStatus, parseProfile, type PresenceStatus, type Profile } from '../../../core/protocol/envelope.js'
import { displayName, earlierLookAlikes, lookAlikeWarning, nameWarning, normalizeName, type NamedKey } from '../../../core/protocol/names.js'
import type { PeerRecord } from '../store/types.js'
import type { PeerChannels } from './peer-channels.js'
import type { MessagingComponents, PeerRpcHandlers, PeerView } from './types.js'
import { parseAccountRecord, recordNames, type AccountRecord } from '../../../core/protocol/account.js'

/** a failed profile fetch is tried again while the peer stays connected: after 0.5, 1, 2, 4, 8 s */
const PROFILE_RETRY_MS = 500
const PROFILE_ATTEMPTS = 6
/** presence changes arriving within this window are stored and reported together */
const PRESENCE_BATCH_MS = 50

export interface PeersComponents extends Pick<MessagingComponents, 'store' | 'host' | 'identity' | 'relay' | 'log' | 'events'>,
  Partial<Pick<MessagingComponents, 'accounts'>> {
  channels: PeerChannels
  /** an account record that came with a profile was merged in (linking completes on it) */
  accountSeen?: (account: string) => void
}

/** The name in a stored profile that no longer parses, normalised, when that form is a valid name. */
function salvageName (stored: unknown): string | undefined {
  const raw = typeof stored === 'object' && stored !== null ? (stored as { name?: unknown }).name : undefined
  try { return raw === undefined ? undefined : parseDisplayName(normalizeName(raw)) } catch { return undefined }
}

export interface PeersInit {
  /** display name to publish; keeps the stored one when absent */
  name?: string
}

export { DEFAULT_NAME }

/** Our profile as sent: beside the signed fields, the status and what says we know accounts (PROTOCOL.md) */
type PublishedProfile = Profile & { status: PresenceStatus, accounts: 1, acct?: [string, number], account?: AccountRecord }

/**
 * The person's name: the profile of the account's first device (it holds the account key), else the
 * newest signed profile of its other devices.
 */
function namedRecord (rs: PeerRecord[], account: string): PeerRecord | undefined {
  const first = rs.find(r => r.peerId === account && r.profile !== undefined)
  return first ?? rs.filter(r => r.profile !== undefined).sort((x, y) => (y.profile?.updatedAt ?? 0) - (x.profile?.updatedAt ?? 0))[0]
}

export class Peers {
  private profile?: Profile
  private readonly safetyCache = new Map<string, string>()
  private readonly profileRetries = new Map<string, NodeJS.Timeout>()
  private readonly presenceBatch = new Map<string, boolean>()
  private running = false

  /** ours: away (idle) or do not disturb, sent beside the profile (unsigned: it travels on an authenticated channel or our signed discovery record) */
  private status: PresenceStatus = 'active'
  /** theirs, while they are present */
  private readonly statuses = new Map<string, PresenceStatus>()

  /** devices whose profile came without `accounts`: Parley from before accounts (v0.1) */
  private readonly legacy = new Set<string>()

  readonly handlers: Pick<PeerRpcHandlers, 'getProfile' | 'announceProfile'> = {
    getProfile: async () => this.published(true),
    announceProfile: async (remote, body) => { await this.acceptProfile(remote, body); return {} }
  }

  private readonly init: PeersInit

  constructor (private readonly c: PeersComponents, init: PeersInit = {}) {
    // local input is NFKC-normalised before it is checked and signed (core/protocol/names.ts)
    this.init = init.name === undefined ? init : { ...init, name: parseDisplayName(normalizeName(init.name)) }
  }

  get name (): string { return this.profile?.name ?? DEFAULT_NAME }

  /** Loads our signed profile, or makes one (a new name from init, or none yet). */
  async loadProfile (): Promise<void> {
    const stored = await this.c.store.getMeta('profile')
    let profile: Profile | undefined
    try { if (stored !== undefined) { profile = parseProfile(stored) } } catch { profile = undefined }
    // a name stored before the NFKC rule ("张伟（销售）") keeps its meaning: its NFKC form is signed again
    const storedName = profile?.name ?? salvageName(stored)
    const name = this.init.name ?? (storedName === undefined ? DEFAULT_NAME : displayName(storedName))
    if (storedName !== undefined && this.init.name === undefined && name !== storedName) {
      this.c.log.info('stored display name normalised to NFKC and signed again', { from: storedName, to: name })
    }
    if (profile === undefined || profile.name !== name) {
      profile = signProfile(this.c.identity, name, Math.max(Date.now(), (profile?.updatedAt ?? 0) + 1))
      await this.c.store.putMeta('profile', profile)
    }
    this.profile = profile
    this.running = true
    // colleagues on the LAN get the signed profile with our discovery record, without a connection
    this.c.host.setAdvert(JSON.stringify(this.published()))
  }

  /**
   * our signed profile with our status beside it (peers that do not know `status` ignore it), `accounts: 1`
   * (this peer knows accounts) and, over a connection (not in the small discovery record), our account
   * record: the certificate chain of this device
   */
  private published (withRecord = false): PublishedProfile | undefined {
    if (this.profile === undefined) return undefined
    const record = withRecord ? this.c.accounts?.ownRecord() : undefined
    // the discovery record names our account and its version (the record itself is too big for it): a peer
    // that knows less fetches our profile with the record
    const a = this.c.accounts
    const hint: Pick<PublishedProfile, 'acct'> = a !== undefined && (a.account !== this.c.identity.peerId || a.ownState().version > 0)
      ? { acct: [a.account, a.ownState().version] }
      : {}
    return { ...this.profile, status: this.status, accounts: 1, ...hint, ...(record !== undefined ? { account: record } : {}) }
  }

  get presenceStatus (): PresenceStatus { return this.status }

  /** Away (idle) or do not disturb: connected peers learn it now, LAN peers from our discovery record. */
  setStatus (status: PresenceStatus): void {
    if (status === this.status) return
    this.status = status
    this.publish()
  }

  /** Our record or account changed: connected peers and LAN peers learn it now. */
  republish (): void {
    this.safetyCache.clear()
    this.publish()
  }

  private publish (): void {
    const published = this.published()
    if (published === undefined) return
    this.c.host.setAdvert(JSON.stringify(published))
    for (const p of this.c.host.connectedPeers()) {
      if (this.isRelay(p)) continue
      void this.c.channels.get(p).then(async ch => await ch.call('announceProfile', this.published(true))).catch(() => {})
    }
  }

  /** Stops reporting presence and the profile retries. */
  stop (): void {
    this.running = false
    for (const t of this.profileRetries.values()) clearTimeout(t)
    this.profileRetries.clear()
  }

  async setName (input: string): Promise<Profile> {
    const name = parseDisplayName(normalizeName(input))
    const profile = signProfile(this.c.identity, name, Math.max(Date.now(), (this.profile?.updatedAt ?? 0) + 1))
    await this.c.store.putMeta('profile', profile)
    this.profile = profile
    // connected peers learn the new name now; LAN peers from our discovery record; the others when they next connect
    this.publish()
    return profile
  }

  isRelay (peerId: string): boolean { return this.c.relay?.isRelay(peerId) === true }

  /** Records the peer as seen and fetches its profile over the new connection (presence is reported apart). */
  peerConnected (peerId: string): void {
    void (async () => {
      const now = Date.now()
      await this.updatePeer(peerId, (existing) => ({ ...existing, peerId, lastSeen: now, firstSeen: existing?.firstSeen ?? now }))
      this.fetchProfileSoon(peerId, 0)
    })().catch(err => { this.c.log.debug('peer setup failed', { peerId, err: toParleyError(err).message }) })
  }

  /**
   * Fetches the peer's profile, once per connection; a failed fetch (the
   * connection was a duplicate the tie-break closed, a stream reset, a peer
   * still starting) is tried again with backoff while the peer stays connected,
   * so a connected peer does not stay nameless.
   */
  private fetchProfileSoon (peerId: string, attempt: number): void {
    if (!this.running || this.profileRetries.has(peerId)) return
    const timer = setTimeout(() => {
      this.profileRetries.delete(peerId)
      if (!this.running || !this.c.host.isConnected(peerId)) return
      this.fetchProfile(peerId).catch(err => {
        this.c.log.debug('profile fetch failed', { peerId, attempt, err: toParleyError(err).message })
        if (attempt + 1 < PROFILE_ATTEMPTS) this.fetchProfileSoon(peerId, attempt + 1)
      })
    }, attempt === 0 ? 0 : PROFILE_RETRY_MS * 2 ** (attempt - 1))
    timer.unref()
    this.profileRetries.set(peerId, timer)
  }

  peerDisconnected (peerId: string): void {
    void (async () => {
      await this.updatePeer(peerId, (existing) => ({ ...existing, peerId, lastSeen: Date.now() }))
    })().catch(err => { this.c.log.debug('peer teardown failed', { peerId, err: toParleyError(err).message }) })
  }

  /** Online and offline follow presence (a discovery record or a connection); a burst is handled as one. */
  presenceChanged (peerId: string, online: boolean): void {
    if (!online) this.statuses.delete(peerId)
    this.presenceBatch.set(peerId, online)
    this.scheduleReport()
  }

  private reportPending = false
  /** the next report carries a batch that failed once */
  private retryReport = false

  /** One timer for presence changes and new views: a burst of both (joining an office) costs one listing per batch. */
  private scheduleReport (): void {
    if (this.reportPending) return
    this.reportPending = true
    setTimeout(() => { void this.report() }, PRESENCE_BATCH_MS)
  }

  /**
   * Stores `lastSeen` for a batch of presence changes, then emits peerOnline / peerOffline for them and
   * peerUpdated for the batch of new views, from one peer listing.
   */
  private async report (): Promise<void> {
    this.reportPending = false
    const retried = this.retryReport
    this.retryReport = false
    const presence = [...this.presenceBatch]
    const updated = [...this.updatedBatch]
    this.presenceBatch.clear()
    this.updatedBatch.clear()
    try {
      const now = Date.now()
      // together, so the store's group commit writes them in one batch
      await Promise.all(presence.map(async ([peerId]) => {
        await this.updatePeer(peerId, (existing) => ({ ...existing, peerId, lastSeen: now, firstSeen: existing?.firstSeen ?? now }))
      }))
      const views = new Map<string, PeerView>()
      for (const v of await this.listPeers()) views.set(v.peerId, v)
      for (const [peerId, online] of presence) {
        if (!this.running) return
        const account = this.accountOf(peerId)
        if (account === null || account === this.ownAccount) continue
        this.c.events.emit(online ? 'peerOnline' : 'peerOffline', views.get(account) ?? this.view({ peerId }))
      }
      const done = new Set<string>()
      for (const peerId of updated) {
        if (!this.running) return
        const account = this.accountOf(peerId) ?? peerId
        if (done.has(account)) continue
        done.add(account)
        this.c.events.emit('peerUpdated', views.get(account) ?? this.view({ peerId }))
      }
    } catch (err) {
      // the store has the profiles, but the UI would not see them live: once more with the next batch
      // (a newer change of the same peer, queued meanwhile, wins)
      this.c.log.warn('presence or peer update not reported', { err: toParleyError(err).message, again: !retried })
      if (retried || !this.running) return
      for (const [peerId, online] of presence) if (!this.presenceBatch.has(peerId)) this.presenceBatch.set(peerId, online)
      for (const peerId of updated) this.updatedBatch.add(peerId)
      this.retryReport = true
      this.scheduleReport()
    }
  }

  /** A discovery record carrying the peer's signed profile: its name without a connection. */
  discovered (peerId: string, advert: string): void {
    let value: unknown
    try { value = JSON.parse(advert) } catch { return }
    this.acceptProfile(peerId, value, true).catch(err => { this.c.log.debug('advertised profile refused', { peerId, err: toParleyError(err).message }) })
    this.followAccountHint(peerId, value)
  }

  /** account@version we last fetched a profile for, per device (the hint repeats in every discovery record) */
  private readonly hintsFetched = new Map<string, string>()

  /**
   * A discovery record names the device's account and its version: when we know an older version (or
   * not that the device is in it), fetch the profile with the record over a connection.
   */
  private followAccountHint (peerId: string, value: unknown): void {
    const accounts = this.c.accounts
    const hint = (value as { acct?: unknown } | null)?.acct
    if (accounts === undefined || !Array.isArray(hint) || typeof hint[0] !== 'string' || typeof hint[1] !== 'number') return
    const [account, version] = hint as [string, number]
    const known = accounts.state(account)
    if (known.version >= version && (account === peerId || known.devices.includes(peerId) || known.revoked.includes(peerId))) return
    const key = `${account}@${version}`
    if (this.hintsFetched.get(peerId) === key) return
    this.hintsFetched.set(peerId, key)
    this.fetchProfile(peerId).catch(err => {
      this.hintsFetched.delete(peerId)
      this.c.log.debug('profile for an account hint not fetched', { peerId, err: toParleyError(err).message })
    })
  }

  /** Forgets what is cached about a peer that is gone. */
  forget (peerId: string): void { this.safetyCache.delete(peerId) }

  private accountOf (device: string): string | null { return this.c.accounts === undefined ? device : this.c.accounts.accountOf(device) }
  private get ownAccount (): string { return this.c.accounts?.account ?? this.c.identity.peerId }

  /** One entry per person (account), with its devices; our own devices and revoked ones are not listed. */
  async listPeers (): Promise<PeerView[]> {
    const records = (await this.c.store.listPeers()).filter(r => !this.isRelay(r.peerId))
    const known = new Set(records.map(r => r.peerId))
    for (const p of this.c.host.onlinePeers()) if (!known.has(p) && !this.isRelay(p)) records.push({ peerId: p, lastSeen: Date.now() })
    const byAccount = new Map<string, PeerRecord[]>()
    for (const r of records) {
      const a = this.accountOf(r.peerId)
      if (a === null || a === this.ownAccount) continue
      const rs = byAccount.get(a)
      if (rs === undefined) byAccount.set(a, [r]); else rs.push(r)
    }
    const nameOf = namedRecord
    // the first key seen with a name owns it; a later key with the same or a look-alike name gets a warning
    // (keys are accounts: a person's second device is no impostor)
    const named = [...byAccount].flatMap(([account, rs]) => {
      const r = nameOf(rs, account)
      if (r?.profile === undefined) return []
      return [{ peerId: account, name: displayName(r.profile.name), since: Math.min(...rs.map(x => x.firstSeen ?? x.lastSeen ?? 0)) }]
    })
    const earlier = earlierLookAlikes(named)
    return [...byAccount].map(([account, rs]) => {
      const r = nameOf(rs, account)
      return this.accountView(account, rs, displayName(r?.profile?.name ?? ''), earlier.get(account))
    })
  }

  /** Records that the user compared safety numbers with `peer` (or withdraws it). */
  async setVerified (peerOrAccount: string, verified: boolean): Promise<PeerView> {
    const peer = this.accountOf(peerOrAccount) ?? peerOrAccount
    await this.updatePeer(peer, (existing) => {
      if (existing === undefined && peer === peerOrAccount) throw new ParleyError('ERR_UNKNOWN_PEER', `no known peer ${peer}`)
      return { ...existing, peerId: peer, verified }
    })
    const v = await this.peerView(peer)
    this.c.events.emit('peerUpdated', v)
    return v
  }

  /** Asks `peerId` for its signed profile (and account record) now. */
  async fetchProfile (peerId: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const ch = await this.c.channels.get(peerId, options)
    await this.acceptProfile(peerId, await ch.call('getProfile', {}), true)
  }

  /**
   * A signed profile from `peerId`: kept when it is valid, its own, and newer than what we have.
   * `batched`: from a discovery record or a fetch of ours (hundreds at once when we join an office or
   * write to a large group): reported with the next batch, not at once.
   */
  private async acceptProfile (peerId: string, value: unknown, batched = false): Promise<void> {
    const profile = parseProfile(value)
    if (profile.peerId !== peerId) throw new ParleyError('ERR_INVALID_ENVELOPE', 'peer sent a profile of another peer')
    const o = value as { accounts?: unknown, account?: unknown }
    if (o.accounts === undefined) this.legacy.add(peerId); else this.legacy.delete(peerId)
    if (o.account !== undefined && this.c.accounts !== undefined) {
      // the device's certificate chain (its account's signed ops): a bad one is refused with the profile
      const record = parseAccountRecord(o.account)
      if (!recordNames(record, peerId)) throw new ParleyError('ERR_INVALID_ENVELOPE', 'the account record in the profile is not the peer\'s')
      if (await this.c.accounts.accept(record)) this.c.events.emit('peerUpdated', await this.peerView(peerId))
      this.c.accountSeen?.(record.account)
    }
    const status = parsePresenceStatus(value)
    const statusChanged = (this.statuses.get(peerId) ?? 'active') !== status
    if (status === 'active') this.statuses.delete(peerId); else this.statuses.set(peerId, status)
    const kept = await this.updatePeer(peerId, (existing) => {
      if (existing?.profile !== undefined && existing.profile.updatedAt >= profile.updatedAt) return undefined
      // checked only when it would be kept: a discovery record repeats the same profile
      verifyProfile(profile)
      return { ...existing, peerId, profile }
    })
    if (!(kept || statusChanged)) return
    if (batched) this.updated(peerId)
    else this.c.events.emit('peerUpdated', await this.peerView(peerId))
  }

  /** peers whose view changed (a profile from discovery), reported together */
  private readonly updatedBatch = new Set<string>()

  /**
   * Reports a peer's new view, batched like presence: a view needs the whole
   * listing (look-alike names), and an office of 500 sends 500 profiles
   * within a second or two of our start. One listing per batch, not one per
   * profile (that was N listings of N peers: O(N²) work and garbage at start).
   */
  private updated (peerId: string): void {
    this.updatedBatch.add(peerId)
    this.scheduleReport()
  }

  private readonly updating = new Map<string, Promise<unknown>>()

  /**
   * Read-modify-write of a peer record, one at a time per peer: presence, a
   * connection and a profile from discovery update the same record at once,
   * and a write from a stale read would drop the others' change (a name).
   * `change` returns the new record, or undefined to keep the stored one; resolves true if it wrote.
   */
  private async updatePeer (peerId: string, change: (existing: PeerRecord | undefined) => PeerRecord | undefined): Promise<boolean> {
    const run = (this.updating.get(peerId) ?? Promise.resolve()).catch(() => {}).then(async () => {
      const next = change(await this.c.store.getPeer(peerId))
      if (next === undefined) return false
      await this.c.store.putPeer(next)
      return true
    })
    this.updating.set(peerId, run)
    try { return await run } finally { if (this.updating.get(peerId) === run) this.updating.delete(peerId) }
  }

  /** `first`: the key that had this account's name (`name`), or one like it, before */
  private accountView (account: string, rs: PeerRecord[], name = '', first?: NamedKey): PeerView {
    const own = rs.find(r => r.peerId === account)
    const named = namedRecord(rs, account)
    const state = this.c.accounts?.state(account)
    // the devices the account lists (those we never saw too), or just the one device we know
    const deviceIds = state !== undefined ? state.devices : [account]
    const devices = deviceIds.map(d => {
      const rec = rs.find(r => r.peerId === d)
      return { peerId: d, online: this.c.host.isOnline(d), lastSeen: rec?.lastSeen ?? null, label: state?.labels[d] ?? null }
    })
    const online = devices.find(d => d.online)
    let sn = this.safetyCache.get(account)
    if (sn === undefined) { sn = safetyNumber(this.ownAccount, account); this.safetyCache.set(account, sn) }
    const lastSeen = Math.max(...rs.map(r => r.lastSeen ?? -1))
    return {
      peerId: account,
      devices,
      needsUpdate: rs.some(r => this.legacy.has(r.peerId)),
      // the signed name as NFKC: a profile signed before the NFKC rule is shown like a new one
      name: named?.profile === undefined ? null : displayName(named.profile.name),
      online: online !== undefined,
      reach: this.c.host.reach(online?.peerId ?? account),
      status: online !== undefined ? this.statuses.get(online.peerId) ?? 'active' : null,
      lastSeen: lastSeen < 0 ? null : lastSeen,
      safetyNumber: sn,
      verified: (own ?? rs[0])?.verified === true,
      keyWarning: lookAlikeWarning(name, first),
      nameWarning: nameWarning(name, first)
    }
  }

  private view (r: PeerRecord): PeerView {
    return this.accountView(this.accountOf(r.peerId) ?? r.peerId, [r])
  }

  private async peerView (peerId: string): Promise<PeerView> {
    const account = this.accountOf(peerId) ?? peerId
    const all = await this.listPeers()
    return all.find(p => p.peerId === account) ?? this.view({ peerId })
  }
}
