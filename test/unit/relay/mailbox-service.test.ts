/**
 * The relay's mailbox service (relay/src/mailbox/service.ts) on a LevelDB
 * mailbox whose fsync the test releases: admission, the deposit answered only
 * after its durable write, fan-out to admitted recipients, and the counters.
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { MailboxService } from '../../../relay/src/mailbox/service.js'
import { RelayMetrics } from '../../../relay/src/admin/metrics.js'
import { LevelMailboxStore } from '../../../relay/src/store/level-mailbox-store.js'
import { sealEnvelope, newMessageId, signSlotTaken } from '../../../core/crypto/envelope.js'
import { dmConversationId, type Envelope } from '../../../core/protocol/envelope.js'
import { ParleyError } from '../../../core/errors.js'
import { silentLogger } from '../../../core/util/log.js'
import type { DeviceIdentity } from '../../../core/keys.js'
import { newIdentities } from '../helpers/identities.js'
import { gatedDb, settled } from '../helpers/store.js'
import type { RpcChannel } from '../../../core/rpc/channel.js'
import type { RelayRpcMethod } from '../../../core/protocol/relay-rpc.js'

describe('MailboxService', () => {
  let alice: DeviceIdentity, bob: DeviceIdentity, carol: DeviceIdentity
  let gate: ReturnType<typeof gatedDb>
  let store: LevelMailboxStore
  let service: MailboxService
  let disconnected: string[]
  const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c
  const env = (to: string[]): Envelope =>
    sealEnvelope(alice, { id: newMessageId(), conv: dmConversationId(alice.peerId, bob.peerId), seq: 1, hlc: { w: Date.now(), c: 0 }, recipients: to, body: { text: 'x' } })
  /** admits through the gated store: one fsync released for it */
  const admit = async (peerId: string): Promise<void> => {
    const done = store.admit(peerId, 'allow-list')
    gate.release()
    await done
  }

  beforeEach(async () => {
    [alice, bob, carol] = await newIdentities(3) as [DeviceIdentity, DeviceIdentity, DeviceIdentity]
    gate = gatedDb()
    store = new LevelMailboxStore(gate.db, { ttlMs: 60_000, quotaMessages: 100, quotaBytes: 1 << 20 })
    await store.start()
    disconnected = []
    service = new MailboxService({ store, log: silentLogger, disconnect: async (p) => { disconnected.push(p) }, metrics: new RelayMetrics() }, { sweepIntervalMs: 60_000 })
  })
  afterEach(async () => {
    service.stop()
    for (let i = 0; i < 10; i++) gate.release()
    await store.stop()
  })

  it('serves admitted peers only, and counts the refusals', async () => {
    await assert.rejects(service.handlers.fetch(alice.peerId, { after: 0, limit: 10 }), code('ERR_NOT_ADMITTED'))
    assert.deepEqual(await service.handlers.relayStatus(alice.peerId, {}), { admitted: false, queued: 0 })
    assert.equal(service.snapshot().refused, 1)
  })

  it('answers a deposit only once it is durable, for the admitted recipients, naming the others', async () => {
    await admit(alice.peerId)
    await admit(bob.peerId)
    const answer = await service.handlers.deposit(alice.peerId, { to: [bob.peerId, carol.peerId], envelope: env([bob.peerId, carol.peerId]) })
    assert.equal(await settled(answer.durable), false, 'no answer before the write')
    gate.release()
    assert.deepEqual(await answer.durable, { status: 'stored', stored: 1, unknown: [carol.peerId], full: [], shareFull: [] })
    assert.equal(service.snapshot().deposited, 1)
    assert.equal((await service.handlers.fetch(bob.peerId, { after: 0, limit: 10 })).items.length, 1)
  })

  it('refuses a deposit by someone other than the author, or not sealed for a named recipient', async () => {
    await admit(alice.peerId)
    await admit(bob.peerId)
    await admit(carol.peerId)
    await assert.rejects(service.handlers.deposit(bob.peerId, { to: [bob.peerId], envelope: env([bob.peerId]) }), code('ERR_INVALID_ENVELOPE'))
    await assert.rejects(service.handlers.deposit(alice.peerId, { to: [carol.peerId], envelope: env([bob.peerId]) }), code('ERR_INVALID_ENVELOPE'))
    await assert.rejects(service.handlers.deposit(alice.peerId, { to: [alice.peerId], envelope: { nope: true } }), code('ERR_INVALID_ENVELOPE'))
  })

  it('a slot notice is refused when its signer is no recipient of the envelope (review s5 m3)', async () => {
    await admit(alice.peerId); await admit(bob.peerId); await admit(carol.peerId)
    // carol was never sent this envelope of alice's (sealed for bob only): she cannot be giving it back
    const notice = signSlotTaken(carol, env([bob.peerId, alice.peerId]))
    await assert.rejects(service.handlers.deposit(carol.peerId, { to: [alice.peerId], envelope: notice }), code('ERR_NOT_A_RECIPIENT'))
    // bob can
    const d = service.handlers.deposit(bob.peerId, { to: [alice.peerId], envelope: signSlotTaken(bob, env([bob.peerId, alice.peerId])) })
    gate.release()
    assert.equal((await (await d).durable).stored, 1)
  })

  it('removing a user withdraws its admission and cuts its connections', async () => {
    await admit(bob.peerId)
    const removing = service.removeUser(bob.peerId)
    // two writes: the deny mark of the person's devices (issue 11), then the user record
    gate.release(); gate.release()
    assert.equal(await removing, true)
    assert.deepEqual(disconnected, [bob.peerId])
    assert.equal(store.isAdmitted(bob.peerId), false)
  })
  it('pushes mailWaiting on new mail to a connected recipient that asked for it (relayStatus wake), only to it, on its open channel', async () => {
    await admit(alice.peerId); await admit(bob.peerId); await admit(carol.peerId)
    const calls: string[] = []
    const channel = (who: string, open = true): RpcChannel<RelayRpcMethod> =>
      ({ isOpen: open, call: async (m: string) => { calls.push(`${who} ${m}`); return {} } }) as unknown as RpcChannel<RelayRpcMethod>
    service.start()
    await service.handlers.relayStatus(bob.peerId, { wake: true })
    // carol is connected but never asked (an older node): nothing is pushed to her
    await service.handlers.relayStatus(carol.peerId, {})
    service.attach(bob.peerId, channel('bob-closed', false))
    service.attach(bob.peerId, channel('bob'))
    service.attach(carol.peerId, channel('carol'))
    const d = service.handlers.deposit(alice.peerId, { to: [bob.peerId, carol.peerId], envelope: env([bob.peerId, carol.peerId]) })
    gate.release()
    await (await d).durable
    assert.deepEqual(calls, ['bob mailWaiting'])
  })
  it('a burst of deposits is one mailWaiting in flight and one more after it, not one per deposit', async () => {
    await admit(alice.peerId); await admit(bob.peerId)
    let calls = 0
    let answer!: () => void
    const ch = ({ isOpen: true, call: async () => { calls++; await new Promise<void>(resolve => { answer = resolve }); return {} } }) as unknown as RpcChannel<RelayRpcMethod>
    service.start()
    await service.handlers.relayStatus(bob.peerId, { wake: true })
    service.attach(bob.peerId, ch)
    for (let i = 0; i < 5; i++) {
      const d = service.handlers.deposit(alice.peerId, { to: [bob.peerId], envelope: env([bob.peerId]) })
      gate.release()
      await (await d).durable
    }
    assert.equal(calls, 1, 'one in flight')
    answer()
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(calls, 2, 'one more for what came meanwhile')
    answer()
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(calls, 2)
  })
})
