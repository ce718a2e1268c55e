/**
 * Peers: presence (connect / disconnect), signed profiles and display names
 * (ours and theirs), safety numbers, verification, and the look-alike key
 * warning; answers `getProfile` and `announceProfile`.
 */
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { signProfile, verifyProfile } from '../../../core/crypto/envelope.js'
import { safetyNumber } from '../../../core/crypto/safety.js'
import { parseDisplayName, parseProfile, type Profile } from '../../../core/protocol/envelope.js'
import { displayName, earlierLookAlikes, lookAlikeWarning, normalizeName } from '../../../core/protocol/names.js'
import type { PeerRecord } from '../store/types.js'
import type { PeerChannels } from './peer-channels.js'
import type { MessagingComponents, PeerRpcHandlers, PeerView } from './types.js'

export const DEFAULT_NAME = 'Parley user'

export interface PeersComponents extends Pick<MessagingComponents, 'store' | 'host' | 'identity' | 'relay' | 'log' | 'events'> {
  channels: PeerChannels
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

export class Peers {
  private profile?: Profile
  private readonly safetyCache = new Map<string, string>()

  readonly handlers: Pick<PeerRpcHandlers, 'getProfile' | 'announceProfile'> = {
    getProfile: async () => this.profile,
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
  }

  async setName (input: string): Promise<Profile> {
    const name = parseDisplayName(normalizeName(input))
    const profile = signProfile(this.c.identity, name, Math.max(Date.now(), (this.profile?.updatedAt ?? 0) + 1))
    await this.c.store.putMeta('profile', profile)
    this.profile = profile
    // connected peers learn the new name now; the others fetch it when they next connect
    for (const p of this.c.host.connectedPeers()) {
      if (this.isRelay(p)) continue
      void this.c.channels.get(p).then(async ch => await ch.call('announceProfile', profile)).catch(() => {})
    }
    return profile
  }

  isRelay (peerId: string): boolean { return this.c.relay?.isRelay(peerId) === true }

  /** Records the peer as seen, tells the UI, and fetches its profile. */
  peerConnected (peerId: string): void {
    void (async () => {
      const existing = await this.c.store.getPeer(peerId)
      const now = Date.now()
      await this.c.store.putPeer({ ...existing, peerId, lastSeen: now, firstSeen: existing?.firstSeen ?? now })
      this.c.events.emit('peerOnline', await this.peerView(peerId))
      await this.fetchProfile(peerId)
    })().catch(err => { this.c.log.debug('peer setup failed', { peerId, err: toParleyError(err).message }) })
  }

  peerDisconnected (peerId: string): void {
    void (async () => {
      const existing = await this.c.store.getPeer(peerId)
      await this.c.store.putPeer({ ...existing, peerId, lastSeen: Date.now() })
      this.c.events.emit('peerOffline', await this.peerView(peerId))
    })().catch(err => { this.c.log.debug('peer teardown failed', { peerId, err: toParleyError(err).message }) })
  }

  /** Forgets what is cached about a peer that is gone. */
  forget (peerId: string): void { this.safetyCache.delete(peerId) }

  async listPeers (): Promise<PeerView[]> {
    const records = (await this.c.store.listPeers()).filter(r => !this.isRelay(r.peerId))
    const known = new Set(records.map(r => r.peerId))
    for (const p of this.c.host.connectedPeers()) if (!known.has(p) && !this.isRelay(p)) records.push({ peerId: p, lastSeen: Date.now() })
    // the first key seen with a name owns it; a later key with the same or a look-alike name gets a warning
    const named = records.flatMap(r => r.profile === undefined
      ? []
      : [{ peerId: r.peerId, name: displayName(r.profile.name), since: r.firstSeen ?? r.lastSeen ?? 0 }])
    const earlier = earlierLookAlikes(named)
    return records.map(r => this.view(r, lookAlikeWarning(displayName(r.profile?.name ?? ''), earlier.get(r.peerId))))
  }

  /** Records that the user compared safety numbers with `peer` (or withdraws it). */
  async setVerified (peer: string, verified: boolean): Promise<PeerView> {
    const existing = await this.c.store.getPeer(peer)
    if (existing === undefined) throw new ParleyError('ERR_UNKNOWN_PEER', `no known peer ${peer}`)
    await this.c.store.putPeer({ ...existing, verified })
    const v = await this.peerView(peer)
    this.c.events.emit('peerUpdated', v)
    return v
  }

  private async fetchProfile (peerId: string): Promise<void> {
    const ch = await this.c.channels.get(peerId)
    await this.acceptProfile(peerId, await ch.call('getProfile', {}))
  }

  /** A signed profile from `peerId`: kept when it is valid, its own, and newer than what we have. */
  private async acceptProfile (peerId: string, value: unknown): Promise<void> {
    const profile = parseProfile(value)
    if (profile.peerId !== peerId) throw new ParleyError('ERR_INVALID_ENVELOPE', 'peer sent a profile of another peer')
    verifyProfile(profile)
    const existing = await this.c.store.getPeer(peerId)
    if (existing?.profile !== undefined && existing.profile.updatedAt >= profile.updatedAt) return
    await this.c.store.putPeer({ ...existing, peerId, profile })
    this.c.events.emit('peerUpdated', await this.peerView(peerId))
  }

  private view (r: PeerRecord, keyWarning: string | null): PeerView {
    const online = this.c.host.isConnected(r.peerId)
    let sn = this.safetyCache.get(r.peerId)
    if (sn === undefined) { sn = safetyNumber(this.c.identity.peerId, r.peerId); this.safetyCache.set(r.peerId, sn) }
    return {
      peerId: r.peerId,
      // the signed name as NFKC: a profile signed before the NFKC rule is shown like a new one
      name: r.profile === undefined ? null : displayName(r.profile.name),
      online,
      reach: this.c.host.reach(r.peerId),
      lastSeen: r.lastSeen ?? null,
      safetyNumber: sn,
      verified: r.verified === true,
      keyWarning
    }
  }

  private async peerView (peerId: string): Promise<PeerView> {
    const all = await this.listPeers()
    return all.find(p => p.peerId === peerId) ?? this.view({ peerId }, null)
  }
}
