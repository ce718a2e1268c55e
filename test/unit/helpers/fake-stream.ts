/**
 * An in-memory pair of RawStreams for unit tests. Bytes sent on one end arrive
 * as a 'message' event on the other end in a later microtask, like a network.
 * abort() closes the local end synchronously (as libp2p's AbstractMessageStream
 * does) and the remote end in a microtask; close() closes both ends the same way.
 */
import type { RawStream, StreamChunk } from '../../../core/rpc/stream.js'
import type { AbortOptions } from '../../../core/util/abort.js'

export interface FakeStreamInit {
  /** deliver chunks as `{ subarray() }` objects (like Uint8ArrayList) instead of Uint8Array */
  wrapChunks?: boolean
}

export class FakeStream extends EventTarget implements RawStream {
  status = 'open'
  /** every chunk this end sent, in order */
  readonly sent: Uint8Array[] = []
  /** every chunk this end received while open, in order */
  readonly received: Uint8Array[] = []
  private peer?: FakeStream

  constructor (private readonly init: FakeStreamInit = {}) { super() }

  link (peer: FakeStream): void { this.peer = peer }

  // typed overloads so the class satisfies RawStream's listener signatures
  override addEventListener (type: 'message', listener: (evt: Event & { data: Uint8Array | StreamChunk }) => void): void
  override addEventListener (type: 'close', listener: (evt: Event & { error?: Error }) => void): void
  override addEventListener (type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void
  override addEventListener (type: string, listener: ((evt: never) => void) | EventListenerObject | null, options?: boolean | AddEventListenerOptions): void {
    super.addEventListener(type, listener as EventListenerOrEventListenerObject | null, options)
  }

  send (data: Uint8Array): boolean {
    if (this.status !== 'open') throw new Error(`stream is ${this.status}`)
    const copy = data.slice()
    this.sent.push(copy)
    const peer = this.peer
    queueMicrotask(() => { peer?.receive(copy) })
    return true
  }

  async onDrain (_options?: AbortOptions): Promise<void> {}

  async close (_options?: AbortOptions): Promise<void> {
    if (this.status !== 'open') return
    this.shut('closed', undefined)
    const peer = this.peer
    queueMicrotask(() => { peer?.shut('closed', undefined) })
  }

  abort (err: Error): void {
    if (this.status !== 'open') return
    this.shut('aborted', err)
    const peer = this.peer
    queueMicrotask(() => { peer?.shut('reset', err) })
  }

  private receive (data: Uint8Array): void {
    if (this.status !== 'open') return
    this.received.push(data)
    const chunk: Uint8Array | StreamChunk = this.init.wrapChunks === true ? { subarray: () => data } : data
    this.dispatchEvent(Object.assign(new Event('message'), { data: chunk }))
  }

  private shut (status: string, error: Error | undefined): void {
    if (this.status !== 'open') return
    this.status = status
    this.dispatchEvent(Object.assign(new Event('close'), error === undefined ? {} : { error }))
  }
}

/** Two linked ends: what `a` sends, `b` receives, and the other way round. */
export function streamPair (init: FakeStreamInit = {}): [FakeStream, FakeStream] {
  const a = new FakeStream(init)
  const b = new FakeStream(init)
  a.link(b)
  b.link(a)
  return [a, b]
}

/** Resolves with the error (if any) carried by the next 'close' event on `stream`. */
export async function closed (stream: RawStream): Promise<Error | undefined> {
  return await new Promise(resolve => { stream.addEventListener('close', (evt) => { resolve(evt.error) }) })
}
