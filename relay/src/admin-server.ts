/**
 * Admin API of a running relay on a Unix socket in the data dir (mode 0600,
 * so only the relay's OS user can use it): the CLI's door to the same route
 * table as the console (relay/src/admin/routes.ts). The CLI names its OS user
 * in `x-parley-admin-user`, which the audit log records.
 */
import { createServer, type Server } from 'node:http'
import { chmod, unlink } from 'node:fs/promises'
import { httpStatus, toParleyError } from '../../core/errors.js'
import { closeServer } from '../../core/http/close-server.js'
import { Raw, readAdminBody, type AdminRoutes } from './admin/routes.js'

export class AdminServer {
  private server?: Server

  constructor (private readonly routes: AdminRoutes, private readonly socketPath: string) {}

  async start (): Promise<void> {
    await unlink(this.socketPath).catch(() => {})
    const server = createServer((req, res) => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://localhost')
        const user = String(req.headers['x-parley-admin-user'] ?? 'unknown').replace(/[^\w.@-]/g, '').slice(0, 40)
        const body = req.method === 'GET' ? {} : await readAdminBody(req)
        return await this.routes.handle(req.method ?? 'GET', url.pathname, { who: `cli:${user}`, body, url })
      })().then((result) => {
        if (result instanceof Raw) res.writeHead(200, { 'content-type': result.type }).end(result.body)
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result ?? null))
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
    await closeServer(s)
    await unlink(this.socketPath).catch(() => {})
  }
}
