/**
 * Local API: HTTP + WebSocket events, on 127.0.0.1:<port> (for the UI) and on
 * a Unix socket in the data dir (for the CLI; it also crosses network
 * namespaces, which the LAN tests use). Every request needs the token kept in
 * the data dir. Errors answer `{ code, message }`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { chmod, unlink } from 'node:fs/promises'
import { timingSafeEqual } from 'node:crypto'
import { WebSocketServer, type WebSocket } from 'ws'
import { ParleyError, httpStatus, toParleyError } from '../../../core/errors.js'
import {
  API_PREFIX, DEFAULT_SEARCH_LIMIT, MAX_API_BODY_BYTES, MAX_SEARCH_LIMIT, parseHistoryCursor, toMessageView,
  type AccountView, type ApiEventType, type OfficeWaiting, type ConversationView, type GroupView, type MessageView, type SearchHit, type StoreHealthView
} from './contract.js'
import { loadUiPrefs, parseUiPrefs, saveUiPrefs } from './ui-prefs.js'
import { DEFAULT_CHANGE_WINDOWS, foldChanges, type AccountOfDevice, type ChangeWindows } from './changes.js'
import { resolveExtras } from './message-extras.js'
import { recipientStates } from './recipients.js'
import { conversationMembers, isGroupConv, parseDisplayName } from '../../../core/protocol/envelope.js'
import { INVITE_TOKEN } from '../../../core/protocol/relay-rpc.js'
import { normalizeName } from '../../../core/protocol/names.js'
import type { GroupState } from '../messaging/groups.js'
import { relayAddrs } from '../../../core/keys.js'
import type { Messenger, PeerView } from '../messaging/messenger.js'
import type { MessageStore, StoredMessage } from '../store/types.js'
import type { PeerHost } from '../host/types.js'
import type { RelayClient } from '../messaging/relay-client.js'
import type { Logger } from '../../../core/util/log.js'
import { resolvePeer } from './resolve.js'
import { PEER_ID } from '../../../core/protocol/validate.js'
import { remoteCode } from '../../../core/rpc/channel.js'
import { readJsonBody } from '../../../core/http/json-body.js'
import { matchRoute, type Route } from '../../../core/http/routes.js'
import { parseInviteLink } from '../../../core/protocol/invite-link.js'
import QRCode from 'qrcode'
import { createReadStream } from 'node:fs'
import { FileBody, fileRoutes } from '../files/routes.js'
import type { FileService } from '../files/service.js'
import type { FileSettingsStore } from '../files/settings.js'
import { WsCork } from './ws-cork.js'

export interface ApiServerComponents {
  messenger: Messenger
  store: MessageStore
  host: PeerHost
  log: Logger
  relay: RelayClient
  setRelay: (relay: string | null, invite: string | null) => Promise<{ relay: string | null, invite: string | null }>
  /** what opening the store found (GET /status `store`) */
  storeHealth?: () => StoreHealthView
  /** file transfer (node/src/files/): its routes and its transferChanged event */
  files?: { service: FileService, settings: FileSettingsStore }
}
export interface ApiServerInit {
  token: string
  /** TCP port on 127.0.0.1; 0 picks one; null disables TCP. */
  port: number | null
  /** Unix socket path; null disables it. */
  socketPath: string | null
  /** serves GET / and static UI files from here when set */
  staticHandler?: (req: IncomingMessage, res: ServerResponse) => boolean
  /** how long after writing a message its author may edit or recall it. @default DEFAULT_CHANGE_WINDOWS (24 h each) */
  changeWindows?: ChangeWindows
}

type Handler = (req: IncomingMessage, params: string[], url: URL) => Promise<unknown>

const EVENTS = [
  'messageStored', 'messageStateChanged', 'peerOnline', 'peerOffline', 'peerUpdated', 'peerTyping', 'groupUpdated', 'accountUpdated'
] as const satisfies readonly ApiEventType[]
/** @default 120000 */
export const MAX_WAIT_MS = 120_000
/** the most messages one history call returns. @default 100000 */
export const MAX_HISTORY_LIMIT = 100_000
/** messages of a history call without `limit`. @default 200 */
export const DEFAULT_HISTORY_LIMIT = 200

/** sun_path is 108 bytes on Linux (104 on macOS), including the final NUL */
const MAX_SOCKET_PATH_BYTES = 103

export class ApiServer {
  private readonly servers: Server[] = []
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096 })
  private readonly cork = new WsCork()
  private readonly routes: Array<Route<Handler>> = []
  private tcpPort?: number
  private started = false
  /** removes the listeners that forward events to the clients */
  private readonly forward: Array<() => void> = []

  private readonly changeWindows: ChangeWindows

  constructor (private readonly c: ApiServerComponents, private readonly init: ApiServerInit) {
    this.changeWindows = init.changeWindows ?? DEFAULT_CHANGE_WINDOWS
    if (init.token.length < 32) throw new ParleyError('ERR_INVALID_ARGUMENT', 'API token too short')
    this.defineRoutes()
  }

  get port (): number | undefined { return this.tcpPort }

  /** idle, as the UI last said (PUT /presence) */
  private away = false

  /** what peers see of us: do not disturb (a UI setting) wins over away */
  private applyStatus (dnd: boolean): void {
    this.c.messenger.setPresenceStatus(dnd ? 'dnd' : this.away ? 'away' : 'active')
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    for (const type of EVENTS) {
      const fn = (e: CustomEvent<object>): void => { this.broadcast(type, e.detail) }
      this.c.messenger.addEventListener(type, fn)
      this.forward.push(() => { this.c.messenger.removeEventListener(type, fn) })
    }
    this.applyStatus((await loadUiPrefs(this.c.store)).dnd)
    const relayFn = (e: CustomEvent<object>): void => { this.broadcast('relayChanged', e.detail) }
    this.c.relay.addEventListener('relayChanged', relayFn)
    this.forward.push(() => { this.c.relay.removeEventListener('relayChanged', relayFn) })
    const files = this.c.files?.service
    if (files !== undefined) {
      const fileFn = (e: CustomEvent<object>): void => { this.broadcast('transferChanged', e.detail) }
      files.addEventListener('transferChanged', fileFn)
      this.forward.push(() => { files.removeEventListener('transferChanged', fileFn) })
    }
    if (this.init.port !== null) {
      const s = this.makeServer(true)
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen(this.init.port ?? 0, '127.0.0.1', () => { s.off('error', reject); resolve() })
      })
        .catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'EADDRINUSE') {
            const what = `the local API port ${String(this.init.port)} on 127.0.0.1 is in use by another program (another Parley running?)`
            throw new ParleyError('ERR_PORT_IN_USE', `${what}: stop it, or choose another with --api-port (0 picks a free one)`, { cause: err })
          }
          throw new ParleyError('ERR_INVALID_ARGUMENT', err.message, { cause: err })
        })
      const addr = s.address()
      this.tcpPort = typeof addr === 'object' && addr !== null ? addr.port : undefined
    }
    if (this.init.socketPath !== null) {
      const path = this.init.socketPath
      // the OS cuts longer socket paths silently (and the socket lands elsewhere): refuse instead
      if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
        throw new ParleyError('ERR_INVALID_ARGUMENT', `the data directory path is too long for the API socket (${Buffer.byteLength(path)} bytes, ` +
          `at most ${MAX_SOCKET_PATH_BYTES}): choose a shorter --data path`)
      }
      await unlink(path).catch(() => {})
      const s = this.makeServer(false)
      await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(path, () => { s.off('error', reject); resolve() }) })
      await chmod(path, 0o600)
    }
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    for (const unlisten of this.forward) unlisten()
    this.forward.length = 0
    // events of this very turn are still corked: send them before the sockets go
    this.cork.flush()
    for (const ws of this.wss.clients) ws.terminate()
    await Promise.all(this.servers.map(async s => { s.closeAllConnections(); await new Promise<void>(resolve => { s.close(() => { resolve() }) }) }))
    this.servers.length = 0
    if (this.init.socketPath !== null) await unlink(this.init.socketPath).catch(() => {})
  }

  /** `tcp`: the 127.0.0.1 listener, which also checks Host (and Origin on upgrades) against DNS rebinding. */
  private makeServer (tcp: boolean): Server {
    const s = createServer((req, res) => {
      if (tcp && !this.localHost(req)) {
        const body = JSON.stringify({ code: 'ERR_UNAUTHORIZED', message: 'this server answers only to 127.0.0.1 and localhost' })
        res.writeHead(421, { 'content-type': 'application/json; charset=utf-8' }).end(body)
        return
      }
      void this.onRequest(req, res)
    })
    s.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://localhost')
      if (tcp && (!this.localHost(req) || !this.localOrigin(req))) {
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n{"code":"ERR_UNAUTHORIZED","message":"foreign Host or Origin"}')
        return
      }
      if (url.pathname !== `${API_PREFIX}/events` || !this.authorized(req, url)) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\r\n{"code":"ERR_UNAUTHORIZED","message":"token required"}')
        return
      }
      this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        ws.on('message', () => {})
        ws.on('error', () => {})
      })
    })
    this.servers.push(s)
    return s
  }

  /** `waiting` (federation): a copy for `peer` below delivered waits in our relay's queue, its office's relay unreachable. */
  private waiting (peer: string, state: string): { waiting?: OfficeWaiting } {
    if (state !== 'sent') return {}
    const d = this.c.relay?.waitingFor(peer)
    return d === undefined ? {} : { waiting: { office: d.office, since: d.since, ...(d.error !== undefined ? { error: d.error } : {}) } }
  }

  private broadcast (type: ApiEventType, detail: object): void {
    // a stored message goes out as its view (no envelope); everything else as it is
    const data = 'envelope' in detail ? toMessageView(detail as StoredMessage) : detail
    const line = JSON.stringify({ v: 1, type, data })
    for (const ws of this.wss.clients) if (ws.readyState === ws.OPEN) { this.cork.forThisTurn(ws); ws.send(line) }
  }

  private localNames (): string[] {
    const port = this.tcpPort
    return port === undefined ? [] : [`127.0.0.1:${port}`, `localhost:${port}`]
  }

  /** The Host header names this server (not a rebound DNS name pointing at 127.0.0.1). */
  private localHost (req: IncomingMessage): boolean {
    return this.localNames().includes((req.headers.host ?? '').toLowerCase())
  }

  /** No Origin (CLI, scripts) or the UI's own origin. */
  private localOrigin (req: IncomingMessage): boolean {
    const origin = req.headers.origin
    return origin === undefined || this.localNames().some(n => origin.toLowerCase() === `http://${n}`)
  }

  private authorized (req: IncomingMessage, url: URL): boolean {
    const header = req.headers.authorization
    const given = header?.startsWith('Bearer ') === true ? header.slice(7) : (url.searchParams.get('token') ?? '')
    const a = Buffer.from(given)
    const b = Buffer.from(this.init.token)
    return a.length === b.length && timingSafeEqual(a, b)
  }

  private async onRequest (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    try {
      if (!url.pathname.startsWith(API_PREFIX + '/')) {
        if (this.init.staticHandler?.(req, res) === true) return
        throw new ParleyError('ERR_NOT_FOUND', `no route ${req.method ?? ''} ${url.pathname}`)
      }
      if (!this.authorized(req, url)) throw new ParleyError('ERR_UNAUTHORIZED', 'missing or wrong API token')
      const path = url.pathname.slice(API_PREFIX.length)
      const route = matchRoute(this.routes, req.method, path)
      if (route === null) throw new ParleyError('ERR_NOT_FOUND', `no route ${req.method ?? ''} ${url.pathname}`)
      const result = await route.handler(req, route.params, url)
      if (result instanceof FileBody) { this.sendFile(res, result); return }
      this.send(res, req.method === 'POST' ? 201 : 200, result)
    } catch (err) {
      const e = toParleyError(err)
      if (httpStatus(e.code) >= 500) this.c.log.warn('api request failed', { path: url.pathname, code: e.code, err: e.message })
      // `detail`: the rule that refused, as data (e.g. `{ reason: 'too-late' }`), for the UI's own words
      this.send(res, httpStatus(e.code), { code: e.code, message: e.message, ...(e.detail !== undefined ? { detail: e.detail } : {}) })
    }
  }

  private send (res: ServerResponse, status: number, body: unknown): void {
    if (res.headersSent) return
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
    res.end(JSON.stringify(body))
  }

  /** A received file, as a download (never rendered by the browser as a page). */
  private sendFile (res: ServerResponse, f: FileBody): void {
    res.writeHead(200, {
      'content-type': f.type.startsWith('image/') && !f.type.includes('svg') ? f.type : 'application/octet-stream',
      'content-length': String(f.size),
      'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(f.name)}`,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; sandbox"
    })
    createReadStream(f.path).on('error', () => { res.destroy() }).pipe(res)
  }

  private route (method: string, pattern: RegExp, handler: Handler): void {
    this.routes.push({ method, pattern, handler })
  }

  private defineRoutes (): void {
    const { messenger, store, host } = this.c
    const resolvePeerRef = async (ref: string): Promise<string> => PEER_ID.test(ref) ? ref : resolvePeer(ref, await messenger.listPeers(), messenger.peerId)
    /** a conversation reference: a group id or name, else a peer */
    const resolveConvRef = async (ref: string): Promise<string> => {
      if (isGroupConv(ref) || PEER_ID.test(ref)) return ref
      const groups = messenger.listGroups().filter(g => g.name.toLowerCase() === ref.trim().toLowerCase() && g.members.includes(messenger.account))
      const peer = await resolvePeerRef(ref).catch((err: unknown) => { if ((err as ParleyError).code === 'ERR_UNKNOWN_PEER') return null; throw err })
      // a group must never shadow a colleague (anyone can name a group "Ben"): both matching is ambiguous
      if (groups.length + (peer === null ? 0 : 1) > 1) {
        throw new ParleyError('ERR_AMBIGUOUS_PEER', `"${ref}" names ${groups.length} group(s)${peer === null ? '' : ' and a person'}: use an id`)
      }
      if (peer !== null) return peer
      if (groups.length === 1) return (groups[0] as GroupState).conv
      throw new ParleyError('ERR_UNKNOWN_PEER', `no known peer or group "${ref}"`)
    }
    const groupRef = async (ref: string): Promise<string> => {
      const conv = await resolveConvRef(ref)
      if (!isGroupConv(conv)) throw new ParleyError('ERR_NOT_FOUND', `no group "${ref}"`)
      return conv
    }
    const groupView = (g: GroupState): GroupView =>
      ({ id: g.conv, name: g.name, admin: g.admin, members: g.members, member: g.members.includes(messenger.account) })
    this.route('GET', /^\/identity$/, async () => ({ peerId: messenger.peerId, name: messenger.name, addresses: host.addresses() }))
    this.route('GET', /^\/account$/, async () => await accountView(messenger, store, host))
    this.route('GET', /^\/devices$/, async () => (await accountView(messenger, store, host)).devices)
    this.route('POST', /^\/devices\/([^/]+)\/revoke$/, async (_req, [ref]) => {
      const { devices } = await accountView(messenger, store, host)
      // a device ID, or its last characters (at least 6) as parley devices shows them
      const device = devices.find(d => d.peerId === ref || (ref !== undefined && ref.length >= 6 && d.peerId.endsWith(ref)))
      if (device === undefined) throw new ParleyError('ERR_NOT_FOUND', `no device ${ref ?? ''} in this account (see parley devices)`)
      await messenger.accounts.change({ type: 'revoke', device: device.peerId })
      return await accountView(messenger, store, host)
    })
    this.route('POST', /^\/link$/, async () => {
      const { code, expiresAt } = messenger.linking.createCode()
      return { code, expiresAt, qr: await QRCode.toString(code, { type: 'svg', errorCorrectionLevel: 'M', margin: 2, width: 256 }) }
    })
    this.route('POST', /^\/link\/join$/, async (req) => {
      const body = await readJson(req)
      if (typeof body.code !== 'string') throw new ParleyError('ERR_INVALID_ARGUMENT', 'code must be the link code your other device shows')
      if (body.label !== undefined && typeof body.label !== 'string') throw new ParleyError('ERR_INVALID_ARGUMENT', 'label must be a string')
      await messenger.linking.join(body.code, body.label as string | undefined)
      return await accountView(messenger, store, host)
    })
    this.route('PUT', /^\/profile$/, async (req) => {
      const body = await readJson(req)
      const profile = await messenger.setName(body.name as string)
      return { peerId: profile.peerId, name: profile.name }
    })
    this.route('GET', /^\/peers$/, async () => await messenger.listPeers())
    this.route('POST', /^\/peers\/dial$/, async (req) => {
      const body = await readJson(req)
      if (typeof body.addr !== 'string') throw new ParleyError('ERR_INVALID_ARGUMENT', 'addr must be a multiaddr string')
      return { peerId: await host.dial(body.addr) }
    })
    this.route('GET', /^\/settings$/, async () => ({ name: messenger.name, relay: this.c.relay.status(), ui: await loadUiPrefs(store), changeWindows: this.changeWindows }))
    this.route('PUT', /^\/settings$/, async (req) => {
      const body = await readJson(req)
      // an invite link from the relay admin (console, sheet, QR code) carries both the relay and the invite
      if (body.join !== undefined) {
        if (typeof body.join !== 'string') throw new ParleyError('ERR_INVALID_ARGUMENT', 'join must be an invite link (parley://join?…)')
        if (body.relay !== undefined || body.invite !== undefined) throw new ParleyError('ERR_INVALID_ARGUMENT', 'give join alone, or relay and invite')
        const link = parseInviteLink(body.join)
        body.relay = link.relay
        body.invite = link.invite
      }
      // check everything before changing anything
      if (body.name !== undefined) parseDisplayName(normalizeName(body.name))
      const ui = body.ui === undefined ? undefined : parseUiPrefs(body.ui)
      if (body.relay !== undefined) {
        if (body.relay !== null && typeof body.relay !== 'string') throw new ParleyError('ERR_INVALID_ARGUMENT', 'relay must be a multiaddr string or null')
        if (typeof body.relay === 'string' && body.relay !== '') relayAddrs(body.relay)
        if (body.invite !== undefined && body.invite !== null && (typeof body.invite !== 'string' || !INVITE_TOKEN.test(body.invite))) {
          throw new ParleyError('ERR_INVALID_ARGUMENT', 'invite must be the token your relay admin gave you')
        }
      }
      if (body.name !== undefined && body.name !== messenger.name) await messenger.setName(body.name as string)
      if (body.relay !== undefined) {
        await this.c.setRelay(body.relay === '' ? null : body.relay as string | null, (body.invite as string | null | undefined) ?? null)
      }
      const uiPrefs = ui === undefined ? await loadUiPrefs(store) : await saveUiPrefs(store, ui)
      this.applyStatus(uiPrefs.dnd)
      return { name: messenger.name, relay: this.c.relay.status(), ui: uiPrefs, changeWindows: this.changeWindows }
    })
    // the UI says when its user went idle (no input for a while) and came back
    this.route('PUT', /^\/presence$/, async (req) => {
      const body = await readJson(req)
      if (typeof body.away !== 'boolean') throw new ParleyError('ERR_INVALID_ARGUMENT', 'away must be true or false')
      this.away = body.away
      this.applyStatus((await loadUiPrefs(store)).dnd)
      return { status: messenger.presenceStatus }
    })
    this.route('GET', /^\/directory$/, async () => {
      if (this.c.relay.status().addr === null) throw new ParleyError('ERR_NOT_FOUND', 'no relay is set: the company directory comes from your office relay')
      try {
        return await this.c.relay.directory()
      } catch (err) {
        const code = remoteCode(err)
        if (code === 'ERR_NOT_ADMITTED') throw new ParleyError('ERR_NOT_ADMITTED', 'the relay has not admitted this device yet: redeem your invite first')
        if (code !== undefined) throw new ParleyError('ERR_PEER_UNREACHABLE', `the relay could not give the directory (${code})`, { cause: err })
        throw err
      }
    })
    // federation (issue 12): people of the other offices, and my own listing there (opt-in)
    const viaRelay = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      if (this.c.relay.status().addr === null) throw new ParleyError('ERR_NOT_FOUND', `no relay is set: ${what} comes from your office relay`)
      try {
        return await fn()
      } catch (err) {
        const code = remoteCode(err)
        if (code === 'ERR_NOT_ADMITTED') throw new ParleyError('ERR_NOT_ADMITTED', 'the relay has not admitted this device yet: redeem your invite first')
        if (code !== undefined) throw new ParleyError('ERR_PEER_UNREACHABLE', `the relay could not give ${what} (${code})`, { cause: err })
        throw err
      }
    }
    this.route('GET', /^\/offices$/, async (_req, _params, url) => {
      const q = (url.searchParams.get('q') ?? '').slice(0, 100)
      return await viaRelay('the other offices\' directory', async () => await this.c.relay.offices(q))
    })
    this.route('PUT', /^\/offices\/listing$/, async (req) => {
      const body = await readJson(req)
      if (typeof body.listed !== 'boolean') throw new ParleyError('ERR_INVALID_ARGUMENT', 'listed must be true or false')
      const department = typeof body.department === 'string' ? body.department.trim().slice(0, 200) : ''
      await viaRelay('the other offices\' directory', async () => {
        const listing = { listed: true, name: messenger.name, ...(department !== '' ? { department } : {}) }
        await this.c.relay.publish(body.listed === true ? listing : { listed: false })
      })
      return { listed: body.listed }
    })
    this.route('GET', /^\/status$/, async () => ({ peerId: messenger.peerId, outbox: await store.outboxSize(), connected: host.connectedPeers().length, connections: host.connectionCount(), connectionList: host.connections(), host: host.stats(), ...(this.c.storeHealth !== undefined ? { store: this.c.storeHealth() } : {}) }))
    this.route('GET', /^\/conversations$/, async () => {
      const peers = new Map((await messenger.listPeers()).map(p => [p.peerId, p]))
      return await Promise.all((await store.listConversations()).map(async (c): Promise<ConversationView> => {
        const newest = (await store.history(c.conv, { limit: 1 }))[0]
        const last = newest === undefined ? null : toMessageView(newest)
        if (isGroupConv(c.conv)) {
          const g = messenger.group(c.conv)
          const { lastText, lastHlc, unread } = c
          return { conv: c.conv, peer: c.conv, group: true, name: g?.name ?? null, lastText, lastHlc, unread, online: false, last }
        }
        const peer = conversationMembers(c.conv).find(p => p !== messenger.account) ?? messenger.account
        const p = peers.get(peer)
        const { lastText, lastHlc, unread } = c
        return { conv: c.conv, peer, group: false, name: p?.name ?? null, lastText, lastHlc, unread, online: p?.online ?? false, last }
      }))
    })
    this.route('GET', /^\/messages\/([^/]+)\/recipients$/, async (_req, [id]) => {
      const m = await store.getMessage(id ?? '')
      if (m === undefined || !m.outgoing) throw new ParleyError('ERR_NOT_FOUND', 'no message of yours with this id')
      // the devices it was sealed to when it was sent
      const recipients = [...new Set(m.envelope.keys.map(k => k.to))].filter(p => p !== messenger.peerId)
      // per device, with the account each belongs to (our own other devices get ours)
      const accountOf = (d: string): string => m.recipientAccounts?.[d] ?? messenger.accounts.accountOf(d) ?? d
      // federation: the other office a recipient is homed at, as our relay said (the route shown)
      const officeOf = (p: string): { office?: string } => { const o = this.c.relay?.officeOf(p); return o !== undefined ? { office: o } : {} }
      return (await recipientStates(store, m, recipients))
        .map(r => ({ ...r, account: accountOf(r.peer), ...officeOf(r.peer), ...this.waiting(r.peer, r.state) }))
    })
    this.route('GET', /^\/search$/, async (_req, _p, url) => {
      const text = url.searchParams.get('q') ?? ''
      if (text.trim() === '') throw new ParleyError('ERR_INVALID_ARGUMENT', 'q must be the text to look for')
      const limitRaw = url.searchParams.get('limit')
      const limit = limitRaw === null ? DEFAULT_SEARCH_LIMIT : Number(limitRaw)
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SEARCH_LIMIT) {
        throw new ParleyError('ERR_INVALID_ARGUMENT', `limit must be 1..${MAX_SEARCH_LIMIT}`)
      }
      const hits: SearchHit[] = []
      for (const c of await store.listConversations()) {
        const group = isGroupConv(c.conv)
        const peer = group ? c.conv : conversationMembers(c.conv).find(p => p !== messenger.account) ?? messenger.account
        for (const m of await store.history(c.conv, { search: text, limit })) {
          if (m.op === undefined && m.change === undefined) hits.push({ peer, group, message: toMessageView(m) })
        }
      }
      // newest first, across every conversation
      return hits.sort((a, b) => b.message.hlc.w - a.message.hlc.w || b.message.hlc.c - a.message.hlc.c).slice(0, limit)
    })
    this.route('GET', /^\/groups$/, async () => messenger.listGroups().map(groupView))
    this.route('POST', /^\/groups$/, async (req) => {
      const body = await readJson(req)
      if (typeof body.name !== 'string') throw new ParleyError('ERR_INVALID_ARGUMENT', 'name must be a string')
      if (!Array.isArray(body.members) || body.members.some(m => typeof m !== 'string')) {
        throw new ParleyError('ERR_INVALID_ARGUMENT', 'members must be a list of peer references')
      }
      const members = await Promise.all((body.members as string[]).map(resolvePeerRef))
      return groupView(await messenger.createGroup(body.name, members))
    })
    this.route('GET', /^\/groups\/([^/]+)$/, async (_req, [ref]) => {
      const g = messenger.group(await groupRef(ref ?? ''))
      if (g === null) throw new ParleyError('ERR_NOT_FOUND', 'group not known yet')
      return groupView(g)
    })
    this.route('PUT', /^\/groups\/([^/]+)$/, async (req, [ref]) => {
      const body = await readJson(req)
      if (typeof body.name !== 'string') throw new ParleyError('ERR_INVALID_ARGUMENT', 'name must be a string')
      return groupView(await messenger.renameGroup(await groupRef(ref ?? ''), body.name))
    })
    this.route('POST', /^\/groups\/([^/]+)\/members$/, async (req, [ref]) => {
      const body = await readJson(req)
      if (typeof body.peer !== 'string') throw new ParleyError('ERR_INVALID_ARGUMENT', 'peer must be a peer reference')
      return groupView(await messenger.addMember(await groupRef(ref ?? ''), await resolvePeerRef(body.peer)))
    })
    this.route('DELETE', /^\/groups\/([^/]+)\/members\/([^/]+)$/, async (_req, [ref, peer]) => {
      return groupView(await messenger.removeMember(await groupRef(ref ?? ''), await resolvePeerRef(peer ?? '')))
    })
    this.route('POST', /^\/groups\/([^/]+)\/leave$/, async (_req, [ref]) => groupView(await messenger.leaveGroup(await groupRef(ref ?? ''))))
    this.route('POST', /^\/messages$/, async (req, _p, url) => {
      const body = await readJson(req)
      if (typeof body.to !== 'string') throw new ParleyError('ERR_INVALID_ARGUMENT', 'to must be a peer ID or name')
      if (typeof body.text !== 'string') throw new ParleyError('ERR_INVALID_ARGUMENT', 'text must be a string')
      const wait = body.wait ?? url.searchParams.get('wait') ?? undefined
      if (wait !== undefined && wait !== 'sent' && wait !== 'delivered' && wait !== 'read') {
        throw new ParleyError('ERR_INVALID_ARGUMENT', 'wait must be "sent", "delivered" or "read"')
      }
      if (body.timeoutMs !== undefined && (typeof body.timeoutMs !== 'number' || !Number.isInteger(body.timeoutMs) || body.timeoutMs < 1)) {
        throw new ParleyError('ERR_INVALID_ARGUMENT', 'timeoutMs must be a positive integer')
      }
      const to = await resolveConvRef(body.to)
      const extras = await resolveExtras(body, {
        store, conv: messenger.convOf(to), me: messenger.peerId, windows: this.changeWindows, accountOf: authorAccount(messenger)
      })
      // validated everything first: once stored, the message is sent whatever happens next
      const msg = await messenger.sendMessage(to, body.text, extras)
      if (wait !== undefined) {
        const timeoutMs = typeof body.timeoutMs === 'number' ? Math.min(body.timeoutMs, MAX_WAIT_MS) : 30_000
        try {
          return toMessageView(await messenger.waitForState(msg.id, wait, { signal: AbortSignal.timeout(timeoutMs) }))
        } catch (err) {
          const e = toParleyError(err)
          if (e.code === 'ERR_ABORTED' || e.code === 'ERR_TIMEOUT') {
            throw new ParleyError('ERR_TIMEOUT', `message ${msg.id} is queued but was not ${wait} within ${timeoutMs} ms; it will be retried`)
          }
          throw e
        }
      }
      return toMessageView(msg)
    })
    this.route('GET', /^\/conversations\/([^/]+)\/messages$/, async (_req, [ref], url) => {
      const peer = await resolveConvRef(ref ?? '')
      const limitRaw = url.searchParams.get('limit')
      const limit = limitRaw === null ? undefined : Number(limitRaw)
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT)) {
        throw new ParleyError('ERR_INVALID_ARGUMENT', `limit must be 1..${MAX_HISTORY_LIMIT}`)
      }
      const search = url.searchParams.get('search') ?? undefined
      const beforeRaw = url.searchParams.get('before')
      const before = beforeRaw === null ? undefined : parseHistoryCursor(beforeRaw)
      if (before === null) throw new ParleyError('ERR_INVALID_ARGUMENT', 'before must be a message cursor <hlc.w>.<hlc.c>.<id>')
      const changes = url.searchParams.get('changes')
      if (changes !== null && changes !== '0' && changes !== '1') throw new ParleyError('ERR_INVALID_ARGUMENT', 'changes must be 0 or 1')
      const page = (q: { limit: number }): Promise<StoredMessage[]> => messenger.history(peer, { ...q, search, before })
      const shown = await shownHistory(page, limit ?? DEFAULT_HISTORY_LIMIT, changes === '1', authorAccount(messenger))
      // federation: what waits in our relay's queue for an office whose relay cannot be reached says so
      return shown.map(m => m.outgoing ? { ...m, ...this.waiting(peer, m.state) } : m)
    })
    this.route('POST', /^\/peers\/([^/]+)\/verify$/, async (req, [ref]) => {
      const body = await readJson(req)
      if (typeof body.verified !== 'boolean') throw new ParleyError('ERR_INVALID_ARGUMENT', 'verified must be true or false')
      return await messenger.setVerified(await resolvePeerRef(ref ?? ''), body.verified)
    })
    this.route('POST', /^\/conversations\/([^/]+)\/typing$/, async (_req, [ref]) => {
      const peer = await resolveConvRef(ref ?? '')
      return { sent: await messenger.sendTyping(peer).catch(() => false) }
    })
    this.route('POST', /^\/conversations\/([^/]+)\/seen$/, async (_req, [ref]) => {
      const peer = await resolveConvRef(ref ?? '')
      return { changed: await messenger.markSeen(peer) }
    })
    if (this.c.files !== undefined) this.routes.push(...fileRoutes(this.c.files.service, this.c.files.settings, resolveConvRef))
  }
}

/**
 * The newest `limit` messages as shown: edits and recalls folded into their messages. Changes take
 * places in a page of the store without being shown, so the page grows until `limit` are shown (or all are).
 * `withChanges`: the change messages whose target is older than the page come too (as they are, after the
 * shown ones), for a client that pages back with `before` and folds them into the older pages it loads.
 */
/** A message author's account, for edits and recalls (a revoked device is an account of its own: it changes nothing of ours). */
const authorAccount = (messenger: Messenger): AccountOfDevice => (d) => messenger.accounts.accountOf(d) ?? d

async function shownHistory (
  page: (q: { limit: number }) => Promise<StoredMessage[]>, limit: number, withChanges: boolean, accountOf: AccountOfDevice
): Promise<MessageView[]> {
  for (let want = limit; ; ) {
    const raw = (await page({ limit: want })).map(toMessageView)
    const shown = foldChanges(raw, accountOf)
    if (shown.length >= limit || raw.length < want || want >= MAX_HISTORY_LIMIT) {
      const page = shown.slice(-limit)
      if (!withChanges) return page
      const here = new Set(raw.map(m => m.id))
      return [...page, ...raw.filter(m => m.change !== undefined && !here.has(m.change.id))]
    }
    want = Math.min(MAX_HISTORY_LIMIT, want + (limit - shown.length))
  }
}

async function accountView (messenger: Messenger, store: MessageStore, host: PeerHost): Promise<AccountView> {
  const a = messenger.accounts
  const s = a.ownState()
  const pending = messenger.linking.pendingLink
  const seen = new Map((await store.listPeers()).map(r => [r.peerId, r.lastSeen ?? null]))
  return {
    account: a.account,
    device: messenger.peerId,
    accountKey: a.holdsAccountKey,
    since: a.since,
    migrated: a.migrated,
    devices: s.devices.map(d => ({
      peerId: d,
      label: s.labels[d] ?? null,
      self: d === messenger.peerId,
      accountKey: d === a.account,
      online: d === messenger.peerId || host.isOnline(d),
      lastSeen: d === messenger.peerId ? Date.now() : seen.get(d) ?? null
    })),
    revoked: s.revoked,
    home: s.home,
    pendingLink: pending === undefined ? null : { device: pending.device, expiresAt: pending.expiresAt }
  }
}

async function readJson (req: IncomingMessage): Promise<Record<string, unknown>> {
  return await readJsonBody(req, MAX_API_BODY_BYTES)
}
