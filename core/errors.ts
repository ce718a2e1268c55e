/**
 * Every failure Parley reports has a stable `code`; tests and API clients
 * match on the code, never on the message text.
 */
export type ErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_MALFORMED_FRAME'
  | 'ERR_INVALID_ENVELOPE'
  | 'ERR_BAD_SIGNATURE'
  | 'ERR_DECRYPT_FAILED'
  | 'ERR_NOT_A_RECIPIENT'
  | 'ERR_PEER_UNREACHABLE'
  | 'ERR_UNKNOWN_PEER'
  | 'ERR_AMBIGUOUS_PEER'
  | 'ERR_STREAM_CLOSED'
  | 'ERR_TIMEOUT'
  | 'ERR_ABORTED'
  | 'ERR_REMOTE'
  | 'ERR_NOT_STARTED'
  | 'ERR_DATA_DIR_LOCKED'
  | 'ERR_STORE'
  | 'ERR_DISK_FULL'
  | 'ERR_STORE_CORRUPT'
  | 'ERR_UNAUTHORIZED'
  | 'ERR_NOT_FOUND'
  | 'ERR_API_UNAVAILABLE'
  | 'ERR_INTERNAL'
  | 'ERR_NOT_ADMITTED'
  | 'ERR_NOT_A_MEMBER'
  | 'ERR_UNKNOWN_GROUP'
  | 'ERR_INVITE_INVALID'
  | 'ERR_QUOTA_EXCEEDED'
  | 'ERR_SENDER_SHARE_FULL'
  | 'ERR_UNKNOWN_RECIPIENT'
  | 'ERR_SEQ_CONFLICT'
  | 'ERR_ID_CONFLICT'
  | 'ERR_PORT_IN_USE'
  | 'ERR_RESOURCE_LIMIT'
  | 'ERR_LISTEN_FAILED'
  | 'ERR_STORE_UNAVAILABLE'
  | 'ERR_SCHEMA_TOO_NEW'
  // federation (issue 12)
  | 'ERR_FED_NOT_PAIRED'
  | 'ERR_FED_PAIRING'
  | 'ERR_FEDERATION_OFF'
  // a forwarded message expired in the queue to the other office's relay (issue 12, the sender's bounce)
  | 'ERR_FED_EXPIRED'
  // files (issue 13)
  | 'ERR_FILE_TOO_LARGE'
  | 'ERR_FILE_QUOTA_EXCEEDED'
  | 'ERR_CHUNK_REJECTED'
  | 'ERR_FILE_CHANGED'
  // federation (issue 12, fed12): a paired relay forwarded mail of a user whose signed account record does not name it as home
  | 'ERR_FED_NOT_HOME'

export class ParleyError extends Error {
  readonly code: ErrorCode
  /** what the message says, as data (a rule's name and its values), for a client that words it in its own language */
  readonly detail?: Readonly<Record<string, unknown>>
  constructor (code: ErrorCode, message: string, options?: { cause?: unknown, detail?: Record<string, unknown> }) {
    super(message, options)
    this.code = code
    this.name = 'ParleyError'
    if (options?.detail !== undefined) this.detail = options.detail
  }

  toJSON (): { code: ErrorCode, message: string, detail?: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, ...(this.detail !== undefined ? { detail: this.detail } : {}) }
  }
}

/**
 * The HTTP status the local API and the relay's admin API answer for a code;
 * codes not listed answer 500 (see httpStatus).
 */
export const HTTP_STATUS: Readonly<Partial<Record<ErrorCode, number>>> = {
  ERR_INVALID_ARGUMENT: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_NOT_FOUND: 404,
  ERR_UNKNOWN_PEER: 404,
  ERR_AMBIGUOUS_PEER: 409,
  ERR_NOT_A_MEMBER: 403,
  ERR_NOT_ADMITTED: 403,
  ERR_PEER_UNREACHABLE: 502,
  ERR_TIMEOUT: 504,
  ERR_DISK_FULL: 507,
  // federation (issue 12)
  ERR_FED_NOT_PAIRED: 403,
  ERR_FED_PAIRING: 403,
  ERR_FEDERATION_OFF: 403,
  ERR_FED_EXPIRED: 410,
  // files (issue 13)
  ERR_FILE_TOO_LARGE: 413,
  ERR_FILE_QUOTA_EXCEEDED: 507,
  // federation (issue 12, fed12)
  ERR_FED_NOT_HOME: 403
}

export const httpStatus = (code: ErrorCode): number => HTTP_STATUS[code] ?? 500

/**
 * The other end of an RPC answered with an error. `code` is ERR_REMOTE; the
 * remote end's own code is `remoteCode` (any string: the remote may be newer).
 */
export class RemoteError extends ParleyError {
  readonly remoteCode: string
  constructor (remoteCode: string, message: string) {
    super('ERR_REMOTE', `${remoteCode}: ${message}`)
    this.remoteCode = remoteCode
    this.name = 'RemoteError'
  }
}

export const invalidArgument = (message: string, cause?: unknown): ParleyError =>
  new ParleyError('ERR_INVALID_ARGUMENT', message, { cause })

/** Wraps anything thrown into a ParleyError, keeping the original as `cause`. */
export function toParleyError (err: unknown, fallback: ErrorCode = 'ERR_INTERNAL'): ParleyError {
  if (err instanceof ParleyError) return err
  if (err instanceof Error && err.name === 'AbortError') return new ParleyError('ERR_ABORTED', err.message, { cause: err })
  if (err instanceof Error && err.name === 'TimeoutError') return new ParleyError('ERR_TIMEOUT', err.message, { cause: err })
  const message = err instanceof Error ? err.message : String(err)
  return new ParleyError(fallback, message, { cause: err })
}
