/**
 * Every admin action, whichever door it came in by (the console on the admin
 * listener, the CLI on the admin socket): invites, users, policy and the
 * directory. Each change is written to the audit log with who did it; a
 * failed change is audited too, with its error code.
 */
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { refusal } from './refusal.js'
import { PEER_ID } from '../../../core/protocol/validate.js'
import type { AuditAction, Invite, InviteState, InviteView, Person, PersonView, UserView } from '../../../core/protocol/admin-api.js'
import type { AdminState } from './admin-store.js'
import type { AuditEntry, AuditLog } from './audit-log.js'
import { departmentTree, parseDirectoryCsv, personId, type InviteSheetRow } from './directory.js'
import type { DepartmentNode } from '../../../core/protocol/directory.js'
import { inviteLink } from '../../../core/protocol/invite-link.js'
import type { PolicyKey, PolicyLayers, PolicyOverrides, PolicyView } from './policy.js'
import { POLICY_KEYS, parsePolicyOverrides } from './policy.js'
import type { RelayAdmin } from '../types.js'

export type { InviteState, InviteView, PersonView, UserView }

/** the short id an invite is shown and revoked by: its token's first characters */
const inviteId = (token: string): string => token.slice(0, 8)
/** default uses of a directory invite: a person may bring a laptop and a desktop. @default 3 */
export const DEFAULT_DIRECTORY_INVITE_USES = 3
/** @default 30 days: bulk onboarding takes a while */
export const DEFAULT_DIRECTORY_INVITE_TTL_MS = 30 * 24 * 3600_000

export interface AdminServiceComponents {
  relay: RelayAdmin
  store: AdminState
  audit: AuditLog
  policy: PolicyLayers
}

export class AdminService {
  constructor (private readonly c: AdminServiceComponents) {}

  /** Runs one change and audits it (done or failed); `after` adds what is known only once it is done. */
  private async audited<T> (who: string, action: AuditAction, target: string | undefined, details: Record<string, unknown>,
    fn: () => Promise<T>, after?: (r: T) => { target?: string, details?: Record<string, unknown> }): Promise<T> {
    const base = { who, action, ...(target !== undefined ? { target } : {}) }
    let result: T
    try {
      result = await fn()
    } catch (err) {
      const e = toParleyError(err)
      await this.c.audit.append({ ...base, details: { ...details, code: e.code }, ok: false })
      throw e
    }
    const more = after?.(result)
    await this.c.audit.append({ ...base, ...(more?.target !== undefined ? { target: more.target } : {}), details: { ...details, ...more?.details }, ok: true })
    return result
  }

  /** A federation change (pair, unpair, per-relay policy), audited like every other change. */
  async federationChange<T> (who: string, action: 'invite' | 'add' | 'remove' | 'policy',
    target: string | undefined, details: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
    return await this.audited(who, `federation.${action}`, target, details, fn)
  }

  // ---- invites ----

  /** every instance of the relay, as last read (instancesAddress); this instance alone before that */
  private instances?: string

  relayAddress (): string {
    if (this.instances !== undefined && this.instances !== '') return this.instances
    const addrs = this.c.relay.addresses()
    return addrs.find(a => !a.includes('/127.0.0.1/') && !a.includes('/::1/')) ?? addrs[0] ?? ''
  }

  /**
   * Reads the instances again (several relay processes on one database): invite
   * links and sheets name every one, comma-separated, so a user who joins
   * with one can fail over to the others.
   */
  private async readInstances (): Promise<void> {
    try {
      const all = await this.c.relay.instanceAddresses?.()
      if (all !== undefined) this.instances = all.join(',')
    } catch { /* the store is away: this instance's own address */ }
  }

  private view (i: Invite, people?: Map<string, Person>): InviteView {
    const now = Date.now()
    const state: InviteState = i.revokedAt !== undefined ? 'revoked' : i.uses >= i.maxUses ? 'used' : i.expiresAt < now ? 'expired' : 'active'
    const person = people?.get(i.token)
    return { ...i, id: inviteId(i.token), state, link: inviteLink(this.relayAddress(), i.token), ...(person !== undefined ? { person: person.id } : {}) }
  }

  async createInvite (who: string, opts: { uses?: unknown, hours?: unknown, note?: unknown }): Promise<InviteView> {
    await this.readInstances()
    const uses = opts.uses ?? 1
    const hours = opts.hours ?? 168
    const note = opts.note ?? ''
    return await this.audited(who, 'invite.create', undefined, { uses, hours, note }, async () => {
      if (typeof uses !== 'number' || !Number.isInteger(uses) || uses < 1 || uses > 10_000) {
        throw refusal('uses must be a whole number from 1 to 10000', { reason: 'inviteUses', min: 1, max: 10_000 })
      }
      if (typeof hours !== 'number' || !Number.isFinite(hours) || hours <= 0 || hours > 24 * 3650) {
        throw refusal('hours must be a positive number (at most 10 years)', { reason: 'inviteHours', maxHours: 24 * 3650 })
      }
      if (typeof note !== 'string' || note.length > 200) throw refusal('the note must be text of at most 200 characters', { reason: 'inviteNote', max: 200 })
      const [invite] = await this.c.relay.mailbox.createInvites([{ maxUses: uses, ttlMs: hours * 3600_000, note }])
      return this.view(invite as Invite)
    }, v => ({ target: v.id }))
  }

  async listInvites (): Promise<InviteView[]> {
    await this.readInstances()
    const byInvite = new Map((await this.c.store.listPeople()).map(p => [p.invite, p]))
    return (await this.c.relay.mailbox.listInvites()).map(i => this.view(i, byInvite)).sort((a, b) => b.createdAt - a.createdAt)
  }

  /** `ref`: the token or its short id (unique prefix of at least 6 characters). */
  private async findInvite (ref: string): Promise<Invite> {
    if (typeof ref !== 'string' || ref.length < 6) throw refusal('name the invite by its id (at least 6 characters)', { reason: 'inviteRef', min: 6 })
    const hits = (await this.c.relay.mailbox.listInvites()).filter(i => i.token.startsWith(ref))
    if (hits.length === 0) throw refusal(`no invite ${ref}`, { reason: 'inviteUnknown' }, 'ERR_NOT_FOUND')
    if (hits.length > 1) throw refusal(`${ref} names ${hits.length} invites: give more characters`, { reason: 'inviteAmbiguous', count: hits.length })
    return hits[0] as Invite
  }

  async revokeInvite (who: string, ref: string): Promise<InviteView> {
    return await this.audited(who, 'invite.revoke', String(ref).slice(0, 8), {}, async () => {
      const invite = await this.findInvite(ref)
      const revoked = await this.c.relay.mailbox.revokeInvite(invite.token)
      if (revoked === undefined) throw refusal(`no invite ${ref}`, { reason: 'inviteUnknown' }, 'ERR_NOT_FOUND')
      return this.view(revoked)
    })
  }

  // ---- users (devices: one peer ID each, until accounts exist) ----

  async listUsers (): Promise<UserView[]> {
    const usage = await this.c.relay.mailbox.usageByRecipient()
    const people = await this.c.store.listPeople()
    const personOf = new Map<string, Person>()
    const invites = new Map((await this.c.relay.mailbox.listInvites()).map(i => [i.token, i]))
    for (const p of people) for (const r of invites.get(p.invite)?.redeemedBy ?? []) personOf.set(r.peerId, p)
    const files = this.c.relay.fileUsage()
    const fileQuota = this.c.policy.effective().fileQuotaBytes
    return (await this.c.relay.mailbox.listUsers()).map((u): UserView => {
      const p = personOf.get(u.peerId)
      const use = usage.get(u.peerId)
      return {
        peerId: u.peerId,
        admittedAt: u.admittedAt,
        via: u.via,
        ...(u.invite !== undefined ? { invite: u.invite } : {}),
        ...(p !== undefined ? { person: { id: p.id, name: p.name } } : {}),
        lastSeen: this.c.store.seenAt(u.peerId) ?? null,
        online: this.c.relay.isOnline(u.peerId),
        mailbox: { messages: use?.count ?? 0, bytes: use?.bytes ?? 0 },
        files: { files: files.get(u.peerId)?.files ?? 0, bytes: files.get(u.peerId)?.bytes ?? 0, quotaBytes: fileQuota }
      }
    }).sort((a, b) => b.admittedAt - a.admittedAt)
  }

  async allowUser (who: string, peerId: unknown): Promise<UserView | undefined> {
    await this.audited(who, 'user.allow', String(peerId).slice(0, 60), {}, async () => await this.c.relay.mailbox.admit(checkPeerId(peerId), 'allow-list'))
    return (await this.listUsers()).find(u => u.peerId === peerId)
  }

  async removeUser (who: string, peerId: string): Promise<{ removed: boolean }> {
    return await this.audited(who, 'user.remove', peerId.slice(0, 60), {}, async () => ({ removed: await this.c.relay.removeUser(checkPeerId(peerId)) }))
  }

  // ---- policy ----

  policy (): PolicyView { return this.c.policy.view() }

  async setPolicy (who: string, body: { set?: unknown, reset?: unknown }): Promise<PolicyView> {
    return await this.audited(who, 'policy.set', undefined, { set: body.set, reset: body.reset }, async () => {
      const changes: PolicyOverrides = parsePolicyOverrides(body.set ?? {}, 'set')
      const reset = body.reset ?? []
      if (!Array.isArray(reset) || reset.some(k => !(POLICY_KEYS as readonly unknown[]).includes(k))) {
        throw refusal(`reset must list policy keys (${POLICY_KEYS.join(', ')})`, { reason: 'policyReset' })
      }
      // stored first: a policy the console showed as applied survives a restart
      const next = { ...this.c.policy.stored, ...changes }
      for (const k of reset as PolicyKey[]) delete next[k]
      await this.c.store.putPolicy(next)
      this.c.policy.update(changes, reset as PolicyKey[])
      return this.c.policy.view()
    })
  }

  // ---- directory ----

  private async devicesOf (people: Person[]): Promise<Map<string, string[]>> {
    const invites = new Map((await this.c.relay.mailbox.listInvites()).map(i => [i.token, i]))
    return new Map(people.map(p => [p.id, (invites.get(p.invite)?.redeemedBy ?? []).map(r => r.peerId).filter(id => this.c.relay.mailbox.isAdmitted(id))]))
  }

  async listPeople (): Promise<PersonView[]> {
    const people = await this.c.store.listPeople()
    const devices = await this.devicesOf(people)
    const invites = new Map((await this.listInvites()).map(i => [i.token, i.state]))
    return people.map(p => ({ ...p, devices: devices.get(p.id) ?? [], inviteState: invites.get(p.invite) ?? 'missing' }))
  }

  /** The tree admitted nodes browse: names, departments, e-mail, staff numbers and device peer IDs. */
  async directoryTree (): Promise<DepartmentNode> {
    const people = await this.c.store.listPeople()
    const devices = await this.devicesOf(people)
    return departmentTree(people.map(p => ({ ...p, devices: devices.get(p.id) ?? [] })))
  }

  /** Imports a CSV: one invite per new person, all in one write each; people already there are skipped. */
  async importDirectory (who: string, csv: string, opts: { uses?: unknown, hours?: unknown } = {}): Promise<{ added: InviteSheetRow[], skipped: string[] }> {
    await this.readInstances()
    const uses = opts.uses ?? DEFAULT_DIRECTORY_INVITE_USES
    const hours = opts.hours ?? DEFAULT_DIRECTORY_INVITE_TTL_MS / 3600_000
    return await this.audited(who, 'directory.import', undefined, { uses, hours }, async () => {
      if (typeof uses !== 'number' || !Number.isInteger(uses) || uses < 1 || uses > 100) {
        throw refusal('uses per person must be 1..100', { reason: 'inviteUses', min: 1, max: 100 })
      }
      if (typeof hours !== 'number' || !Number.isFinite(hours) || hours <= 0 || hours > 24 * 3650) {
        throw refusal('hours must be a positive number', { reason: 'inviteHours', maxHours: 24 * 3650 })
      }
      if (typeof csv !== 'string') throw refusal('csv must be the text of the CSV file', { reason: 'csvText' })
      const rows = parseDirectoryCsv(csv)
      const known = new Set((await this.c.store.listPeople()).map(p => p.id))
      const fresh = rows.filter(r => !known.has(personId(r)))
      const skipped = rows.filter(r => known.has(personId(r))).map(r => personId(r))
      const ttlMs = hours * 3600_000
      const invites = await this.c.relay.mailbox.createInvites(fresh.map(r => ({ maxUses: uses, ttlMs, note: `directory: ${r.name}`.slice(0, 200) })))
      const now = Date.now()
      const people: Person[] = fresh.map((r, i) => ({ id: personId(r), ...r, invite: (invites[i] as Invite).token, addedAt: now }))
      await this.c.store.addPeople(people)
      return { added: people.map((p, i) => this.sheetRow(p, invites[i] as Invite)), skipped }
    }, r => ({ details: { added: r.added.length, skipped: r.skipped.length } }))
  }

  private sheetRow (p: Person, i: Invite): InviteSheetRow {
    const link = inviteLink(this.relayAddress(), i.token)
    return { id: p.id, name: p.name, department: p.department, email: p.email, staffNo: p.staffNo, token: i.token, link, expiresAt: i.expiresAt }
  }

  /** Sheet rows of the people whose invite can still be redeemed, by department and name; or of `ids`, in that order. */
  async sheetRows (ids?: string[]): Promise<InviteSheetRow[]> {
    await this.readInstances()
    const invites = new Map((await this.c.relay.mailbox.listInvites()).map(i => [i.token, i]))
    const people = await this.c.store.listPeople()
    let chosen: Person[]
    if (ids !== undefined) {
      const byId = new Map(people.map(p => [p.id, p]))
      chosen = ids.flatMap(id => byId.get(id) ?? [])
    } else {
      const collator = new Intl.Collator('zh-CN')
      chosen = people.filter(p => { const i = invites.get(p.invite); return i !== undefined && this.view(i).state === 'active' })
        .sort((a, b) => collator.compare(a.department.join('/'), b.department.join('/')) || collator.compare(a.name, b.name))
    }
    return chosen.flatMap(p => { const i = invites.get(p.invite); return i === undefined ? [] : [this.sheetRow(p, i)] })
  }

  /** Removes a person: their invite is revoked and every device they admitted with it loses admission. */
  async removePerson (who: string, id: string): Promise<{ removed: boolean, devices: string[] }> {
    return await this.audited(who, 'person.remove', id, {}, async () => {
      const p = await this.c.store.getPerson(id)
      if (p === undefined) throw refusal(`no person ${id} in the directory`, { reason: 'personUnknown' }, 'ERR_NOT_FOUND')
      // revoke first: no device can join with the invite while the others are being removed
      const invite = await this.c.relay.mailbox.revokeInvite(p.invite)
      const devices = (invite?.redeemedBy ?? []).map(r => r.peerId)
      for (const d of devices) await this.c.relay.removeUser(d)
      await this.c.store.removePerson(id)
      return { removed: true, devices }
    }, r => ({ details: { devices: r.devices } }))
  }

  async recordPassword (who: string, set: () => Promise<void>, removed: boolean): Promise<void> {
    await this.audited(who, removed ? 'password.remove' : 'password.set', undefined, {}, set)
  }

  /** Logins are audited too; a failed one names no one (the name typed is kept as given). */
  async recordLogin (who: string, ok: boolean, how: 'token' | 'password', code?: string): Promise<void> {
    await this.c.audit.append({ who, action: 'login', details: { how, ...(code !== undefined ? { code } : {}) }, ok })
  }

  async auditLog (limit: number): Promise<AuditEntry[]> { return await this.c.audit.recent(limit) }
}

function checkPeerId (peerId: unknown): string {
  if (typeof peerId !== 'string' || !PEER_ID.test(peerId)) throw refusal('peerId must be a peer ID (12D3KooW…)', { reason: 'peerId' })
  return peerId
}
