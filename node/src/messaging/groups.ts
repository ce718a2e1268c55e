/**
 * Group state as a pure function of the group's signed operations: sort them
 * in display order (HLC, then id) and fold. Every member holding the same ops
 * computes the same members, name and history of membership, whatever order
 * the ops arrived in.
 */
import { compareHlc } from '../clock/hlc.js'
import type { GroupOp, Hlc } from '../protocol/wire.js'

export interface OpRecord { id: string, author: string, hlc: Hlc, op: GroupOp }

export interface GroupState {
  conv: string
  name: string
  admin: string
  members: string[]
  /** for each peer that was ever a member: the HLC spans in which it was one ([from, to), to absent = still) */
  spans: Record<string, Array<{ from: Hlc, to?: Hlc }>>
}

const order = (a: OpRecord, b: OpRecord): number => compareHlc(a.hlc, b.hlc) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** Null until the create op is known. Invalid ops (wrong author, unknown member) are skipped. */
export function foldGroup (conv: string, ops: OpRecord[]): GroupState | null {
  const sorted = [...ops].sort(order)
  const create = sorted.find(o => o.op.type === 'create')
  if (create === undefined || create.op.type !== 'create') return null
  const s: GroupState = { conv, name: create.op.name, admin: create.author, members: [], spans: {} }
  const join = (p: string, at: Hlc): void => {
    if (s.members.includes(p)) return
    s.members.push(p)
    ;(s.spans[p] ??= []).push({ from: at })
  }
  const part = (p: string, at: Hlc): void => {
    if (!s.members.includes(p)) return
    s.members = s.members.filter(m => m !== p)
    const span = s.spans[p]?.at(-1)
    if (span !== undefined) span.to = at
  }
  join(create.author, create.hlc)
  for (const m of create.op.members) join(m, create.hlc)
  for (const r of sorted) {
    if (r === create || order(r, create) < 0) continue
    const isAdmin = r.author === s.admin && s.members.includes(r.author)
    switch (r.op.type) {
      case 'add': if (isAdmin) join(r.op.member, r.hlc); break
      case 'remove': if (isAdmin && r.op.member !== s.admin) part(r.op.member, r.hlc); break
      case 'rename': if (isAdmin) s.name = r.op.name; break
      case 'leave': part(r.author, r.hlc); break
      case 'create': break
    }
  }
  return s
}

/** Was `peer` a member at `hlc`? (Authorship check for messages, independent of arrival order.) */
export function memberAt (s: GroupState, peer: string, hlc: Hlc): boolean {
  return (s.spans[peer] ?? []).some(span => compareHlc(span.from, hlc) <= 0 && (span.to === undefined || compareHlc(hlc, span.to) < 0))
}
