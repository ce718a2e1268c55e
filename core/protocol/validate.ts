/**
 * Small validators for inbound values. Each throws a ParleyError with the
 * code the caller chose, naming the offending field, and never coerces.
 */
import { ParleyError, type ErrorCode } from '../errors.js'

export type Obj = Record<string, unknown>

export class Checker {
  constructor (private readonly code: ErrorCode, private readonly what: string) {}

  fail (msg: string): never {
    throw new ParleyError(this.code, `${this.what}: ${msg}`)
  }

  obj (v: unknown, field = 'value'): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(`${field} must be an object`)
    return v as Obj
  }

  str (o: Obj, field: string, opts: { min?: number, max: number, pattern?: RegExp }): string {
    const v = o[field]
    if (typeof v !== 'string') this.fail(`${field} must be a string`)
    if (v.length < (opts.min ?? 1)) this.fail(`${field} is too short`)
    if (v.length > opts.max) this.fail(`${field} is longer than ${opts.max}`)
    if (opts.pattern !== undefined && !opts.pattern.test(v)) this.fail(`${field} has an invalid format`)
    return v
  }

  int (o: Obj, field: string, opts: { min: number, max: number }): number {
    const v = o[field]
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(`${field} must be an integer`)
    if (v < opts.min || v > opts.max) this.fail(`${field} is out of range`)
    return v
  }

  bool (o: Obj, field: string): boolean {
    const v = o[field]
    if (typeof v !== 'boolean') this.fail(`${field} must be a boolean`)
    return v
  }

  literal<T extends string | number> (o: Obj, field: string, allowed: readonly T[]): T {
    const v = o[field]
    if (!allowed.includes(v as T)) this.fail(`${field} must be one of ${allowed.join(', ')}`)
    return v as T
  }

  arr (o: Obj, field: string, opts: { min?: number, max: number }): unknown[] {
    const v = o[field]
    if (!Array.isArray(v)) this.fail(`${field} must be an array`)
    if (v.length < (opts.min ?? 0) || v.length > opts.max) this.fail(`${field} has ${v.length} items; allowed ${opts.min ?? 0}..${opts.max}`)
    return v
  }
}

/** base64url without padding */
export const B64URL = /^[A-Za-z0-9_-]*$/
/** libp2p Ed25519 peer IDs in base58btc ("12D3KooW...") */
export const PEER_ID = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44,46}$/
/** a message id: 16 random bytes, base64url (22 characters) */
export const MSG_ID = /^[A-Za-z0-9_-]{22}$/

export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
export const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64url'))

/**
 * Characters a name must not hold (besides newline and tab, checked apart):
 * C0 and C1 controls, and the bidi overrides and isolates that could make a
 * name read as something else.
 */
export const CONTROL_CHARS = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/

export function parseJson (bytes: Uint8Array, code: ErrorCode, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new ParleyError(code, `${what} is not valid UTF-8 JSON`, { cause: err })
  }
}
