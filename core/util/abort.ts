import { ParleyError } from '../errors.js'

export interface AbortOptions { signal?: AbortSignal }

/** Combines an optional caller signal with a timeout. */
export function withTimeout (signal: AbortSignal | undefined, ms: number): AbortSignal {
  const t = AbortSignal.timeout(ms)
  return signal === undefined ? t : AbortSignal.any([signal, t])
}

export function throwIfAborted (signal?: AbortSignal): void {
  if (signal?.aborted === true) {
    const r: unknown = signal.reason
    if (r instanceof Error && r.name === 'TimeoutError') throw new ParleyError('ERR_TIMEOUT', 'operation timed out', { cause: r })
    throw new ParleyError('ERR_ABORTED', 'operation aborted', { cause: r })
  }
}

/** Resolves after `ms`, or rejects when the signal aborts. */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal)
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => { clearTimeout(t); try { throwIfAborted(signal) } catch (e) { reject(e) } }
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Serializes async work: each call runs after the previous one settled. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve()
  run<T> (fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn)
    this.tail = next.catch(() => {})
    return next
  }
}
