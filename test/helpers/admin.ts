/**
 * Requests to a relay's admin listener with full control of the headers
 * (Host, Origin, cookie), as a browser, a script or an attacker would send them.
 */
import { request } from 'node:http'

export interface AdminAnswer { status: number, headers: Record<string, string | string[] | undefined>, text: string, json: () => unknown }

export interface AdminRequest {
  method?: string
  path: string
  token?: string
  cookie?: string
  host?: string
  origin?: string
  body?: unknown
  contentType?: string
}

export async function adminRequest (port: number, r: AdminRequest): Promise<AdminAnswer> {
  const payload = r.body === undefined ? undefined : Buffer.from(JSON.stringify(r.body))
  const headers: Record<string, string | number> = { host: r.host ?? `127.0.0.1:${port}` }
  if (r.token !== undefined) headers.authorization = `Bearer ${r.token}`
  if (r.cookie !== undefined) headers.cookie = r.cookie
  if (r.origin !== undefined) headers.origin = r.origin
  if (payload !== undefined) { headers['content-type'] = r.contentType ?? 'application/json'; headers['content-length'] = payload.byteLength }
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: r.method ?? (payload === undefined ? 'GET' : 'POST'), path: r.path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) })
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}
