/**
 * CLI side of the local API: HTTP over the Unix socket in the data dir,
 * authenticated with the token stored beside it.
 */
import { request } from 'node:http'
import { readFile } from 'node:fs/promises'
import WebSocket from 'ws'
import { ParleyError, type ErrorCode } from '../../../core/errors.js'
import { dataFiles } from '../config.js'

export class ApiClient {
  private constructor (private readonly socket: string, private readonly token: string) {}

  static async open (dataDir: string): Promise<ApiClient> {
    const files = dataFiles(dataDir)
    let token: string
    try {
      token = (await readFile(files.token, 'utf8')).trim()
    } catch (err) {
      const hint = `start one with \`parley start --data ${dataDir}\``
      throw new ParleyError('ERR_API_UNAVAILABLE', `no Parley node has run with data dir ${dataDir} (${hint})`, { cause: err })
    }
    return new ApiClient(files.socket, token)
  }

  async call<T> (method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    return await new Promise<T>((resolve, reject) => {
      const req = request({
        // one connection per call: a kept-alive socket that the server closes as idle (its keepAliveTimeout)
        // just as the next call reuses it fails that call with EPIPE / ECONNRESET
        agent: false,
        socketPath: this.socket,
        path: '/v1' + path,
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': payload.byteLength } : {})
        }
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          let parsed: unknown
          try { parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) } catch (err) {
            reject(new ParleyError('ERR_INTERNAL', `node answered ${String(res.statusCode)} with non-JSON`, { cause: err })); return
          }
          if ((res.statusCode ?? 500) >= 400) {
            const e = parsed as { code?: string, message?: string }
            reject(new ParleyError((e.code ?? 'ERR_INTERNAL') as ErrorCode, e.message ?? 'request failed')); return
          }
          resolve(parsed as T)
        })
        res.on('error', reject)
      })
      req.on('error', (err: NodeJS.ErrnoException) => {
        reject(new ParleyError('ERR_API_UNAVAILABLE', err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? 'the Parley node is not running for this data dir (start it with `parley start`)'
          : `cannot reach the local API: ${err.message}`, { cause: err }))
      })
      req.end(payload)
    })
  }

  events (): WebSocket {
    return new WebSocket(`ws+unix://${this.socket}:/v1/events`, { headers: { authorization: `Bearer ${this.token}` } })
  }
}
