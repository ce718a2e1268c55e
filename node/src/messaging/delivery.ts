/**
 * Delivery of envelopes to one peer over its channel, in a sliding window: each ack
 * (sent by the peer after its durable write) marks the message delivered; a
 * refusal no retry can change marks it failed for that peer, so it never
 * blocks what is queued behind it.
 */
import { isPermanentRefusal, type Envelope } from '../../../core/protocol/envelope.js'
import { parseDeliverResult } from '../../../core/protocol/peer-rpc.js'
import { remoteCode } from '../../../core/rpc/channel.js'
import { inSlidingWindow } from '../../../core/util/windows.js'
import type { MessagingComponents } from './types.js'
import type { PeerChannel } from './peer-channels.js'
import type { Route } from '../store/types.js'

/** `host` tells the route each delivery took (LAN or the relay's circuit) */
export type DeliveryComponents = Pick<MessagingComponents, 'store' | 'log' | 'events'> & Partial<Pick<MessagingComponents, 'host'>>

/**
 * A peer refused a message with ERR_SEQ_CONFLICT (Reconciler.seqConflict):
 * `moved` (ours, under a new number, queued again), `again` (send it again),
 * `keep` (it fails for that peer; a forwarder skips it). Throws on a passing
 * error: the delivery is tried again later.
 */
export type SeqConflict = (peer: string, ch: PeerChannel, env: Envelope) => Promise<'moved' | 'again' | 'keep'>

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
    // the number of the copy each ack is for: an ack of a copy from before a move settles nothing
    const seqs = new Map(envs.map(e => [e.id, e.seq]))
    // a sliding window: the next message goes out as soon as any is acked, so sender and receiver overlap
    await inSlidingWindow(envs, this.init.sendWindow, async env => {
      for (let attempt = 0; ; attempt++) {
        try {
          const { status } = parseDeliverResult(await ch.call('deliver', env))
          routes.set(env.id, status === 'duplicate' && deposited.has(env.id) ? 'mailbox' : reach)
          return env.id
        } catch (err) {
          const code = remoteCode(err)
          // the peer does not know the group yet: skip it for now, without blocking what follows
          if (code === 'ERR_UNKNOWN_GROUP') return null
          if (!isPermanentRefusal(code)) throw err
          if (code === 'ERR_SEQ_CONFLICT' && this.c.seqConflict !== undefined) {
            // the number is taken at the peer: by a message of ours our store lost (ours moves to a new number),
            // or by an old copy of one that moved since (the peer got the moved copy: this one goes again)
            const outcome = await this.c.seqConflict(peer, ch, env)
            if (outcome === 'again' && attempt === 0) continue
            // not settled: the moved copy (or this one) is sent again
            if (outcome !== 'keep') return null
          }
          return await this.refused(peer, env, code, own, () => { settled++ })
        }
      }
    }, async (ids) => {
      settled += ids.length
      for (const m of await this.c.store.markDelivered(ids, peer, routes, seqs)) this.c.events.emit('messageStateChanged', m)
    })
    return settled
  }

  /** A refusal no retry can change: our message fails for that peer; another author's is skipped. */
  private async refused (peer: string, env: Envelope, code: string, own: boolean, settle: () => void): Promise<null> {
    this.c.log.warn('recipient refused a message for good', { peer, id: env.id, code })
    settle()
    // another author's message forwarded by sync: not ours to fail
    if (!own) return null
    const failed = await this.c.store.markFailed(env.id, peer, code)
    if (failed !== undefined) this.c.events.emit('messageStateChanged', failed)
    return null
  }
}
