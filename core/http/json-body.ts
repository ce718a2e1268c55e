/**
 * Reads an HTTP request body that must be one JSON object, at most
 * `maxBytes` long: the local API's and the relay admin API's rule.
 */
import type { IncomingMessage } from 'node:http'
import { ParleyError } from '../errors.js'

/** `emptyIsObject`: an empty body reads as `{}` (the admin API's bodiless POSTs and DELETEs). */
export async function readJsonBody (req: IncomingMessage, maxBytes: number, opts: { emptyIsObject?: boolean } = {}): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).byteLength
    if (size > maxBytes) throw new ParleyError('ERR_INVALID_ARGUMENT', `request body larger than ${maxBytes} bytes`)
    chunks.push(chunk as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text === '' && opts.emptyIsObject === true) return {}
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new ParleyError('ERR_INVALID_ARGUMENT', 'request body must be JSON', { cause: err })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ParleyError('ERR_INVALID_ARGUMENT', 'request body must be a JSON object')
  return value as Record<string, unknown>
}
