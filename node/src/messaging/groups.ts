/**
 * Group state as a pure function of the group's signed operations: sort them
 * in display order (HLC, then id) and fold. Every member holding the same ops
 * computes the same members, name and history of membership, whatever order
 * the ops arrived in.
 */
import { compareHlc } from '../clock/hlc.js'
import { ParleyError } from '../../../core/errors.js'
import type { GroupOp, Hlc } from '../../../core/protocol/envelope.js'

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

/**
 * Null until the group's start is known: its create op, or (for a member added
 * later, who cannot read the create op) the admin's add op with a snapshot.
 * Invalid ops (wrong author, not a member) are skipped.
 */
export function foldGroup (conv: string, ops: OpRecord[]): GroupState | null {
  const sorted = [...ops].sort(order)
  const create = sorted.find(o => o.op.type === 'create') ??
    sorted.find(o => o.op.type === 'add' && o.op.snapshot !== undefined && o.op.snapshot.admin === o.author)
  if (create === undefined) return null
  const start = create.op.type === 'create'
    ? { name: create.op.name, members: create.op.members }
    : create.op.type === 'add' && create.op.snapshot !== undefined
      ? { name: create.op.snapshot.name, members: [...create.op.snapshot.members, create.op.member] }
      : null
  if (start === null) return null
  const s: GroupState = { conv, name: start.name, admin: create.author, members: [], spans: {} }
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
  for (const m of start.members) join(m, create.hlc)
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

/**
 * May `author` make `op` at `hlc` in this group? Receivers refuse ops that fail
 * this, so nobody can write membership lines into someone else's group.
 */
export function opAllowed (s: GroupState | null, author: string, op: OpRecord['op'], hlc: Hlc): boolean {
  if (s === null) return op.type === 'create' || (op.type === 'add' && op.snapshot?.admin === author)
  if (op.type === 'create') return false
  if (op.type === 'leave') return memberAt(s, author, hlc)
  return author === s.admin && memberAt(s, author, hlc)
}

/** Was `peer` a member at `hlc`? (Authorship check for messages, independent of arrival order.) */
export function memberAt (s: GroupState, peer: string, hlc: Hlc): boolean {
  return (s.spans[peer] ?? []).some(span => compareHlc(span.from, hlc) <= 0 && (span.to === undefined || compareHlc(hlc, span.to) < 0))
}

/**
 * Could an op this device has not seen yet make `author` a member at `hlc`?
 * Yes if the group is unknown, the author was never seen as a member (an add
 * on its way), or `hlc` is after the author's last membership ended (a re-add
 * on its way). No if `hlc` falls before or between spans this device knows.
 */
export function mayStillBeMember (g: GroupState | null, author: string, hlc: Hlc): boolean {
  if (g === null) return true
  const spans = g.spans[author] ?? []
  const last = spans.at(-1)
  if (last === undefined) return true
  return last.to !== undefined && compareHlc(hlc, last.to) >= 0
}

/**
 * The receiver's verdict on a group envelope by `author` at `hlc`: `ok`;
 * `later` when an op this device has not seen yet could still make it valid
 * (answered ERR_UNKNOWN_GROUP, retried by the sender); `never` when no op can
 * (answered ERR_NOT_A_MEMBER, a permanent refusal). `op` is the envelope's
 * group op, absent for text.
 */
export function groupVerdict (s: GroupState | null, author: string, hlc: Hlc, op?: GroupOp): 'ok' | 'later' | 'never' {
  if (op === undefined) {
    if (s !== null && memberAt(s, author, hlc)) return 'ok'
  } else {
    if (opAllowed(s, author, op, hlc)) return 'ok'
    // never valid, whatever arrives later: a second create, a group start that is not one,
    // a change only the admin may make from someone else (the admin is the creator, for good)
    if (op.type === 'create' || (s === null && op.type === 'add') || (s !== null && op.type !== 'leave' && author !== s.admin)) return 'never'
  }
  return mayStillBeMember(s, author, hlc) ? 'later' : 'never'
}

/**
 * The groups this device knows: their ops and folded states. Pure
 * bookkeeping, no I/O; the messenger feeds it every stored op.
 */
export class GroupBook {
  private readonly ops = new Map<string, OpRecord[]>()
  private readonly states = new Map<string, GroupState>()

  /** `self`: our account (a getter: it changes once, when this device joins an account) */
  constructor (private readonly selfOf: string | (() => string)) {}

  private get self (): string { return typeof this.selfOf === 'string' ? this.selfOf : this.selfOf() }

  get (conv: string): GroupState | null { return this.states.get(conv) ?? null }
  list (): GroupState[] { return [...this.states.values()] }

  /** Folds in one more op; returns the new state, or null when nothing changed or the group's start is unknown. */
  apply (r: OpRecord & { conv: string }): GroupState | null {
    const ops = this.ops.get(r.conv) ?? []
    if (ops.some(o => o.id === r.id)) return null
    ops.push({ id: r.id, author: r.author, hlc: r.hlc, op: r.op })
    this.ops.set(r.conv, ops)
    const state = foldGroup(r.conv, ops)
    if (state === null) return null
    this.states.set(r.conv, state)
    return state
  }

  requireMember (conv: string): GroupState {
    const g = this.states.get(conv)
    if (g === undefined) throw new ParleyError('ERR_NOT_FOUND', `no group ${conv}`)
    if (!g.members.includes(this.self)) throw new ParleyError('ERR_NOT_A_MEMBER', `you are no longer a member of "${g.name}"`)
    return g
  }

  requireAdmin (conv: string): GroupState {
    const g = this.requireMember(conv)
    if (g.admin !== this.self) throw new ParleyError('ERR_NOT_A_MEMBER', 'only the group\'s creator changes its members or name')
    return g
  }

  /** Groups in which both we and `peer` are members. */
  shared (peer: string): GroupState[] {
    return this.list().filter(g => g.members.includes(peer) && g.members.includes(this.self))
  }

  isMember (conv: string, peer: string): boolean {
    return this.states.get(conv)?.members.includes(peer) === true
  }
}
