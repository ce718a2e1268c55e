/**
 * The admin listener: HTTP on 127.0.0.1 by default, never on the public
 * libp2p ports. It serves the console page, the admin API, Prometheus
 * `/metrics`, and `/healthz` / `/readyz`.
 *
 * - Health checks answer anyone (they say nothing but up/ready), so systemd,
 *   load balancers and Kubernetes probes need no secret.
 * - Everything else needs the admin token (`Authorization: Bearer`) or a
 *   session cookie from a login, and a Host header naming this listener
 *   (a DNS name rebound to 127.0.0.1 gets 421).
 * - Changes need a JSON body and, when the browser sends an Origin, this
 *   listener's own: a form on another site cannot post to the console.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { HTTP_STATUS, ParleyError, toParleyError } from '../../../core/errors.js'
import type { Logger } from '../../../core/util/log.js'

import type { AdminAuth } from './auth.js'
import { refusal } from './refusal.js'
import type { AdminService } from './admin-service.js'
import { closeServer } from '../../../core/http/close-server.js'
import { DIST_DIR, staticHandler } from '../../../core/http/static.js'
import type { RelayMetrics } from './metrics.js'
import { ADMIN_API_PREFIX, Raw, readAdminBody, type AdminRoutes } from './routes.js'

export interface ReadyCheck { ok: boolean, detail?: string }
export interface Readiness { ready: boolean, checks: Record<string, ReadyCheck> }

export interface ConsoleServerComponents {
  routes: AdminRoutes
  auth: AdminAuth
  service: AdminService
  metrics: RelayMetrics
  readiness: () => Promise<Readiness>
  log: Logger
}

export interface ConsoleServerInit {
  /** @default '127.0.0.1' */
  host: string
  /** 0 picks a free port */
  port: number
  /** more Host header values accepted (a name in front of a reverse proxy), besides the loopback ones */
  allowedHosts: string[]
}

const COOKIE = 'parley_admin'
const STATUS: Record<string, number> = { ...HTTP_STATUS, ERR_NOT_STARTED: 503, ERR_STORE: 503 }

export class ConsoleServer {
  private server?: Server
  private boundPort?: number

  constructor (private readonly c: ConsoleServerComponents, private readonly init: ConsoleServerInit) {}

  get port (): number | undefined { return this.boundPort }
  get url (): string | undefined {
    if (this.boundPort === undefined) return undefined
    const host = this.init.host.includes(':') ? `[${this.init.host}]` : this.init.host
    return `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${this.boundPort}/`
  }

  async start (): Promise<void> {
    if (this.server !== undefined) return
    const server = createServer((req, res) => { void this.onRequest(req, res) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.init.port, this.init.host, () => { server.off('error', reject); resolve() })
    }).catch((err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? `port ${this.init.port} on ${this.init.host} is in use (set admin.port in the config file, or 0)` : err.message
      throw new ParleyError('ERR_INVALID_ARGUMENT', `the admin listener cannot start: ${why}`, { cause: err })
    })
    const addr = server.address()
    this.boundPort = typeof addr === 'object' && addr !== null ? addr.port : undefined
    this.server = server
    if (!isLoopback(this.init.host)) this.c.log.warn('the admin listener is not on loopback: put TLS and a firewall in front of it', { host: this.init.host })
  }

  async stop (): Promise<void> {
    const s = this.server
    this.server = undefined
    await closeServer(s)
  }

  private hostAllowed (req: IncomingMessage): boolean {
    const host = (req.headers.host ?? '').toLowerCase()
    const port = String(this.boundPort)
    const names = [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]
    for (const h of this.init.allowedHosts) names.push(h.toLowerCase(), `${h.toLowerCase()}:${port}`)
    return names.includes(host)
  }

  private originAllowed (req: IncomingMessage): boolean {
    const origin = req.headers.origin
    return origin === undefined || origin.toLowerCase() === `http://${(req.headers.host ?? '').toLowerCase()}` ||
      origin.toLowerCase() === `https://${(req.headers.host ?? '').toLowerCase()}`
  }

  /** The caller's `who` when authorized: a session, or the token (scripts, Prometheus). */
  private caller (req: IncomingMessage): string | undefined {
    const header = req.headers.authorization
    if (header?.startsWith('Bearer ') === true) return this.c.auth.checkToken(header.slice(7).trim()) ? 'token' : undefined
    const session = cookie(req, COOKIE)
    return session === undefined ? undefined : this.c.auth.session(session)
  }

  private async onRequest (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const path = url.pathname
    try {
      if (path === '/healthz') { send(res, 200, { status: 'ok' }); return }
      if (path === '/readyz') {
        const r = await this.c.readiness()
        send(res, r.ready ? 200 : 503, r)
        return
      }
      if (!this.hostAllowed(req)) {
        send(res, 421, { code: 'ERR_UNAUTHORIZED', message: 'the admin listener answers only to its own address (127.0.0.1 or localhost)' })
        return
      }
      if (!path.startsWith(ADMIN_API_PREFIX + '/') && path !== '/metrics') {
        if (serveConsole(req, res)) return
        throw new ParleyError('ERR_NOT_FOUND', `no page ${path}`)
      }
      const method = req.method ?? 'GET'
      if (method !== 'GET' && method !== 'HEAD') {
        if (!this.originAllowed(req)) {
          throw refusal('a change must come from the console itself (foreign Origin)', { reason: 'foreignOrigin' }, 'ERR_UNAUTHORIZED')
        }
        // a cross-site page can POST a form without asking; PUT and DELETE need a preflight it never gets
        if (method === 'POST' && !(req.headers['content-type'] ?? '').startsWith('application/json')) {
          throw new ParleyError('ERR_INVALID_ARGUMENT', 'a change needs a JSON body (content-type: application/json)')
        }
      }
      if (path === `${ADMIN_API_PREFIX}/login` && method === 'POST') { await this.login(req, res); return }
      const who = this.caller(req)
      if (path === `${ADMIN_API_PREFIX}/logout` && method === 'POST') {
        const s = cookie(req, COOKIE)
        if (s !== undefined) this.c.auth.logout(s)
        res.setHeader('set-cookie', `${COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`)
        send(res, 200, { ok: true })
        return
      }
      if (who === undefined) throw new ParleyError('ERR_UNAUTHORIZED', 'log in with the admin token (DATA/admin-token) or the admin password')
      if (path === '/metrics') {
        res.writeHead(200, { 'content-type': this.c.metrics.contentType, 'cache-control': 'no-store' }).end(await this.c.metrics.text())
        return
      }
      if (path === `${ADMIN_API_PREFIX}/session`) { send(res, 200, { who, password: await this.c.auth.hasPassword() }); return }
      const body = method === 'GET' || method === 'HEAD' ? {} : await readAdminBody(req)
      const result = await this.c.routes.handle(method, path, { who: who === 'token' ? 'console:token' : who, body, url })
      if (result instanceof Raw) {
        const headers: Record<string, string> = {
          'content-type': result.type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-security-policy': FILE_CSP
        }
        if (result.filename !== undefined) headers['content-disposition'] = `attachment; filename="${result.filename}"`
        res.writeHead(200, headers).end(result.body)
        return
      }
      send(res, method === 'POST' ? 201 : 200, result ?? null)
    } catch (err) {
      const e = toParleyError(err)
      const status = STATUS[e.code] ?? 500
      if (status >= 500) this.c.log.warn('admin request failed', { path, code: e.code, err: e.message })
      send(res, status, e.toJSON())
    }
  }

  private async login (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readAdminBody(req)
    const how = typeof body.password === 'string' ? 'password' : 'token'
    const name = typeof body.name === 'string' ? body.name : undefined
    try {
      const { session, who } = await this.c.auth.login({
        ...(typeof body.token === 'string' ? { token: body.token } : {}),
        ...(typeof body.password === 'string' ? { password: body.password } : {}),
        ...(name !== undefined ? { name } : {})
      })
      await this.c.service.recordLogin(who, true, how)
      res.setHeader('set-cookie', `${COOKIE}=${session}; Path=/; HttpOnly; SameSite=Strict`)
      send(res, 200, { who })
    } catch (err) {
      const e = toParleyError(err)
      await this.c.service.recordLogin(`console:${(name ?? '?').slice(0, 60)}`, false, how, e.code)
      throw e
    }
  }
}

const isLoopback = (host: string): boolean => host === '127.0.0.1' || host === '::1' || host === 'localhost'

function cookie (req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === name) return v.join('=')
  }
  return undefined
}

function send (res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
  res.end(JSON.stringify(body))
}

export const CONSOLE_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"
].join('; ')
/** files the API hands out (QR codes, the printable sheet) run no script; the sheet's own style is inline */
const FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
/** the console page, built from app/console/ into dist/console/ by scripts/build.mjs */
const serveConsole = staticHandler({ root: DIST_DIR + 'console', csp: CONSOLE_CSP })
