/**
 * Receipts and bounces that came through the relays (federation, issue 12;
 * core/protocol/fed-notice.ts): a delivery or read receipt signed by a
 * recipient device of another office moves our message on like its direct
 * ack or read receipt would; a bounce from our own relay (the message expired
 * in its queue to the other office, or that office has no such user) fails it
 * for that recipient, with the reason, as a refusal does.
 */
import { verifyReceipt } from '../../../core/crypto/envelope.js'
import { toParleyError } from '../../../core/errors.js'
import type { Notice } from '../../../core/protocol/fed-notice.js'
import { isGroupConv } from '../../../core/protocol/envelope.js'
import type { Route, StoredMessage } from '../store/types.js'
import type { MessagingComponents } from './types.js'

export async function applyNotices (c: Pick<MessagingComponents, 'store' | 'identity' | 'log' | 'events'>, items: Notice[]): Promise<void> {
  const changed: StoredMessage[] = []
  for (const item of items) {
    try {
      if ('bounce' in item) {
        const b = item.bounce
        for (const id of b.ids) {
          const m = await c.store.getMessage(id)
          if (m?.outgoing !== true || m.author !== c.identity.peerId) continue
          // only for a recipient of it, and never once it has it (a bounce of a re-sent copy cannot undo a delivery)
          if (!m.envelope.keys.some(k => k.to === b.peer) || m.routes?.[b.peer] !== undefined || m.readBy?.includes(b.peer) === true) continue
          if (!isGroupConv(m.conv) && (m.state === 'delivered' || m.state === 'read')) continue
          const failed = await c.store.markFailed(id, b.peer, b.code)
          if (failed !== undefined) changed.push(failed)
        }
        c.log.warn('a message to another office was given up by our relay', { peer: b.peer, code: b.code, count: b.ids.length })
        continue
      }
      const r = item.receipt
      verifyReceipt(r)
      if (r.author !== c.identity.peerId) continue
      // only our messages of that conversation, for which the signer is a recipient
      const ids: string[] = []
      for (const id of r.ids) {
        const m = await c.store.getMessage(id)
        if (m?.outgoing === true && m.conv === r.conv && m.envelope.keys.some(k => k.to === r.by)) ids.push(id)
      }
      if (ids.length === 0) continue
      const routes = new Map<string, Route>(ids.map(id => [id, 'mailbox']))
      changed.push(...(r.state === 'read' ? await c.store.markRead(ids, r.by) : await c.store.markDelivered(ids, r.by, routes)))
    } catch (err) {
      c.log.info('a receipt from another office was not taken', { err: toParleyError(err).message })
    }
  }
  for (const m of changed) c.events.emit('messageStateChanged', m)
}
