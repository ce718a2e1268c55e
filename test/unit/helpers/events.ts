/** A typed event sink for unit tests: records what a part announced, in order. */
import type { DetailOf, EventMap, EventSink } from '../../../core/util/events.js'

export class EventRecorder<M extends EventMap<M>> implements EventSink<M> {
  readonly seen: Array<{ type: keyof M & string, detail: unknown }> = []

  emit<K extends keyof M & string> (type: K, detail: DetailOf<M[K]>): boolean {
    this.seen.push({ type, detail })
    return true
  }

  /** The details of every event of `type`, in order. */
  of<K extends keyof M & string> (type: K): Array<DetailOf<M[K]>> {
    return this.seen.filter(e => e.type === type).map(e => e.detail as DetailOf<M[K]>)
  }
}
