/**
 * The watchers of one store (MailboxStore.watch): each told in turn; a
 * watcher that throws does not keep the others from hearing.
 */
import type { MailboxWatcher } from './types.js'

export class Watchers {
  private readonly all = new Set<MailboxWatcher>()

  add (w: MailboxWatcher): () => void {
    this.all.add(w)
    return () => { this.all.delete(w) }
  }

  mail (recipient: string): void { this.each(w => w.mail?.(recipient)) }
  removed (peerId: string): void { this.each(w => w.removed?.(peerId)) }
  resync (): void { this.each(w => w.resync?.()) }

  private each (fn: (w: MailboxWatcher) => void): void {
    for (const w of this.all) {
      try { fn(w) } catch { /* a watcher's own failure is its own */ }
    }
  }
}
