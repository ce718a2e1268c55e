/**
 * Route matching for the local API and the relay admin API: a method and a
 * path pattern whose groups become the handler's decoded parameters.
 */
import { ParleyError } from '../errors.js'

export interface Route<H> { method: string, pattern: RegExp, handler: H }

/** The route for `method` and `path` with its decoded parameters; null when none matches. */
export function matchRoute<H> (routes: ReadonlyArray<Route<H>>, method: string | undefined, path: string): { handler: H, params: string[] } | null {
  for (const r of routes) {
    if (r.method !== method) continue
    const m = r.pattern.exec(path)
    if (m === null) continue
    try {
      return { handler: r.handler, params: m.slice(1).map(decodeURIComponent) }
    } catch (err) {
      throw new ParleyError('ERR_INVALID_ARGUMENT', 'malformed escape in the path', { cause: err })
    }
  }
  return null
}
