/** Where one of my messages is, recipient by recipient (message info): from the outbox, the relay deposits and refusals. */
import type { MessageStore, StoredMessage } from '../store/types.js'
import type { RecipientView } from './contract.js'

/** an outbox holds at most this many pages of OUTBOX_PAGE entries before we stop looking (and say queued) */
const OUTBOX_PAGE = 500
const MAX_PAGES = 20

async function inOutbox (store: MessageStore, peer: string, m: StoredMessage): Promise<boolean> {
  let after: { seq: number, id: string } | undefined
  for (let page = 0; page < MAX_PAGES; page++) {
    const entries = await store.outbox(peer, OUTBOX_PAGE, after)
    if (entries.some(e => e.id === m.id)) return true
    const last = entries[entries.length - 1]
    if (last === undefined || entries.length < OUTBOX_PAGE) return false
    after = { seq: last.seq, id: last.id }
  }
  return true
}

/**
 * read: they were shown it (their read receipt); delivered: the recipient's device stored it (its outbox
 * entry is gone), with the route it took when known; sent: the relay holds it for them; queued: waiting here;
 * failed: they refused it.
 */
export async function recipientStates (store: MessageStore, m: StoredMessage, recipients: string[]): Promise<RecipientView[]> {
  return await Promise.all(recipients.map(async (peer): Promise<RecipientView> => {
    if (m.refusedBy?.includes(peer) === true || (m.state === 'failed' && recipients.length === 1)) return { peer, state: 'failed' }
    const via = m.routes?.[peer]
    const route = via !== undefined ? { via } : {}
    if (m.readBy?.includes(peer) === true || (m.state === 'read' && recipients.length === 1)) return { peer, state: 'read', ...route }
    if (!await inOutbox(store, peer, m)) return { peer, state: 'delivered', ...route }
    return { peer, state: (await store.depositedFor(peer, [m])).has(m.id) ? 'sent' : 'queued' }
  }))
}
