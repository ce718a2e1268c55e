/**
 * The issue-9 property across nodes, not within one store (where the store
 * makes it hold by construction): every (conversation, author, seq) slot
 * names one message at every node that holds something there, and every
 * message has one number at every node (a move left no old copy behind).
 * Held messages (provisional numbers, outside the sequence) are left out.
 */
import assert from 'node:assert/strict'

interface Slotted { id: string, conv: string, author: string, seq: number, held?: boolean, text?: string }

/** `histories`: per node name, the messages it holds (of any conversations). */
export function sameSlots (histories: Record<string, readonly Slotted[]>): void {
  const bySlot = new Map<string, Map<string, string[]>>()
  const byId = new Map<string, Map<number, string[]>>()
  for (const [node, msgs] of Object.entries(histories)) {
    for (const m of msgs) {
      if (m.held === true) continue
      const slot = `${m.conv} ${m.author.slice(-6)} #${m.seq}`
      const ids = bySlot.get(slot) ?? new Map<string, string[]>()
      ids.set(m.id, [...(ids.get(m.id) ?? []), node])
      bySlot.set(slot, ids)
      const seqs = byId.get(m.id) ?? new Map<number, string[]>()
      seqs.set(m.seq, [...(seqs.get(m.seq) ?? []), node])
      byId.set(m.id, seqs)
    }
  }
  const twice = [...bySlot].filter(([, ids]) => ids.size > 1)
    .map(([slot, ids]) => `${slot}: ${[...ids].map(([id, nodes]) => `${id} at ${nodes.join('+')}`).join(' / ')}`)
  assert.deepEqual(twice, [], 'a (conversation, author, seq) slot names two messages across nodes')
  const split = [...byId].filter(([, seqs]) => seqs.size > 1)
    .map(([id, seqs]) => `${id}: ${[...seqs].map(([seq, nodes]) => `#${seq} at ${nodes.join('+')}`).join(' / ')}`)
  assert.deepEqual(split, [], 'a message has two numbers across nodes')
}
