/**
 * The console's client of the admin API (`/api/v1`, same origin, session
 * cookie). Types come from the relay's admin service (type-only imports).
 */
import type {
  AuditEntry, InviteSheetRow, InviteView, PersonView, PolicyKey, PolicyOverrides, PolicyView, RelayStats as AdminStatsView, TrafficSample, UserView
} from '../../../core/protocol/admin-api.js'

import { ApiError, requestJson } from '../../shared/http.js'
import type { FedPeerView } from '../../../core/protocol/admin-api.js'

export type { FedPeerView }

export type { AdminStatsView, AuditEntry, InviteSheetRow, InviteView, PersonView, PolicyKey, PolicyOverrides, PolicyView, TrafficSample, UserView }

export { ApiError }

async function call<T> (method: string, path: string, body?: unknown): Promise<T> {
  return await requestJson<T>('/api/v1' + path, method, body, { credentials: 'same-origin' })
}

export const api = {
  session: async () => await call<{ who: string, password: boolean }>('GET', '/session'),
  login: async (creds: { token?: string, password?: string, name: string }) => await call<{ who: string }>('POST', '/login', creds),
  logout: async () => await call<unknown>('POST', '/logout', {}),
  stats: async () => await call<AdminStatsView>('GET', '/stats'),
  traffic: async () => await call<{ intervalMs: number, samples: TrafficSample[] }>('GET', '/traffic'),
  users: async () => await call<UserView[]>('GET', '/users'),
  removeUser: async (peerId: string) => await call<{ removed: boolean }>('DELETE', `/users/${encodeURIComponent(peerId)}`),
  invites: async () => await call<InviteView[]>('GET', '/invites'),
  createInvite: async (o: { uses: number, hours: number, note: string }) => await call<InviteView>('POST', '/invites', o),
  revokeInvite: async (id: string) => await call<InviteView>('POST', `/invites/${encodeURIComponent(id)}/revoke`, {}),
  policy: async () => await call<PolicyView>('GET', '/policy'),
  setPolicy: async (set: PolicyOverrides, reset: PolicyKey[] = []) => await call<PolicyView>('PUT', '/policy', { set, reset }),
  people: async () => await call<PersonView[]>('GET', '/directory'),
  importDirectory: async (csv: string) => await call<{ added: InviteSheetRow[], skipped: string[] }>('POST', '/directory/import', { csv }),
  removePerson: async (id: string) => await call<{ devices: string[] }>('DELETE', `/directory/${encodeURIComponent(id)}`),
  audit: async () => await call<AuditEntry[]>('GET', '/audit?limit=200'),
  // federation (issue 12)
  federation: async () => await call<FedPeerView[]>('GET', '/federation'),
  federationInvite: async () => await call<{ token: string, id: string, expiresAt: number }>('POST', '/federation/invite', {}),
  federationAdd: async (token: string) => await call<FedPeerView>('POST', '/federation/peers', { token }),
  federationRemove: async (peerId: string) => await call<{ dropped: number }>('DELETE', `/federation/peers/${encodeURIComponent(peerId)}`)
}
