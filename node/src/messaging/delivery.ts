/**
 * Delivery of envelopes to one peer over its channel, in windows: each ack
 * (sent by the peer after its durable write) marks the message delivered; a
 * refusal no retry can change marks it failed for that peer, so it never
 * blocks what is queued behind it.
 */
import { isPermanentRefusal, type Envelope } from '../../../core/protocol/envelope.js'
import { parseDeliverResult } from '../../../core/protocol/peer-rpc.js'
import { remoteCode } from '../../../core/rpc/channel.js'
import { inWindows } from '../../../core/util/windows.js'
import type { MessagingComponents } from './types.js'
import type { PeerChannel } from './peer-channels.js'
import type { Route } from '../store/types.js'

/** `host` tells the route each delivery took (LAN or the relay's circuit) */
export type DeliveryComponents = Pick<MessagingComponents, 'store' | 'log' | 'events'> & Partial<Pick<MessagingComponents, 'host'>>

/**
 * A peer refused one of our messages with ERR_SEQ_CONFLICT: re-number it
 * (Reconciler.seqConflict); true when handled (it goes out again), false when
 * it fails for that peer.
 */
export type SeqConflict = (peer: string, ch: PeerChannel, env: Envelope) => Promise<boolean>

export interface DeliveryInit {
  /** messages in flight per peer before waiting for acks */
  sendWindow: number
}

export class Delivery {
  constructor (private readonly c: DeliveryComponents & { seqConflict?: SeqConflict }, private readonly init: DeliveryInit) {}

  /**
   * Sends `envs` to `peer`; returns how many were settled (acked, or refused
   * for good). `own`: they are our messages (a refusal fails them); sync also
   * forwards other authors' messages, which a refusal only skips.
   */
  async deliverAll (peer: string, ch: PeerChannel, envs: Envelope[], own = true): Promise<number> {
    let settled = 0
    // the route each message took to this peer: this connection's, or the relay's mailbox for one the peer
    // already had (a duplicate) while the relay held a copy for it
    const routes = new Map<string, Route>()
    const reach: Route = this.c.host?.reach(peer) === 'relay' ? 'circuit' : 'lan'
    const deposited = own ? await this.c.store.depositedFor(peer, envs) : new Set<string>()
    await inWindows(envs, this.init.sendWindow, async env => {
      try {
        const { status } = parseDeliverResult(await ch.call('deliver', env))
        routes.set(env.id, status === 'duplicate' && deposited.has(env.id) ? 'mailbox' : reach)
        return env.id
      } catch (err) {
        const code = remoteCode(err)
        // the peer does not know the group yet: skip it for now, without blocking what follows
        if (code === 'ERR_UNKNOWN_GROUP') return null
        if (!isPermanentRefusal(code)) throw err
        // our number is taken at the peer by a message of ours our store lost: sent again under a new one
        if (own && code === 'ERR_SEQ_CONFLICT' && await this.c.seqConflict?.(peer, ch, env) === true) return null
        this.c.log.warn('recipient refused a message for good', { peer, id: env.id, code })
        // another author's message forwarded by sync: not ours to fail
        if (!own) { settled++; return null }
        const failed = await this.c.store.markFailed(env.id, peer, code)
        if (failed !== undefined) this.c.events.emit('messageStateChanged', failed)
        settled++
        return null
      }
    }, async (ids) => {
      settled += ids.length
      for (const m of await this.c.store.markDelivered(ids, peer, routes)) this.c.events.emit('messageStateChanged', m)
    })
    return settled
  }
}
