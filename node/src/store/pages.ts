import type { MessageStore, StoredMessage } from './types.js'

/**
 * A peer's whole outbox, `size` entries a page, in (seq, id) order. Entries
 * deleted while paging (acked meanwhile) are simply not seen again. Held
 * messages (awaiting reconciliation, see StoredMessage.held) are not sendable
 * yet and left out.
 */
export async function * outboxPages (store: MessageStore, peer: string, size: number): AsyncGenerator<StoredMessage[]> {
  let after: { seq: number, id: string } | undefined
  for (;;) {
    const page = await store.outbox(peer, size, after)
    if (page.length === 0) return
    const last = page[page.length - 1]!
    after = { seq: last.seq, id: last.id }
    const sendable = page.filter(m => m.held !== true)
    if (sendable.length > 0) yield sendable
  }
}
