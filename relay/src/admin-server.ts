/**
 * Admin API of a running relay: HTTP on a Unix socket in the data dir (mode
 * 0600, so only the relay's OS user can use it). `parley-relay invite create`,
 * `users` and `stats` talk to it.
 */
import { createServer, type Server } from 'node:http'
import { chmod, unlink } from 'node:fs/promises'
import { ParleyError, httpStatus, toParleyError } from '../../core/errors.js'
import { PEER_ID } from '../../core/protocol/validate.js'
import type { RelayAdmin } from './types.js'

export class AdminServer {
  private server?: Server

  constructor (private readonly relay: RelayAdmin, private readonly socketPath: string) {}

  async start (): Promise<void> {
    await unlink(this.socketPath).catch(() => {})
    const server = createServer((req, res) => {
      void (async () => {
        const chunks: Buffer[] = []
        for await (const c of req) chunks.push(c as Buffer)
        const text = Buffer.concat(chunks).toString('utf8')
        let body: Record<string, unknown> = {}
        if (text !== '') {
          try { body = JSON.parse(text) as Record<string, unknown> } catch { throw new ParleyError('ERR_INVALID_ARGUMENT', 'body must be JSON') }
        }
        const path = req.url ?? '/'
        const relay = this.relay
        if (req.method === 'POST' && path === '/invites') {
          const ttlMs = typeof body.hours === 'number' ? body.hours * 3600_000 : undefined
          return await relay.createInvite({ maxUses: body.uses as number | undefined, ttlMs, note: body.note as string | undefined })
        }
        if (req.method === 'GET' && path === '/users') return await relay.listUsers()
        if (req.method === 'POST' && path === '/users') {
          if (typeof body.peerId !== 'string' || !PEER_ID.test(body.peerId)) throw new ParleyError('ERR_INVALID_ARGUMENT', 'peerId must be a peer ID')
          return await relay.admit(body.peerId)
        }
        const del = /^\/users\/([^/]+)$/.exec(path)
        if (req.method === 'DELETE' && del !== null) return { removed: await this.relay.removeUser(decodeURIComponent(del[1] as string)) }
        if (req.method === 'GET' && path === '/stats') return await this.relay.stats()
        throw new ParleyError('ERR_NOT_FOUND', `no admin route ${req.method ?? ''} ${path}`)
      })().then((result) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result))
      }, (err) => {
        const e = toParleyError(err)
        res.writeHead(httpStatus(e.code), { 'content-type': 'application/json' }).end(JSON.stringify({ code: e.code, message: e.message }))
      })
    })
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(this.socketPath, () => { resolve() }) })
    await chmod(this.socketPath, 0o600)
    this.server = server
  }

  async stop (): Promise<void> {
    const s = this.server
    this.server = undefined
    if (s === undefined) return
    s.closeAllConnections()
    await new Promise<void>(resolve => { s.close(() => { resolve() }) })
    await unlink(this.socketPath).catch(() => {})
  }
}
