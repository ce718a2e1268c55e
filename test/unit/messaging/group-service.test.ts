/**
 * The group service (node/src/messaging/group-service.ts) with a recording
 * send path: what each command sends to whom, what it refuses, and the
 * syncs an op asks for.
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { GroupService } from '../../../node/src/messaging/group-service.js'
import type { MessengerEvents } from '../../../node/src/messaging/types.js'
import { LevelStore } from '../../../node/src/store/level-store.js'
import type { StoredMessage } from '../../../node/src/store/types.js'
import type { Body, EnvelopeKind } from '../../../core/protocol/envelope.js'
import { ParleyError } from '../../../core/errors.js'
import { silentLogger } from '../../../core/util/log.js'
import { EventRecorder } from '../helpers/events.js'
import { storedMessage } from '../helpers/store.js'
import { PEER_A, PEER_B, PEER_C, PEER_D } from '../helpers/peer-ids.js'

const REVOKED = PEER_D

describe('GroupService', () => {
  let store: LevelStore
  let events: EventRecorder<MessengerEvents>
  let sent: Array<{ conv: string, recipients: string[], body: Body, kind: EnvelopeKind }>
  let synced: string[]
  let groups: GroupService
  let seq = 0
  const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c

  beforeEach(async () => {
    store = new LevelStore(new MemoryLevel())
    await store.start()
    events = new EventRecorder()
    sent = []
    synced = []
    groups = new GroupService({
      store,
      log: silentLogger,
      events,
      self: PEER_A,
      selfName: () => 'Alice',
      // the Messenger's send path, reduced to what the service relies on: the op is folded in
      send: async (conv, recipients, body, kind): Promise<StoredMessage> => {
        sent.push({ conv, recipients, body, kind })
        const m = { ...storedMessage({ conv, author: PEER_A, seq: ++seq, outgoing: true, text: body.text }), ...(body.op !== undefined ? { op: body.op } : {}) }
        groups.applyOp(m)
        return m
      },
      syncWith: (peer) => { synced.push(peer) },
      isConnected: (peer) => peer === PEER_B
    })
  })
  afterEach(async () => { await store.stop() })

  it('create sends the op to the other members and asks connected members for a sync', async () => {
    const g = await groups.create('team', [PEER_B, PEER_C, PEER_A])
    assert.deepEqual(sent.map(s => [s.kind, s.recipients, s.body.text]), [['groupOp', [PEER_B, PEER_C], 'Alice created "team"']])
    assert.deepEqual(g.members.sort(), [PEER_A, PEER_B, PEER_C].sort())
    assert.equal(g.admin, PEER_A)
    assert.deepEqual(synced, [PEER_B])
    assert.deepEqual(events.of('groupUpdated').map(s => s.name), ['team'])
    assert.equal(groups.conversationOf(g.conv), g.conv)
    assert.equal(groups.inConversation(g.conv, PEER_C), true)
  })

  it('add carries a snapshot to the new member; remove still reaches the removed one', async () => {
    const g = await groups.create('team', [PEER_B])
    await groups.addMember(g.conv, PEER_C)
    assert.deepEqual(sent[1]?.recipients, [PEER_B, PEER_C])
    assert.deepEqual(sent[1]?.body.op, { type: 'add', member: PEER_C, snapshot: { name: 'team', admin: PEER_A, members: g.members } })
    const after = await groups.removeMember(g.conv, PEER_C)
    assert.deepEqual(sent[2]?.recipients, [PEER_B, PEER_C])
    assert.equal(after.members.includes(PEER_C), false)
    assert.equal(groups.inConversation(g.conv, PEER_C), false)
  })

  it('refuses what a user cannot do, before anything is sent', async () => {
    await assert.rejects(groups.create('alone', [PEER_A]), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(groups.create('bad', ['not-a-peer']), code('ERR_INVALID_ARGUMENT'))
    const g = await groups.create('team', [PEER_B])
    await assert.rejects(groups.removeMember(g.conv, PEER_A), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(groups.removeMember(g.conv, PEER_C), code('ERR_NOT_FOUND'))
    await assert.rejects(groups.rename(g.conv, ' spaced '), code('ERR_INVALID_ARGUMENT'))
    assert.equal(sent.length, 1)
  })

  it('members are accounts: a device\'s peer ID names its account, a revoked device is refused (review s4 m7)', async () => {
    const byAccount = new GroupService({
      store, log: silentLogger, events, self: PEER_A, selfName: () => 'Alice',
      // PEER_C is a second device of PEER_B's account; REVOKED a device its account revoked
      accountOf: (d) => d === PEER_C ? PEER_B : d === REVOKED ? null : d,
      send: async (conv, recipients, body): Promise<StoredMessage> => {
        const m = { ...storedMessage({ conv, author: PEER_A, seq: ++seq, outgoing: true, text: body.text }), ...(body.op !== undefined ? { op: body.op } : {}) }
        byAccount.applyOp(m)
        return m
      },
      syncWith: () => {},
      isConnected: () => false
    })
    const g = await byAccount.create('team', [PEER_C])
    assert.deepEqual([...g.members].sort(), [PEER_A, PEER_B].sort())
    await assert.rejects(byAccount.addMember(g.conv, REVOKED), code('ERR_NOT_A_MEMBER'))
    const after = await byAccount.removeMember(g.conv, PEER_C)
    assert.deepEqual(after.members, [PEER_A])
  })
})
