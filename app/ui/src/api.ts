/**
 * The local API client: typed REST calls and the `/v1/events` WebSocket. The
 * types come from the node's API contract (type-only imports: nothing of the
 * node is bundled but its rules).
 */
import type {
  AccountView, ApiEvent, ConversationView, GroupView, IdentityView, MessageChange, MessageView, PeerView, RecipientView, SearchHit,
  SettingsView, StoreHealthView, UiPrefs
} from '../../../node/src/api/contract.js'
import type { DepartmentNode } from '../../../core/protocol/directory.js'
import type { OfficePerson } from '../../../core/protocol/relay-rpc.js'

import { ApiError, requestJson } from '../../shared/http.js'

/** An error answered by the node (`{ code, message }`), or ERR_UNREACHABLE when it did not answer at all. */
export { ApiError }

/** `before`: a cursor (`historyCursor`), for the page older than that message; `changes`: also the edits and recalls of older messages */
export interface HistoryOptions { limit?: number, search?: string, before?: string, changes?: boolean }

export class ApiClient {
  constructor (private readonly token: string, private readonly base = '/v1') {}

  private async call<T> (method: string, path: string, body?: unknown): Promise<T> {
    return await requestJson<T>(this.base + path, method, body, { headers: { authorization: `Bearer ${this.token}` } })
  }

  // accounts and devices (issue 11)
  account = async (): Promise<AccountView> => await this.call('GET', '/account')
  linkCode = async (): Promise<{ code: string, expiresAt: number, qr: string }> => await this.call('POST', '/link')
  joinAccount = async (code: string, label?: string): Promise<AccountView> =>
    await this.call('POST', '/link/join', { code, ...(label !== undefined ? { label } : {}) })
  revokeDevice = async (peerId: string): Promise<AccountView> => await this.call('POST', `/devices/${encodeURIComponent(peerId)}/revoke`)

  identity = async (): Promise<IdentityView> => await this.call('GET', '/identity')
  peers = async (): Promise<PeerView[]> => await this.call('GET', '/peers')
  conversations = async (): Promise<ConversationView[]> => await this.call('GET', '/conversations')
  groups = async (): Promise<GroupView[]> => await this.call('GET', '/groups')
  settings = async (): Promise<SettingsView> => await this.call('GET', '/settings')
  /** (only what the UI reads of it) what opening the message store found at this start */
  status = async (): Promise<{ store?: StoreHealthView }> => await this.call('GET', '/status')
  saveSettings = async (body: { name?: string, relay?: string | null, invite?: string | null, join?: string, ui?: Partial<UiPrefs> }): Promise<SettingsView> =>
    await this.call('PUT', '/settings', body)

  /** `reply`: the id of the message answered; `change`: an edit (text replaces it) or recall (text '') of your own message */
  send = async (to: string, text: string, extra: { reply?: string, change?: MessageChange } = {}): Promise<MessageView> =>
    await this.call('POST', '/messages', { to, text, ...extra })
  history = async (conv: string, o: HistoryOptions = {}): Promise<MessageView[]> => {
    const q = new URLSearchParams()
    if (o.limit !== undefined) q.set('limit', String(o.limit))
    if (o.search !== undefined && o.search !== '') q.set('search', o.search)
    if (o.before !== undefined) q.set('before', o.before)
    if (o.changes === true) q.set('changes', '1')
    return await this.call('GET', `/conversations/${encodeURIComponent(conv)}/messages?${q.toString()}`)
  }

  recipients = async (id: string): Promise<RecipientView[]> => await this.call('GET', `/messages/${encodeURIComponent(id)}/recipients`)

  /** the user is idle (away) or back: peers see it beside the name */
  setAway = async (away: boolean): Promise<{ status: string }> => await this.call('PUT', '/presence', { away })
  /** the company directory from the office relay */
  directory = async (): Promise<DepartmentNode> => await this.call('GET', '/directory')
  /** people of the other offices (paired relays) who chose to be listed (federation) */
  offices = async (q = ''): Promise<OfficePerson[]> => await this.call('GET', `/offices?${new URLSearchParams({ q }).toString()}`)
  /** list me (or not) in the other offices' directories */
  publishListing = async (listed: boolean, department = ''): Promise<{ listed: boolean }> => await this.call('PUT', '/offices/listing', { listed, department })

  search = async (text: string, limit = 50): Promise<SearchHit[]> =>
    await this.call('GET', `/search?${new URLSearchParams({ q: text, limit: String(limit) }).toString()}`)

  markSeen = async (conv: string): Promise<{ changed: number }> => await this.call('POST', `/conversations/${encodeURIComponent(conv)}/seen`)
  typing = async (conv: string): Promise<{ sent: boolean }> => await this.call('POST', `/conversations/${encodeURIComponent(conv)}/typing`)
  verify = async (peer: string, verified: boolean): Promise<PeerView> => await this.call('POST', `/peers/${peer}/verify`, { verified })

  createGroup = async (name: string, members: string[]): Promise<GroupView> => await this.call('POST', '/groups', { name, members })
  renameGroup = async (id: string, name: string): Promise<GroupView> => await this.call('PUT', `/groups/${encodeURIComponent(id)}`, { name })
  addMember = async (id: string, peer: string): Promise<GroupView> => await this.call('POST', `/groups/${encodeURIComponent(id)}/members`, { peer })
  removeMember = async (id: string, peer: string): Promise<GroupView> => await this.call('DELETE', `/groups/${encodeURIComponent(id)}/members/${peer}`)
  leaveGroup = async (id: string): Promise<GroupView> => await this.call('POST', `/groups/${encodeURIComponent(id)}/leave`)

  /**
   * Keeps a WebSocket to `/v1/events` open (reconnecting every `retryMs`) and hands each event to `onEvent`.
   * `onLink(true)` after each (re)connection, `onLink(false)` when it broke. Returns a function that stops it.
   */
  events (onEvent: (e: ApiEvent) => void, onLink: (up: boolean, reconnected: boolean) => void, retryMs = 1500): () => void {
    let ws: WebSocket | null = null
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    let opened = false
    const open = (): void => {
      ws = new WebSocket(`ws://${location.host}${this.base}/events?token=${encodeURIComponent(this.token)}`)
      ws.onmessage = (m) => {
        let e: ApiEvent
        try { e = JSON.parse(String(m.data)) as ApiEvent } catch { return }
        onEvent(e)
      }
      ws.onopen = () => { onLink(true, opened); opened = true }
      ws.onclose = () => {
        if (stopped) return
        onLink(false, opened)
        timer = setTimeout(open, retryMs)
      }
    }
    open()
    return () => { stopped = true; clearTimeout(timer); ws?.close() }
  }
}
