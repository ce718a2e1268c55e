/**
 * Have-vector sync: on every (re)connect, and when a group gains a member,
 * we send a peer what it lacks, by its have-vector: our own messages it lost,
 * and in groups every member's messages (any member can fill another's gaps).
 * Also answers the peers' `getHave`.
 */
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { dmConversationId, isGroupConv, isPermanentRefusal, type Envelope } from '../../../core/protocol/envelope.js'
import { parseHaveRequest, parseHaveWithTops } from '../../../core/protocol/peer-rpc.js'
import { remoteCode } from '../../../core/rpc/channel.js'
import type { Delivery } from './delivery.js'
import type { GroupService } from './group-service.js'
import type { PeerChannel } from './peer-channels.js'
import type { MessagingComponents, PeerRpcHandlers } from './types.js'
import { provenTop, type Reconciler } from './reconcile.js'
import type { StoredMessage } from '../store/types.js'

export interface SyncComponents extends Pick<MessagingComponents, 'store' | 'log'> {
  /** our device's peer ID */
  self: string
  /** our account (by default our device) */
  account?: () => string
  groups: GroupService
  delivery: Delivery
  /** our sequence counters against what peers report holding (reconcile.ts) */
  reconciler: Pick<Reconciler, 'epoch' | 'peerReported'>
  /** a held message got its final number and may go out */
  released: (m: StoredMessage) => void
  /** the next push to `peer` syncs first (a peer that lost messages of its own asked for them again) */
  requestSync?: (peer: string) => void
}

/** Envelopes read from the store per page of a sync. */
const SYNC_PAGE = 256

export class Sync {
  /** peer\nconv\nauthor → how far a sync confirmed the peer holds what it can get, for the have value it reported */
  private readonly syncedUpTo = new Map<string, { have: number, upTo: number, epoch?: string }>()

  readonly handlers: Pick<PeerRpcHandlers, 'getHave'> = {
    getHave: async (remote, body) => {
      const { conv, tops, slot } = parseHaveRequest(body)
      const groups = this.c.groups
      // a group this device has not heard of yet: it has nothing of it (the caller then sends everything)
      if (isGroupConv(conv) && groups.get(conv) === null) return {}
      if (!groups.inConversation(conv, remote) || !groups.inConversation(conv, this.c.self)) {
        throw new ParleyError('ERR_NOT_FOUND', 'no such conversation')
      }
      // the caller freed a number of its own that we may hold the message of (it re-sealed one it had sent
      // there, see Reconciler.seqConflict): what we confirmed it holds is forgotten, and we sync to it again
      if ((body as { resync?: unknown }).resync === true) {
        for (const key of this.syncedUpTo.keys()) if (key.startsWith(`${remote}\n${conv}\n`)) this.syncedUpTo.delete(key)
        this.c.requestSync?.(remote)
      }
      if (!tops) return await this.c.store.haveVector(conv)
      // the caller's own envelope at the top of its numbers we hold: the caller believes no higher top
      const proof = await this.c.store.topEnvelope(conv, remote)
      // asked what we hold at one number (a refused delivery, Reconciler.seqConflict): that envelope, or null
      // for none; left out when it is not addressed to the caller (nor written by it)
      let at: Envelope | null | undefined
      if (slot !== undefined) {
        at = await this.c.store.envelopeAt(conv, slot.author, slot.seq) ?? null
        if (at !== null && at.author !== remote && !at.keys.some(k => k.to === remote)) at = undefined
      }
      return {
        ...await this.c.store.haveAndTops(conv),
        epoch: this.c.reconciler.epoch,
        ...(proof !== undefined ? { proof } : {}),
        ...(at !== undefined ? { slot: at } : {})
      }
    }
  }

  constructor (private readonly c: SyncComponents) {}

  /**
   * One conversation failing does not stop the others; a closed channel stops
   * the sync. Returns false when something is to be tried again (a timeout, an
   * error at the peer), so the next push syncs again; a refusal is final.
   */
  async syncTo (peer: string, ch: PeerChannel): Promise<boolean> {
    let complete = true
    const groups = this.c.groups
    const account = groups.accountOf(peer)
    if (account === null) return true
    const me = this.c.account?.() ?? this.c.self
    // another device of our account: every conversation (what was sealed to it); anyone else: ours with them
    const convs = account === me
      ? (await this.c.store.listConversations()).map(c => c.conv).filter(conv => groups.inConversation(conv, me))
      : [dmConversationId(me, account), ...groups.shared(account).map(g => g.conv)]
    for (const conv of convs) {
      try {
        await this.syncConversation(peer, ch, conv)
      } catch (err) {
        if (!ch.isOpen) throw err
        const code = remoteCode(err)
        const refused = code === 'ERR_NOT_FOUND' || isPermanentRefusal(code)
        if (!refused) complete = false
        this.c.log.info('sync of one conversation skipped', { peer, conv, err: toParleyError(err).message, retry: !refused })
      }
    }
    return complete
  }

  private async syncConversation (peer: string, ch: PeerChannel, conv: string): Promise<void> {
    const { have, tops, epoch, proof } = parseHaveWithTops(await ch.call('getHave', { conv, tops: true }))
    const top = provenTop(conv, this.c.self, proof)
    if ((tops[this.c.self] ?? 0) > top) {
      this.c.log.info('a peer reports more of our numbers than it proves; believed up to the proof', { peer, conv, claimed: tops[this.c.self], proven: top })
    }
    for (const m of await this.c.reconciler.peerReported(conv, peer, top)) this.c.released(m)
    const g = this.c.groups.get(conv)
    // the admin first: its ops (the group's start, adds) let the peer judge everyone else's messages;
    // the peer's own messages too (sealed to it as their author): it may have lost them
    // authors are devices: those whose messages we hold here, and both ends of this sync
    const held = Object.keys((await this.c.store.haveAndTops(conv)).tops)
    const devices = [...new Set([this.c.self, peer, ...held])]
    const admin = g === null ? [] : devices.filter(d => this.c.groups.accountOf(d) === g.admin)
    const authors = g === null ? devices : [...admin, ...devices.filter(d => !admin.includes(d))]
    for (const author of authors) {
      const peerHas = have[author] ?? 0
      // the peer's have-vector counts from seq 1, so a member added later (or one that refused a message)
      // reports the same low number for good; what an earlier sync confirmed up to, for that same number,
      // is not sent again. A different number (it got more, or lost data) syncs from its number again.
      const key = `${peer}\n${conv}\n${author}`
      const mark = this.syncedUpTo.get(key)
      // (a peer whose store was damaged since reports a new epoch: the same number then means less)
      let after = mark !== undefined && mark.have === peerHas && mark.epoch === epoch ? Math.max(peerHas, mark.upTo) : peerHas
      let settledSoFar = true
      for (;;) {
        const envs = await this.c.store.envelopesAfter(conv, author, after, SYNC_PAGE)
        if (envs.length === 0) break
        const forPeer = envs.filter(e => e.keys.some(k => k.to === peer))
        const settled = await this.c.delivery.deliverAll(peer, ch, forPeer, author === this.c.self)
        after = envs[envs.length - 1]!.seq
        // the watermark moves only over pages the peer settled completely (holds, or refused for good)
        if (settled < forPeer.length) settledSoFar = false
        if (settledSoFar) this.syncedUpTo.set(key, { have: peerHas, upTo: after, epoch })
      }
    }
  }
}
