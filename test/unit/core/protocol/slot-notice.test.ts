/**
 * The "slot taken" notice (core/protocol/slot-notice.ts, issue 9 N3): parsed
 * only where the relay RPC and federation carry it, signed by the device that
 * gives the envelope back, bound to exactly that envelope; hostile shapes give
 * typed errors.
 */
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { newMessageId, sealEnvelope, signSlotTaken, verifyEnvelope, verifySlotTaken, withoutSlotTaken } from '../../../../core/crypto/envelope.js'
import { dmConversationId, parseEnvelope, type Envelope } from '../../../../core/protocol/envelope.js'
import { parseSlotTaken } from '../../../../core/protocol/slot-notice.js'
import { parseDeposit, parseFetchResult } from '../../../../core/protocol/relay-rpc.js'
import { ParleyError } from '../../../../core/errors.js'
import type { DeviceIdentity } from '../../../../core/keys.js'
import { newIdentities } from '../../helpers/identities.js'

const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c

describe('slot taken notice', () => {
  let ann: DeviceIdentity, bob: DeviceIdentity
  let env: Envelope
  before(async () => {
    [ann, bob] = await newIdentities(2) as [DeviceIdentity, DeviceIdentity]
    env = sealEnvelope(ann, { id: newMessageId(), conv: dmConversationId(ann.peerId, bob.peerId), seq: 4, hlc: { w: 1, c: 0 }, recipients: [bob.peerId, ann.peerId], body: { text: 'hi' } })
  })

  it('signed by the device that gives it back, bound to that envelope; the author\'s signature untouched', () => {
    const back = signSlotTaken(bob, env, newMessageId())
    assert.equal(verifySlotTaken(back).by, bob.peerId)
    verifyEnvelope(back)
    assert.deepEqual(withoutSlotTaken(back), env)
    for (const tampered of [
      { ...back, seq: 5 }, { ...back, id: newMessageId() }, { ...back, taken: { ...back.taken!, refused: newMessageId() } },
      { ...back, taken: { ...back.taken!, by: ann.peerId } }, { ...back, taken: { ...back.taken!, at: back.taken!.at + 1 } }
    ]) assert.throws(() => verifySlotTaken(tampered), code('ERR_BAD_SIGNATURE'))
    assert.throws(() => verifySlotTaken(env), code('ERR_INVALID_ENVELOPE'))
  })

  it('parsed beside an envelope only by the relay RPC (and federation); a direct delivery drops it', () => {
    const back = signSlotTaken(bob, env)
    const wire = JSON.parse(JSON.stringify(back)) as unknown
    assert.equal(parseEnvelope(wire).taken, undefined)
    assert.deepEqual(parseEnvelope(wire, { taken: true }).taken, back.taken)
    assert.deepEqual(parseDeposit({ to: [ann.peerId], envelope: wire }).envelope.taken, back.taken)
    assert.deepEqual(parseFetchResult({ items: [{ cursor: 1, from: bob.peerId, envelope: wire }], more: false }).items[0]!.envelope.taken, back.taken)
  })

  it('hostile shapes: typed errors', () => {
    const t = signSlotTaken(bob, env).taken!
    for (const bad of [null, [], 'x', { ...t, v: 2 }, { ...t, by: 'nobody' }, { ...t, sig: 'short' }, { ...t, refused: '../../etc' },
      { ...t, at: -1 }, { ...t, at: 1.5 }, { ...t, by: undefined }]) {
      assert.throws(() => parseSlotTaken(bad), code('ERR_INVALID_ENVELOPE'), JSON.stringify(bad))
      assert.throws(() => parseEnvelope({ ...env, taken: bad }, { taken: true }), code('ERR_INVALID_ENVELOPE'))
    }
  })
})
