/**
 * Typed event targets, in the shape of js-libp2p's `TypedEventTarget`: a
 * plain `EventTarget` whose event names and `CustomEvent` details are checked
 * by the compiler, so listeners need no casts.
 */

/** An event map: event name → the CustomEvent it carries. */
export type EventMap<T> = { [K in keyof T]: CustomEvent<unknown> }

export type TypedListener<E> = ((evt: E) => void) | { handleEvent: (evt: E) => void }

export interface TypedEventTarget<M extends EventMap<M>> extends EventTarget {
  addEventListener<K extends keyof M & string> (type: K, listener: TypedListener<M[K]> | null, options?: boolean | AddEventListenerOptions): void
  removeEventListener<K extends keyof M & string> (type: K, listener: TypedListener<M[K]> | null, options?: boolean | EventListenerOptions): void
}

/** The detail an event of the map carries. */
export type DetailOf<E> = E extends CustomEvent<infer D> ? D : never

/** Where a part announces what happened (the owner's event target, or a recorder in a test). */
export interface EventSink<M extends EventMap<M>> {
  emit<K extends keyof M & string> (type: K, detail: DetailOf<M[K]>): boolean
}

export class TypedEventEmitter<M extends EventMap<M>> extends EventTarget implements TypedEventTarget<M>, EventSink<M> {
  override addEventListener<K extends keyof M & string> (type: K, listener: TypedListener<M[K]> | null, options?: boolean | AddEventListenerOptions): void {
    super.addEventListener(type, listener as EventListenerOrEventListenerObject | null, options)
  }

  override removeEventListener<K extends keyof M & string> (type: K, listener: TypedListener<M[K]> | null, options?: boolean | EventListenerOptions): void {
    super.removeEventListener(type, listener as EventListenerOrEventListenerObject | null, options)
  }

  /** Dispatches `type` with `detail`; both checked against the map. */
  emit<K extends keyof M & string> (type: K, detail: DetailOf<M[K]>): boolean {
    return this.dispatchEvent(new CustomEvent(type, { detail }))
  }
}
