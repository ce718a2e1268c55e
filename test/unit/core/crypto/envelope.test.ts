import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { createPrivateKey, sign } from 'node:crypto'
import { newMessageId, openEnvelope, sealEnvelope, signProfile, verifyEnvelope, verifyProfile, type SealInput } from '../../../../core/crypto/envelope.js'
import { dmConversationId, parseEnvelope, parseProfile, type Envelope } from '../../../../core/protocol/envelope.js'
import { b64, unb64 } from '../../../../core/protocol/validate.js'
import { ParleyError } from '../../../../core/errors.js'
import { newIdentities } from '../../helpers/identities.js'
import type { DeviceIdentity } from '../../../../core/keys.js'

const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c

/** Flips one bit in the middle of a base64url field, keeping its length. */
function flip (field: string): string {
  const bytes = unb64(field)
  const i = Math.floor(bytes.byteLength / 2)
  bytes[i] = (bytes[i] as number) ^ 0x01
  return b64(bytes)
}

/**
 * Re-signs a tampered envelope as its author would: a mirror of the canonical
 * signing bytes in envelope.ts. It lets the tests reach the decryption checks
 * that sit behind the signature check (an author attacking its own recipients).
 * The tests assert verifyEnvelope accepts the result, so a drift in the format
 * shows up as that assertion failing, not as a misleading pass.
 */
function resign (author: DeviceIdentity, e: Envelope): Envelope {
  const bytes = Buffer.from(JSON.stringify(['parley-env-v1', e.v, e.id, e.conv, e.author, e.seq, e.hlc.w, e.hlc.c, e.kind, e.epk,
    e.keys.map(k => [k.to, k.wk]), e.nonce, e.ct]))
  const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64(author.seed), x: b64(author.publicKey) }, format: 'jwk' })
  return { ...e, sig: b64(sign(null, bytes, key)) }
}

describe('envelope sealing', () => {
  let alice: DeviceIdentity
  let bob: DeviceIdentity
  let eve: DeviceIdentity
  let input: SealInput
  let env: Envelope

  before(async () => {
    [alice, bob, eve] = await newIdentities(3) as [DeviceIdentity, DeviceIdentity, DeviceIdentity]
    input = {
      id: newMessageId(),
      conv: dmConversationId(alice.peerId, bob.peerId),
      seq: 3,
      hlc: { w: 1_700_000_000_000, c: 1 },
      recipients: [alice.peerId, bob.peerId],
      body: { text: 'lunch at 12?' }
    }
    env = sealEnvelope(alice, input)
  })

  const copy = (): Envelope => structuredClone(env)

  it('fills the header from the input and the author', () => {
    assert.equal(env.v, 1)
    assert.equal(env.id, input.id)
    assert.equal(env.conv, input.conv)
    assert.equal(env.author, alice.peerId)
    assert.equal(env.seq, 3)
    assert.deepEqual(env.hlc, input.hlc)
    assert.deepEqual(env.keys.map(k => k.to), [alice.peerId, bob.peerId])
    assert.equal(env.ct.includes(b64(Buffer.from('lunch'))), false)
  })

  it('opens for the recipient and for the author (who is also a recipient)', () => {
    assert.deepEqual(openEnvelope(bob, env), { text: 'lunch at 12?' })
    assert.deepEqual(openEnvelope(alice, env), { text: 'lunch at 12?' })
  })

  it('uses fresh randomness per seal (epk, nonce, ct differ for identical input)', () => {
    const again = sealEnvelope(alice, input)
    assert.notEqual(again.epk, env.epk)
    assert.notEqual(again.nonce, env.nonce)
    assert.notEqual(again.ct, env.ct)
  })

  it('wraps the key once per distinct recipient', () => {
    const e = sealEnvelope(alice, { ...input, recipients: [bob.peerId, bob.peerId, alice.peerId] })
    assert.deepEqual(e.keys.map(k => k.to), [bob.peerId, alice.peerId])
    assert.deepEqual(openEnvelope(bob, e), input.body)
  })

  it('a third party cannot open it: ERR_NOT_A_RECIPIENT', () => {
    assert.throws(() => openEnvelope(eve, env), code('ERR_NOT_A_RECIPIENT'))
  })

  it('a third party who puts its own id on a key wrap still gets ERR_BAD_SIGNATURE', () => {
    const e = copy()
    e.keys = [...e.keys, { to: eve.peerId, wk: e.keys[1]?.wk as string }]
    assert.throws(() => openEnvelope(eve, e), code('ERR_BAD_SIGNATURE'))
  })

  const tampers: Array<[string, (e: Envelope) => void]> = [
    ['ct', e => { e.ct = flip(e.ct) }],
    ['seq', e => { e.seq += 1 }],
    ['conv', e => { e.conv = dmConversationId(alice.peerId, eve.peerId) }],
    ['hlc.w', e => { e.hlc = { ...e.hlc, w: e.hlc.w + 1 } }],
    ['hlc.c', e => { e.hlc = { ...e.hlc, c: e.hlc.c + 1 } }],
    ['author', e => { e.author = eve.peerId }],
    ['id', e => { e.id = newMessageId() }],
    ['epk', e => { e.epk = flip(e.epk) }],
    ['keys[0].wk', e => { const k = e.keys[0]; assert.ok(k); k.wk = flip(k.wk) }],
    ['keys[0].to', e => { const k = e.keys[0]; assert.ok(k); k.to = eve.peerId }],
    ['key order', e => { e.keys.reverse() }],
    ['nonce', e => { e.nonce = flip(e.nonce) }],
    ['sig', e => { e.sig = flip(e.sig) }]
  ]
  for (const [field, tamper] of tampers) {
    it(`tampering with ${field} gives ERR_BAD_SIGNATURE, checked before decryption`, () => {
      const e = copy()
      tamper(e)
      assert.throws(() => verifyEnvelope(e), code('ERR_BAD_SIGNATURE'))
      assert.throws(() => openEnvelope(bob, e), code('ERR_BAD_SIGNATURE'))
    })
  }

  it('an author that is not a valid peer id gives ERR_BAD_SIGNATURE, not a crash', () => {
    const e = copy()
    e.author = 'not-a-peer'
    assert.throws(() => openEnvelope(bob, e), code('ERR_BAD_SIGNATURE'))
  })

  it('the author re-signing a flipped ct byte gives ERR_DECRYPT_FAILED', () => {
    const e = copy()
    e.ct = flip(e.ct)
    const forged = resign(alice, e)
    assert.doesNotThrow(() => { verifyEnvelope(forged) })
    assert.throws(() => openEnvelope(bob, forged), code('ERR_DECRYPT_FAILED'))
  })

  it('the author re-signing a truncated ct gives ERR_DECRYPT_FAILED', () => {
    const forged = resign(alice, { ...copy(), ct: 'AAAA' })
    assert.throws(() => openEnvelope(bob, forged), code('ERR_DECRYPT_FAILED'))
  })

  // the header is bound into the AEAD, so a validly re-signed copy moved to
  // another position in the conversation cannot be decrypted
  for (const [field, move] of [
    ['seq', (e: Envelope) => { e.seq += 1 }],
    ['hlc', (e: Envelope) => { e.hlc = { w: e.hlc.w + 1000, c: 0 } }],
    ['id', (e: Envelope) => { e.id = newMessageId() }]
  ] as Array<[string, (e: Envelope) => void]>) {
    it(`the author re-signing a changed ${field} gives ERR_DECRYPT_FAILED`, () => {
      const e = copy()
      move(e)
      const forged = resign(alice, e)
      assert.doesNotThrow(() => { verifyEnvelope(forged) })
      assert.throws(() => openEnvelope(bob, forged), code('ERR_DECRYPT_FAILED'))
    })
  }

  it('round-trips HTML and other hostile-looking text verbatim', () => {
    const texts = [
      '<script>alert("x")</script><img src=x onerror=alert(1)>',
      '&lt;b&gt; &amp; "quotes" \'single\' `back`',
      'line1\nline2\ttab',
      '😀 ü 中文 \u202eRTL',
      '{"text":"nested json"}'
    ]
    for (const text of texts) {
      const e = sealEnvelope(alice, { ...input, id: newMessageId(), body: { text } })
      assert.equal(openEnvelope(bob, e).text, text)
    }
  })

  it('survives a JSON round trip and parseEnvelope, then still opens', () => {
    const wire = parseEnvelope(JSON.parse(JSON.stringify(env)))
    assert.deepEqual(wire, env)
    assert.deepEqual(openEnvelope(bob, wire), input.body)
  })
})

describe('profiles', () => {
  let alice: DeviceIdentity
  let eve: DeviceIdentity
  before(async () => {
    [alice, eve] = await newIdentities(2) as [DeviceIdentity, DeviceIdentity]
  })

  it('signProfile produces a profile that verifies and parses', () => {
    const p = signProfile(alice, 'Alice', 1_700_000_000_000)
    assert.deepEqual({ v: p.v, peerId: p.peerId, name: p.name, updatedAt: p.updatedAt }, { v: 1, peerId: alice.peerId, name: 'Alice', updatedAt: 1_700_000_000_000 })
    assert.doesNotThrow(() => { verifyProfile(p) })
    assert.deepEqual(parseProfile(JSON.parse(JSON.stringify(p))), p)
  })

  it('a tampered name gives ERR_BAD_SIGNATURE', () => {
    const p = signProfile(alice, 'Alice', 1)
    assert.throws(() => { verifyProfile({ ...p, name: 'Mallory' }) }, code('ERR_BAD_SIGNATURE'))
  })

  it('a tampered updatedAt gives ERR_BAD_SIGNATURE', () => {
    const p = signProfile(alice, 'Alice', 1)
    assert.throws(() => { verifyProfile({ ...p, updatedAt: 2 }) }, code('ERR_BAD_SIGNATURE'))
  })

  it('a profile claimed for another peer gives ERR_BAD_SIGNATURE', () => {
    const p = signProfile(eve, 'Alice', 1)
    assert.throws(() => { verifyProfile({ ...p, peerId: alice.peerId }) }, code('ERR_BAD_SIGNATURE'))
  })

  it('a garbage signature gives ERR_BAD_SIGNATURE', () => {
    const p = signProfile(alice, 'Alice', 1)
    assert.throws(() => { verifyProfile({ ...p, sig: 'A'.repeat(86) }) }, code('ERR_BAD_SIGNATURE'))
    assert.throws(() => { verifyProfile({ ...p, sig: '' }) }, code('ERR_BAD_SIGNATURE'))
  })

  it('parseProfile rejects an invalid name with ERR_INVALID_ENVELOPE', () => {
    const p = signProfile(alice, ' Alice', 1)
    assert.throws(() => parseProfile(JSON.parse(JSON.stringify(p))), code('ERR_INVALID_ENVELOPE'))
  })
})
