/**
 * JSON over HTTP for the web apps (the app's local API, the console's admin
 * API): one request, its parsed answer, or an `ApiError` from the server's
 * `{ code, message }`.
 */

/** An error answered by the server (`{ code, message }`), or ERR_UNREACHABLE when it did not answer at all. */
export class ApiError extends Error {
  /** `detail`: what `message` says, as data (the relay's admin API names the rule and its values), for the client's own words */
  constructor (readonly code: string, message: string, readonly status = 0, readonly detail?: Readonly<Record<string, unknown>>) {
    super(message)
    this.name = 'ApiError'
  }
}

/** `method url` with an optional JSON body; resolves with the parsed answer, rejects with an ApiError. */
export async function requestJson<T> (
  url: string, method: string, body: unknown, init: { headers?: Record<string, string>, credentials?: RequestCredentials } = {}
): Promise<T> {
  let res: Response
  try {
    res = await fetch(url, {
      method,
      ...(init.credentials !== undefined ? { credentials: init.credentials } : {}),
      headers: { ...init.headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined
    })
  } catch (err) {
    // fetch rejects only when nothing answered: the server is not running (or restarting)
    throw new ApiError('ERR_UNREACHABLE', (err as Error).message)
  }
  const data = await res.json().catch(() => null) as unknown
  if (!res.ok) {
    const e = (data ?? {}) as { code?: unknown, message?: unknown, detail?: unknown }
    const detail = typeof e.detail === 'object' && e.detail !== null && !Array.isArray(e.detail) ? e.detail as Record<string, unknown> : undefined
    const message = typeof e.message === 'string' ? e.message : `HTTP ${res.status}`
    throw new ApiError(typeof e.code === 'string' ? e.code : 'ERR_INTERNAL', message, res.status, detail)
  }
  return data as T
}
