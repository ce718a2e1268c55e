/**
 * The admin API's routes (`/api/v1/...`), one table for both doors: the
 * console's HTTP listener and the CLI's Unix socket. A route answers JSON,
 * or a file (CSV, HTML sheet, SVG) as `Raw`.
 */
import type { IncomingMessage } from 'node:http'
import { ParleyError } from '../../../core/errors.js'
import { refusal } from './refusal.js'
import { readJsonBody } from '../../../core/http/json-body.js'
import { matchRoute, type Route } from '../../../core/http/routes.js'
import type { AdminService } from './admin-service.js'
import type { AdminAuth } from './auth.js'
import { MAX_IMPORT_BYTES, invitesCsv } from './directory.js'
import { inviteSheetHtml, qrSvg } from './invite-sheet.js'
import type { TrafficRing } from './traffic.js'
import type { RelayAdmin } from '../types.js'

export const ADMIN_API_PREFIX = '/api/v1'
/** the largest request body: a directory CSV at its limit, as JSON text */
export const MAX_ADMIN_BODY_BYTES = 2 * MAX_IMPORT_BYTES

export class Raw {
  constructor (readonly type: string, readonly body: string, readonly filename?: string) {}
}

export interface RouteContext {
  /** who is asking, for the audit log */
  who: string
  body: Record<string, unknown>
  params: string[]
  url: URL
}
type Handler = (ctx: RouteContext) => Promise<unknown>

export interface AdminRoutesComponents {
  service: AdminService
  relay: RelayAdmin
  auth: AdminAuth
  traffic: TrafficRing
}

export class AdminRoutes {
  private readonly routes: Array<Route<Handler>> = []

  constructor (c: AdminRoutesComponents) {
    const { service, relay, auth, traffic } = c
    const r = (method: string, path: string, handler: Handler): void => {
      this.routes.push({ method, pattern: new RegExp(`^${path.replace(/:\w+/g, '([^/]+)')}$`), handler })
    }
    r('GET', '/stats', async () => await relay.stats())
    r('GET', '/traffic', async ({ url }) => ({ intervalMs: traffic.interval, samples: traffic.list(Number(url.searchParams.get('since') ?? 0)) }))
    r('GET', '/invites', async () => await service.listInvites())
    r('POST', '/invites', async ({ who, body }) => await service.createInvite(who, body))
    r('POST', '/invites/:ref/revoke', async ({ who, params }) => await service.revokeInvite(who, params[0] as string))
    r('GET', '/invites/:ref/qr.svg', async ({ params }) => {
      const i = (await service.listInvites()).find(x => x.token.startsWith(params[0] as string))
      if (i === undefined) throw new ParleyError('ERR_NOT_FOUND', 'no such invite')
      return new Raw('image/svg+xml', await qrSvg(i.link))
    })
    r('GET', '/users', async () => await service.listUsers())
    r('POST', '/users', async ({ who, body }) => await service.allowUser(who, body.peerId))
    r('DELETE', '/users/:peerId', async ({ who, params }) => await service.removeUser(who, params[0] as string))
    r('GET', '/policy', async () => service.policy())
    r('PUT', '/policy', async ({ who, body }) => await service.setPolicy(who, body))
    r('GET', '/directory', async () => await service.listPeople())
    r('GET', '/directory/tree', async () => await service.directoryTree())
    r('POST', '/directory/import', async ({ who, body }) => await service.importDirectory(who, body.csv as string, body))
    r('DELETE', '/directory/:id', async ({ who, params }) => await service.removePerson(who, params[0] as string))
    const ids = (url: URL): string[] | undefined => url.searchParams.has('ids') ? (url.searchParams.get('ids') ?? '').split(',') : undefined
    r('GET', '/directory/invites.csv', async ({ url }) =>
      new Raw('text/csv; charset=utf-8', '\uFEFF' + invitesCsv(await service.sheetRows(ids(url))), 'parley-invites.csv'))
    r('GET', '/directory/sheet.html', async ({ url }) =>
      new Raw('text/html; charset=utf-8', await inviteSheetHtml(await service.sheetRows(ids(url)), 'Parley invites')))
    r('GET', '/audit', async ({ url }) => {
      const limit = Number(url.searchParams.get('limit') ?? 200)
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new ParleyError('ERR_INVALID_ARGUMENT', 'limit must be 1..10000')
      return await service.auditLog(limit)
    })
    // federation with other offices' relays (relay/src/federation/)
    r('GET', '/federation', async () => await relay.federation.list())
    r('POST', '/federation/invite', async ({ who, body }) => {
      const hours = body.hours ?? 24
      if (typeof hours !== 'number' || !Number.isFinite(hours) || hours <= 0 || hours > 24 * 30) {
        throw new ParleyError('ERR_INVALID_ARGUMENT', 'hours must be a positive number, at most 720 (30 days)')
      }
      return await service.federationChange(who, 'invite', undefined, { hours }, async () => await relay.federation.invite(hours * 3600_000))
    })
    r('POST', '/federation/peers', async ({ who, body }) => {
      if (typeof body.token !== 'string') throw new ParleyError('ERR_INVALID_ARGUMENT',
        'give the pairing token (from `parley-relay federation invite` on the other relay)')
      return await service.federationChange(who, 'add', undefined, {}, async () => await relay.federation.add(body.token as string))
    })
    r('DELETE', '/federation/peers/:id', async ({ who, params }) =>
      await service.federationChange(who, 'remove', params[0], {}, async () => await relay.federation.remove(params[0] as string)))
    r('PUT', '/federation/peers/:id/policy', async ({ who, params, body }) =>
      await service.federationChange(who, 'policy', params[0], body, async () => await relay.federation.setPolicy(params[0] as string, body)))
    r('PUT', '/password', async ({ who, body }) => {
      const pw = body.password
      if (pw !== null && typeof pw !== 'string') throw refusal('password must be text, or null to remove it', { reason: 'passwordType' })
      await service.recordPassword(who, async () => { await auth.setPassword(pw) }, pw === null)
      return { password: pw !== null }
    })
  }

  /** Finds and runs the route; throws ERR_NOT_FOUND when none matches. */
  async handle (method: string, path: string, ctx: Omit<RouteContext, 'params'>): Promise<unknown> {
    if (!path.startsWith(ADMIN_API_PREFIX + '/')) throw new ParleyError('ERR_NOT_FOUND', `no admin route ${method} ${path}`)
    const route = matchRoute(this.routes, method, path.slice(ADMIN_API_PREFIX.length))
    if (route === null) throw new ParleyError('ERR_NOT_FOUND', `no admin route ${method} ${path}`)
    return await route.handler({ ...ctx, params: route.params })
  }
}

/** Reads a JSON object body (empty means {}). */
export async function readAdminBody (req: IncomingMessage): Promise<Record<string, unknown>> {
  return await readJsonBody(req, MAX_ADMIN_BODY_BYTES, { emptyIsObject: true })
}
