/**
 * The admin side's own durable state, in its own LevelDB next to the relay's
 * (`DATA/admin-db`): the company directory, when each peer was last seen, and
 * the policy set from the console. The mailbox store knows nothing of it.
 */
import { LevelBackedStore, jsonSublevel, type Db, type Sub } from '../../../core/store/group-commit.js'
import type { Person, PolicyOverrides } from '../../../core/protocol/admin-api.js'

export type { Person }

export class AdminStore extends LevelBackedStore {
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
