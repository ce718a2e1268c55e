/**
 * The admin side's durable state: the company directory, when each peer was
 * last seen, and the policy set from the console. A single box keeps it in
 * its own LevelDB next to the relay's (`DATA/admin-db`, AdminStore); several
 * instances on PostgreSQL keep it in the shared database (SharedAdminState,
 * over the store's SharedAdminStore), so every instance answers the same.
 */
import { LevelBackedStore, jsonSublevel, type Db, type Sub } from '../../../core/store/group-commit.js'
import type { Person, PolicyOverrides } from '../../../core/protocol/admin-api.js'
import type { SharedAdminStore } from '../store/types.js'

export type { Person }

/** What the admin side keeps (AdminStore on LevelDB, SharedAdminState on the shared store). */
export interface AdminState {
  start(): Promise<void>
  stop(): Promise<void>
  listPeople(): Promise<Person[]>
  getPerson(id: string): Promise<Person | undefined>
  addPeople(people: Person[]): Promise<{ added: Person[], existing: string[] }>
  removePerson(id: string): Promise<Person | undefined>
  markSeen(peerId: string, at?: number): void
  seenAt(peerId: string): number | undefined
  flushSeen(): Promise<void>
  forgetSeen(peerId: string): Promise<void>
  getPolicy(): Promise<PolicyOverrides>
  putPolicy(p: PolicyOverrides): Promise<void>
  /** Another instance changed the policy: `fn` re-reads it (shared store only). */
  onPolicyChanged?(fn: () => void): () => void
}

export class AdminStore extends LevelBackedStore implements AdminState {
  private readonly people: Sub<Person>
  private readonly seen: Sub<number>
  /** last-seen times not yet written: a poll every few seconds per peer must not mean an fsync each */
  private readonly unsaved = new Map<string, number>()
  private readonly lastSeen = new Map<string, number>()

  constructor (db: Db) {
    super(db, 'relay admin')
    this.people = jsonSublevel(db, 'people')
    this.seen = jsonSublevel(db, 'seen')
  }

  protected override async opened (): Promise<void> {
    for await (const [k, v] of this.seen.iterator()) this.lastSeen.set(k, v)
  }

  override async stop (): Promise<void> {
    await this.flushSeen().catch(() => {})
    await super.stop()
  }

  async listPeople (): Promise<Person[]> { return await this.people.values().all() }
  async getPerson (id: string): Promise<Person | undefined> { return await this.gc.read(this.people, id) }

  /** Adds people in one durable write; ids already present are left as they are and returned in `existing`. */
  async addPeople (people: Person[]): Promise<{ added: Person[], existing: string[] }> {
    return await this.gc.write(async (tx) => {
      const added: Person[] = []
      const existing: string[] = []
      for (const p of people) {
        if (await tx.has(this.people, p.id)) { existing.push(p.id); continue }
        tx.put(this.people, p.id, p)
        added.push(p)
      }
      return { added, existing }
    })
  }

  async removePerson (id: string): Promise<Person | undefined> {
    return await this.gc.write(async (tx) => {
      const p = await tx.get(this.people, id)
      if (p !== undefined) tx.del(this.people, id)
      return p
    })
  }

  markSeen (peerId: string, at = Date.now()): void {
    this.lastSeen.set(peerId, at)
    this.unsaved.set(peerId, at)
  }

  seenAt (peerId: string): number | undefined { return this.lastSeen.get(peerId) }

  async flushSeen (): Promise<void> {
    if (this.unsaved.size === 0) return
    const batch = [...this.unsaved]
    this.unsaved.clear()
    await this.gc.write(async (tx) => { for (const [k, v] of batch) tx.put(this.seen, k, v) })
  }

  async forgetSeen (peerId: string): Promise<void> {
    this.lastSeen.delete(peerId)
    this.unsaved.delete(peerId)
    await this.gc.write(async (tx) => { tx.del(this.seen, peerId) })
  }

  async getPolicy (): Promise<PolicyOverrides> { return (await this.getMeta('policy') ?? {}) as PolicyOverrides }
  async putPolicy (p: PolicyOverrides): Promise<void> { await this.putMeta('policy', p) }
}

/**
 * The admin state in the store shared by several instances. Last-seen times
 * are written in batches (as AdminStore does) and read back with them, so
 * each instance sees when a peer was last seen on any instance, within a flush.
 */
export class SharedAdminState implements AdminState {
  private readonly unsaved = new Map<string, number>()
  private readonly lastSeen = new Map<string, number>()

  constructor (private readonly shared: SharedAdminStore) {}

  async start (): Promise<void> { await this.readSeen() }
  async stop (): Promise<void> { await this.flushSeen().catch(() => {}) }

  async listPeople (): Promise<Person[]> { return await this.shared.listPeople() }
  async getPerson (id: string): Promise<Person | undefined> { return await this.shared.getPerson(id) }
  async addPeople (people: Person[]): Promise<{ added: Person[], existing: string[] }> { return await this.shared.addPeople(people) }
  async removePerson (id: string): Promise<Person | undefined> { return await this.shared.removePerson(id) }

  markSeen (peerId: string, at = Date.now()): void {
    this.lastSeen.set(peerId, at)
    this.unsaved.set(peerId, at)
  }

  seenAt (peerId: string): number | undefined { return this.lastSeen.get(peerId) }

  async flushSeen (): Promise<void> {
    const batch = [...this.unsaved]
    this.unsaved.clear()
    try { await this.shared.putSeen(batch) } catch (err) { for (const [k, v] of batch) if (!this.unsaved.has(k)) this.unsaved.set(k, v); throw err }
    await this.readSeen()
  }

  private async readSeen (): Promise<void> {
    for (const [k, v] of await this.shared.listSeen()) if ((this.lastSeen.get(k) ?? 0) < v) this.lastSeen.set(k, v)
  }

  async forgetSeen (peerId: string): Promise<void> {
    this.lastSeen.delete(peerId)
    this.unsaved.delete(peerId)
    await this.shared.deleteSeen(peerId)
  }

  async getPolicy (): Promise<PolicyOverrides> { return await this.shared.getPolicy() }
  async putPolicy (p: PolicyOverrides): Promise<void> { await this.shared.putPolicy(p) }
  onPolicyChanged (fn: () => void): () => void { return this.shared.onPolicyChanged(fn) }
}
