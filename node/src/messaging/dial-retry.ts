/**
 * Dialling a peer that discovery may not have found yet: `parley link CODE`
 * is often typed on a laptop that started a moment ago, before mDNS gave it
 * the other device's addresses ("no valid addresses"). The dial is tried
 * again for a few seconds while discovery runs, then fails with one clear
 * error (ERR_PEER_UNREACHABLE), never for ever.
 */
import { ParleyError, toParleyError } from '../../../core/errors.js'
import type { AbortOptions } from '../../../core/util/abort.js'
import type { Logger } from '../../../core/util/log.js'

/** How long a link keeps dialling the account's device. @default 10000 */
export const DEFAULT_LINK_DIAL_WAIT_MS = 10_000
/** Between two dials. @default 500 */
export const DEFAULT_LINK_DIAL_RETRY_MS = 500

export interface DialRetryInit {
  /** give up after this long @default DEFAULT_LINK_DIAL_WAIT_MS */
  waitMs?: number
  /** wait between attempts @default DEFAULT_LINK_DIAL_RETRY_MS */
  retryMs?: number
  /** the thing dialled, in the error's words */
  what: string
  log?: Logger
}

/**
 * Calls `open` until it succeeds, at most `waitMs` (each attempt bounded by the time left); then throws
 * ERR_PEER_UNREACHABLE naming the last error. An abort of `options.signal` stops it at once.
 */
export async function dialWithRetry<T> (open: (options: AbortOptions) => Promise<T>, init: DialRetryInit, options: AbortOptions = {}): Promise<T> {
  const waitMs = init.waitMs ?? DEFAULT_LINK_DIAL_WAIT_MS
  const retryMs = init.retryMs ?? DEFAULT_LINK_DIAL_RETRY_MS
  const deadline = Date.now() + waitMs
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted()
    const left = Math.max(1, deadline - Date.now())
    const signal = options.signal === undefined ? AbortSignal.timeout(left) : AbortSignal.any([options.signal, AbortSignal.timeout(left)])
    try {
      return await open({ signal })
    } catch (err) {
      options.signal?.throwIfAborted()
      const e = toParleyError(err)
      if (Date.now() + retryMs >= deadline) {
        throw new ParleyError('ERR_PEER_UNREACHABLE', `could not reach ${init.what} within ${+(waitMs / 1000).toFixed(1)} s ` +
          `(${attempt} tries; last: ${e.message})`, { cause: err })
      }
      init.log?.debug('dial failed; trying again while discovery runs', { what: init.what, attempt, err: e.message })
      await new Promise(resolve => setTimeout(resolve, retryMs))
    }
  }
}
