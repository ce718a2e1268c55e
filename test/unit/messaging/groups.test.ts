import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { GroupBook, foldGroup, groupVerdict, mayStillBeMember, memberAt, opAllowed, type OpRecord } from '../../../node/src/messaging/groups.js'
import { PEER_A, PEER_B, PEER_C, PEER_D } from '../helpers/peer-ids.js'

const conv = 'g:AAAAAAAAAAAAAAAAAAAAAA'
const op = (id: string, author: string, w: number, o: OpRecord['op']): OpRecord => ({ id, author, hlc: { w, c: 0 }, op: o })
const create = op('c', PEER_A, 10, { type: 'create', name: 'Team', members: [PEER_B, PEER_C] })

describe('group fold', () => {
  it('is the same whatever order the ops arrive in', () => {
    const ops = [create, op('r', PEER_A, 20, { type: 'remove', member: PEER_C }), op('a', PEER_A, 30, { type: 'add', member: PEER_D }), op('n', PEER_A, 40, { type: 'rename', name: 'Crew' })]
    const a = foldGroup(conv, ops)
    const b = foldGroup(conv, [...ops].reverse())
    assert.deepEqual(a, b)
    assert.deepEqual(a?.members, [PEER_A, PEER_B, PEER_D])
    assert.equal(a?.name, 'Crew')
  })

  it('skips changes from anyone but the admin; anyone may leave', () => {
    const s = foldGroup(conv, [create, op('x', PEER_B, 20, { type: 'remove', member: PEER_C }), op('y', PEER_B, 21, { type: 'rename', name: 'Mine' }), op('l', PEER_C, 22, { type: 'leave' })])
    assert.deepEqual(s?.members, [PEER_A, PEER_B])
    assert.equal(s?.name, 'Team')
  })

  it('knows who was a member when, for any HLC', () => {
    const s = foldGroup(conv, [create, op('r', PEER_A, 20, { type: 'remove', member: PEER_C })])!
    assert.equal(memberAt(s, PEER_C, { w: 15, c: 0 }), true)
    assert.equal(memberAt(s, PEER_C, { w: 25, c: 0 }), false)
    assert.equal(memberAt(s, PEER_D, { w: 15, c: 0 }), false)
  })

  it('starts from an add snapshot for a member who cannot read the create op', () => {
    const s = foldGroup(conv, [op('a', PEER_A, 30, { type: 'add', member: PEER_D, snapshot: { name: 'Team', admin: PEER_A, members: [PEER_A, PEER_B] } })])
    assert.deepEqual(s?.members.sort(), [PEER_A, PEER_B, PEER_D].sort())
    assert.equal(s?.admin, PEER_A)
    // a snapshot signed by someone who is not the admin it names starts nothing
    assert.equal(foldGroup(conv, [op('a', PEER_B, 30, { type: 'add', member: PEER_D, snapshot: { name: 'Team', admin: PEER_A, members: [PEER_A] } })]), null)
  })

  it('opAllowed: only the admin changes, members leave, create only for an unknown group', () => {
    const s = foldGroup(conv, [create])!
    const at = { w: 50, c: 0 }
    assert.equal(opAllowed(s, PEER_A, { type: 'remove', member: PEER_B }, at), true)
    assert.equal(opAllowed(s, PEER_B, { type: 'remove', member: PEER_C }, at), false)
    assert.equal(opAllowed(s, PEER_C, { type: 'leave' }, at), true)
    assert.equal(opAllowed(s, PEER_D, { type: 'leave' }, at), false)
    assert.equal(opAllowed(s, PEER_A, { type: 'create', name: 'Again', members: [PEER_B] }, at), false)
    assert.equal(opAllowed(null, PEER_D, { type: 'create', name: 'New', members: [PEER_B] }, at), true)
    assert.equal(opAllowed(null, PEER_D, { type: 'rename', name: 'X' }, at), false)
  })

  it('GroupBook: ignores repeats, enforces membership and the admin role', () => {
    const book = new GroupBook(PEER_B)
    assert.ok(book.apply({ ...create, conv }) !== null)
    assert.equal(book.apply({ ...create, conv }), null)
    assert.equal(book.requireMember(conv).name, 'Team')
    assert.throws(() => book.requireAdmin(conv), { code: 'ERR_NOT_A_MEMBER' })
    assert.deepEqual(book.shared(PEER_C).map(g => g.conv), [conv])
    book.apply({ ...op('r', PEER_A, 20, { type: 'remove', member: PEER_B }), conv })
    assert.throws(() => book.requireMember(conv), { code: 'ERR_NOT_A_MEMBER' })
    assert.throws(() => book.requireMember('g:BBBBBBBBBBBBBBBBBBBBBB'), { code: 'ERR_NOT_FOUND' })
  })
})

describe('mayStillBeMember (may an op not seen yet change the verdict?)', () => {
  const create = op('c', PEER_A, 10, { type: 'create', name: 'Team', members: [PEER_B, PEER_C] })
  const s = foldGroup(conv, [create, op('r', PEER_A, 20, { type: 'remove', member: PEER_C }), op('a', PEER_A, 30, { type: 'add', member: PEER_C }), op('r2', PEER_A, 40, { type: 'remove', member: PEER_C })])!
  const at = (w: number) => ({ w, c: 0 })

  it('yes for an unknown group and for an author never seen as a member (an add may be on its way)', () => {
    assert.equal(mayStillBeMember(null, PEER_B, at(15)), true)
    assert.equal(mayStillBeMember(s, PEER_D, at(15)), true)
  })

  it('yes after the author\'s last membership ended (a re-add may be on its way)', () => {
    assert.equal(memberAt(s, PEER_C, at(45)), false)
    assert.equal(mayStillBeMember(s, PEER_C, at(45)), true)
  })

  it('no before the first span or in a gap between known spans: those are settled', () => {
    assert.equal(mayStillBeMember(s, PEER_C, at(5)), false)
    assert.equal(mayStillBeMember(s, PEER_C, at(25)), false)
    // a current member outside its span: only the time before it joined, settled too
    assert.equal(mayStillBeMember(s, PEER_B, at(5)), false)
  })
})

describe('groupVerdict (what a receiver answers a group envelope)', () => {
  // A creates with B and C; C removed at 20; D added at 30
  const s = foldGroup(conv, [create, op('r', PEER_A, 20, { type: 'remove', member: PEER_C }), op('a', PEER_A, 30, { type: 'add', member: PEER_D })])!
  const at = (w: number) => ({ w, c: 0 })
  const E = PEER_D.slice(0, -4) + 'EEEE'

  it('text: ok from a member at its HLC', () => {
    assert.equal(groupVerdict(s, PEER_B, at(25)), 'ok')
    assert.equal(groupVerdict(s, PEER_D, at(35)), 'ok')
  })

  it('text: later for an unknown group, an author never seen, or after the author\'s membership ended', () => {
    assert.equal(groupVerdict(null, PEER_B, at(25)), 'later')
    assert.equal(groupVerdict(s, E, at(35)), 'later')
    assert.equal(groupVerdict(s, PEER_C, at(25)), 'later', 'a re-add may be on its way')
  })

  it('text: never from before the author joined', () => {
    assert.equal(groupVerdict(s, PEER_D, at(15)), 'never')
  })

  it('ops: admin changes from anyone else, and a second create, are never valid', () => {
    assert.equal(groupVerdict(s, PEER_B, at(40), { type: 'remove', member: PEER_D }), 'never')
    assert.equal(groupVerdict(s, E, at(40), { type: 'rename', name: 'Mine' }), 'never')
    assert.equal(groupVerdict(s, PEER_A, at(40), { type: 'create', name: 'Again', members: [PEER_B] }), 'never')
    assert.equal(groupVerdict(null, PEER_B, at(40), { type: 'add', member: E }), 'never', 'an add without a snapshot cannot start a group')
  })

  it('ops: the admin\'s changes and a member\'s leave are ok; a leave by someone not seen yet is later', () => {
    assert.equal(groupVerdict(s, PEER_A, at(40), { type: 'rename', name: 'Crew' }), 'ok')
    assert.equal(groupVerdict(s, PEER_D, at(40), { type: 'leave' }), 'ok')
    assert.equal(groupVerdict(s, E, at(40), { type: 'leave' }), 'later')
    assert.equal(groupVerdict(null, PEER_A, at(40), { type: 'rename', name: 'Crew' }), 'later', 'the group is not known yet')
  })
})
