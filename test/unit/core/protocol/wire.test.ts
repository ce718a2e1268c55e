import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { CONV_ID, MAX_NAME_CHARS, MAX_RECIPIENTS, MAX_TEXT_CHARS, MAX_CT_CHARS, conversationMembers, dmConversationId, parseDisplayName, parseEnvelope, type Envelope } from '../../../../core/protocol/envelope.js'
import { parseRpcFrame } from '../../../../core/protocol/rpc-frame.js'
import { parseAckMail } from '../../../../core/protocol/relay-rpc.js'
import { Checker, PEER_ID, b64, parseJson, unb64 } from '../../../../core/protocol/validate.js'
import { newMessageId, sealEnvelope } from '../../../../core/crypto/envelope.js'
import { ParleyError } from '../../../../core/errors.js'
import { DEFAULT_MAX_FRAME_BYTES } from '../../../../core/protocol/frames.js'
import { FETCH_MAX_BYTES } from '../../../../relay/src/store/types.js'
import { newIdentities } from '../../helpers/identities.js'
import type { DeviceIdentity } from '../../../../core/keys.js'

const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c
const json = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))

describe('parseRpcFrame', () => {
  it('accepts a request for every known method', () => {
    for (const m of ['deliver', 'getHave', 'getProfile', 'receipt'] as const) {
      assert.deepEqual(parseRpcFrame(json({ v: 1, t: 'req', rid: 7, m, body: { x: 1 } })), { v: 1, t: 'req', rid: 7, m, body: { x: 1 } })
    }
  })

  it('accepts ok and error responses', () => {
    assert.deepEqual(parseRpcFrame(json({ v: 1, t: 'res', rid: 0, ok: true, body: [1, 2] })), { v: 1, t: 'res', rid: 0, ok: true, body: [1, 2] })
    assert.deepEqual(parseRpcFrame(json({ v: 1, t: 'res', rid: 3, ok: false, code: 'ERR_X', message: '' })),
      { v: 1, t: 'res', rid: 3, ok: false, code: 'ERR_X', message: '' })
  })

  it('drops unknown extra fields', () => {
    const f = parseRpcFrame(json({ v: 1, t: 'req', rid: 1, m: 'getHave', body: null, extra: 'x' }))
    assert.equal('extra' in f, false)
  })

  const bad: Array<[string, Uint8Array]> = [
    ['non-JSON', new TextEncoder().encode('{not json')],
    ['invalid UTF-8', new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
    ['empty', new Uint8Array(0)],
    ['a JSON array', json([1, 'req'])],
    ['JSON null', json(null)],
    ['wrong v', json({ v: 2, t: 'req', rid: 1, m: 'deliver', body: {} })],
    ['v as a string', json({ v: '1', t: 'req', rid: 1, m: 'deliver', body: {} })],
    ['unknown t', json({ v: 1, t: 'push', rid: 1, m: 'deliver', body: {} })],
    ['unknown method', json({ v: 1, t: 'req', rid: 1, m: 'deleteAll', body: {} })],
    ['inherited method name', json({ v: 1, t: 'req', rid: 1, m: 'constructor', body: {} })],
    ['missing rid', json({ v: 1, t: 'req', m: 'deliver', body: {} })],
    ['negative rid', json({ v: 1, t: 'req', rid: -1, m: 'deliver', body: {} })],
    ['fractional rid', json({ v: 1, t: 'req', rid: 1.5, m: 'deliver', body: {} })],
    ['string rid', json({ v: 1, t: 'req', rid: '1', m: 'deliver', body: {} })],
    ['rid above 2^32', json({ v: 1, t: 'req', rid: 2 ** 32 + 1, m: 'deliver', body: {} })],
    ['response without ok', json({ v: 1, t: 'res', rid: 1, body: {} })],
    ['response with ok "true"', json({ v: 1, t: 'res', rid: 1, ok: 'true', body: {} })],
    ['error response without code', json({ v: 1, t: 'res', rid: 1, ok: false, message: 'x' })],
    ['error response with a 65-char code', json({ v: 1, t: 'res', rid: 1, ok: false, code: 'E'.repeat(65), message: 'x' })],
    ['error response with a 1001-char message', json({ v: 1, t: 'res', rid: 1, ok: false, code: 'E', message: 'm'.repeat(1001) })]
  ]
  for (const [name, bytes] of bad) {
    it(`rejects ${name} with ERR_MALFORMED_FRAME`, () => {
      assert.throws(() => parseRpcFrame(bytes), code('ERR_MALFORMED_FRAME'))
    })
  }
})

describe('parseEnvelope', () => {
  let alice: DeviceIdentity
  let bob: DeviceIdentity
  let good: Envelope

  before(async () => {
    [alice, bob] = await newIdentities(2) as [DeviceIdentity, DeviceIdentity]
    good = sealEnvelope(alice, {
      id: newMessageId(),
      conv: dmConversationId(alice.peerId, bob.peerId),
      seq: 1,
      hlc: { w: 1_700_000_000_000, c: 2 },
      recipients: [alice.peerId, bob.peerId],
      body: { text: 'hello' }
    })
  })

  /** A JSON copy of the good envelope with `edit` applied. */
  const variant = (edit: (o: Record<string, unknown>) => void): unknown => {
    const o = JSON.parse(JSON.stringify(good)) as Record<string, unknown>
    edit(o)
    return o
  }

  it('accepts a sealed envelope after a JSON round trip and returns it unchanged', () => {
    assert.deepEqual(parseEnvelope(JSON.parse(JSON.stringify(good))), good)
  })

  it('drops unknown extra fields', () => {
    const e = parseEnvelope(variant(o => { o.extra = 1 }))
    assert.equal('extra' in e, false)
  })

  it('accepts a maximal text of multi-byte characters', () => {
    const big = sealEnvelope(alice, { id: newMessageId(), conv: good.conv, seq: 2, hlc: { w: 1, c: 0 }, recipients: [bob.peerId], body: { text: '中'.repeat(MAX_TEXT_CHARS) } })
    assert.equal(parseEnvelope(JSON.parse(JSON.stringify(big))).ct, big.ct)
  })

  it('a group envelope at the member limit with the largest text fits one frame and one relay fetch page', async () => {
    // MAX_RECIPIENTS bounds the group size: one key wrap per member, all in one envelope
    const members = await newIdentities(MAX_RECIPIENTS - 1)
    const worst = '\u0001'.repeat(MAX_TEXT_CHARS) // JSON escapes each to six bytes
    const e = sealEnvelope(alice, {
      id: newMessageId(), conv: 'g:AAAAAAAAAAAAAAAAAAAAAA', seq: 1, hlc: { w: 1, c: 0 }, recipients: [alice.peerId, ...members.map(m => m.peerId)], body: { text: worst }
    })
    assert.equal(e.keys.length, MAX_RECIPIENTS)
    assert.equal(parseEnvelope(JSON.parse(JSON.stringify(e))).keys.length, MAX_RECIPIENTS)
    // a deposit names every recipient besides the envelope; a deliver frame carries the envelope alone
    const deposit = json({ v: 1, t: 'req', rid: 1, m: 'deposit', body: { to: members.map(m => m.peerId), envelope: e } }).length
    assert.ok(deposit < DEFAULT_MAX_FRAME_BYTES, `deposit frame ${deposit} bytes`)
    assert.ok(json(e).length < FETCH_MAX_BYTES, `envelope ${json(e).length} bytes`)
  })

  const cases: Array<[string, (o: Record<string, unknown>) => void]> = [
    ['not an object', () => {}],
    ['v 2', o => { o.v = 2 }],
    ['missing v', o => { delete o.v }],
    ['missing id', o => { delete o.id }],
    ['id of the wrong length', o => { o.id = 'A'.repeat(21) }],
    ['id with invalid characters', o => { o.id = 'A'.repeat(21) + '=' }],
    ['missing conv', o => { delete o.conv }],
    ['conv without the dm: prefix', o => { o.conv = (o.conv as string).slice(3) }],
    ['conv with one member', o => { o.conv = `dm:${alice.peerId}` }],
    ['conv with a group prefix', o => { o.conv = (o.conv as string).replace(/^dm:/, 'gr:') }],
    ['missing author', o => { delete o.author }],
    ['author that is not a peer id', o => { o.author = 'alice' }],
    ['author with a bad base58 character (0)', o => { o.author = (o.author as string).slice(0, -1) + '0' }],
    ['author with an RSA-style Qm prefix', o => { o.author = 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N' }],
    ['seq 0', o => { o.seq = 0 }],
    ['negative seq', o => { o.seq = -1 }],
    ['non-integer seq', o => { o.seq = 1.5 }],
    ['seq as a string', o => { o.seq = '1' }],
    ['seq above MAX_SAFE_INTEGER', o => { o.seq = 2 ** 53 }],
    ['missing hlc', o => { delete o.hlc }],
    ['hlc as an array', o => { o.hlc = [1, 0] }],
    ['negative hlc.w', o => { o.hlc = { w: -1, c: 0 } }],
    ['non-integer hlc.c', o => { o.hlc = { w: 1, c: 0.5 } }],
    ['hlc.w beyond 2^50', o => { o.hlc = { w: 2 ** 50 + 1, c: 0 } }],
    ['unknown kind', o => { o.kind = 'image' }],
    ['epk of the wrong length', o => { o.epk = (o.epk as string).slice(1) }],
    ['keys empty', o => { o.keys = [] }],
    ['keys not an array', o => { o.keys = {} }],
    ['too many keys', o => { o.keys = Array.from({ length: MAX_RECIPIENTS + 1 }, () => ({ to: bob.peerId, wk: 'AAAA' })) }],
    ['a key wrap that is not an object', o => { o.keys = ['x'] }],
    ['a key wrap to a non-peer', o => { o.keys = [{ to: 'bob', wk: 'AAAA' }] }],
    ['a key wrap with a non-base64url wk', o => { o.keys = [{ to: bob.peerId, wk: 'AA+/' }] }],
    ['a key wrap with an over-long wk', o => { o.keys = [{ to: bob.peerId, wk: 'A'.repeat(101) }] }],
    ['nonce of the wrong length', o => { o.nonce = 'A'.repeat(15) }],
    ['missing ct', o => { delete o.ct }],
    ['empty ct', o => { o.ct = '' }],
    ['ct with padding', o => { o.ct = (o.ct as string) + '=' }],
    ['extra-long ct', o => { o.ct = 'A'.repeat(MAX_CT_CHARS + 1) }],
    ['sig one character short', o => { o.sig = (o.sig as string).slice(1) }],
    ['sig one character long', o => { o.sig = (o.sig as string) + 'A' }],
    ['sig in standard base64', o => { o.sig = '+'.repeat(86) }]
  ]
  for (const [name, edit] of cases) {
    it(`rejects ${name} with ERR_INVALID_ENVELOPE`, () => {
      const value = name === 'not an object' ? 'envelope' : variant(edit)
      assert.throws(() => parseEnvelope(value), code('ERR_INVALID_ENVELOPE'))
    })
  }

  it('rejects null and arrays', () => {
    assert.throws(() => parseEnvelope(null), code('ERR_INVALID_ENVELOPE'))
    assert.throws(() => parseEnvelope([good]), code('ERR_INVALID_ENVELOPE'))
  })
})

describe('parseDisplayName', () => {
  it('accepts ordinary names, including non-ASCII and inner spaces', () => {
    for (const n of ['Alice', 'Zoë Müller', '王小明', 'a', 'x'.repeat(MAX_NAME_CHARS)]) assert.equal(parseDisplayName(n), n)
  })

  const bad: Array<[string, unknown]> = [
    ['empty', ''],
    ['not a string', 42],
    ['null', null],
    ['longer than 64 characters', 'x'.repeat(MAX_NAME_CHARS + 1)],
    ['a leading space', ' Alice'],
    ['a trailing space', 'Alice '],
    ['a trailing non-breaking space', 'Alice\u00a0'],
    ['only spaces', '   '],
    ['a newline', 'Ali\nce'],
    ['a carriage return', 'Ali\rce'],
    ['a NUL', 'Ali\u0000ce'],
    ['an escape (ANSI colour)', '\u001b[31mAlice'],
    ['DEL', 'Alice\u007f!'],
    ['a C1 control (CSI)', 'A\u009b2J'],
    ['a right-to-left override', 'Alice\u202etxt.exe'],
    ['a bidi isolate', 'Al\u2066ice']
  ]
  for (const [name, value] of bad) {
    it(`rejects ${name} with ERR_INVALID_ARGUMENT`, () => {
      assert.throws(() => parseDisplayName(value), code('ERR_INVALID_ARGUMENT'))
    })
  }

  // source bug: CONTROL_CHARS deliberately allows tab (it is meant for message
  // text), and parseDisplayName only adds a check for '\n', so 'Al\tice' passes.
  it('rejects a tab inside a name', () => {
    assert.throws(() => parseDisplayName('Al\tice'), code('ERR_INVALID_ARGUMENT'))
  })

  it('uses the checker it is given', () => {
    assert.throws(() => parseDisplayName(' x', new Checker('ERR_INVALID_ENVELOPE', 'profile')), code('ERR_INVALID_ENVELOPE'))
  })
})

describe('conversation ids', () => {
  let a: string
  let b: string
  before(async () => {
    const [x, y] = await newIdentities(2) as [DeviceIdentity, DeviceIdentity]
    a = x.peerId
    b = y.peerId
  })

  it('dmConversationId is independent of argument order and sorted', () => {
    const id = dmConversationId(a, b)
    assert.equal(id, dmConversationId(b, a))
    const [lo, hi] = a < b ? [a, b] : [b, a]
    assert.equal(id, `dm:${lo}:${hi}`)
    assert.match(id, CONV_ID)
  })

  it('conversationMembers returns both peers in sorted order', () => {
    const members = conversationMembers(dmConversationId(a, b))
    assert.deepEqual(members, [a, b].sort())
    for (const m of members) assert.match(m, PEER_ID)
  })

  it('conversationMembers rejects what is not a conversation id', () => {
    for (const bad of ['', 'dm:', `dm:${a}`, `dm:${a}:${b}:${a}`, `grp:${a}:${b}`, `dm:${a}:bob`]) {
      assert.throws(() => conversationMembers(bad), code('ERR_INVALID_ARGUMENT'), bad)
    }
  })
})

describe('validate helpers', () => {
  it('b64/unb64 round-trip a subarray view without leaking the rest of its buffer', () => {
    const buf = new Uint8Array([1, 2, 3, 4, 5, 6])
    const view = buf.subarray(2, 5)
    assert.equal(b64(view), 'AwQF')
    assert.deepEqual(unb64(b64(view)), new Uint8Array([3, 4, 5]))
  })

  it('parseJson reports invalid input with the caller\'s code', () => {
    assert.throws(() => parseJson(new Uint8Array([0xc3]), 'ERR_INVALID_ENVELOPE', 'x'), code('ERR_INVALID_ENVELOPE'))
    assert.deepEqual(parseJson(json({ a: 1 }), 'ERR_INVALID_ENVELOPE', 'x'), { a: 1 })
  })
})

describe('parseAckMail', () => {
  it('takes a range (upTo) or an exact list of cursors, not both', () => {
    assert.deepEqual(parseAckMail({ upTo: 7 }), { upTo: 7 })
    assert.deepEqual(parseAckMail({ cursors: [3, 9] }), { cursors: [3, 9] })
    assert.throws(() => parseAckMail({ upTo: 7, cursors: [3] }), code('ERR_MALFORMED_FRAME'))
    assert.throws(() => parseAckMail({ cursors: [] }), code('ERR_MALFORMED_FRAME'))
    assert.throws(() => parseAckMail({ cursors: [0] }), code('ERR_MALFORMED_FRAME'))
    assert.throws(() => parseAckMail({ cursors: 'x' }), code('ERR_MALFORMED_FRAME'))
    assert.throws(() => parseAckMail({}), code('ERR_MALFORMED_FRAME'))
  })
})

describe('getHave: the slot question of the move (issue 9)', () => {
  it('parses a slot asked about and answered (an envelope, null for none; garbage is left out, an older peer says nothing)', async () => {
    const { parseHaveRequest, parseHaveWithTops } = await import('../../../../core/protocol/peer-rpc.js')
    const [a, b] = await newIdentities(2)
    const conv = dmConversationId(a!.peerId, b!.peerId)
    assert.deepEqual(parseHaveRequest({ conv, tops: true, slot: { author: a!.peerId, seq: 4 } }), { conv, tops: true, slot: { author: a!.peerId, seq: 4 } })
    assert.deepEqual(parseHaveRequest({ conv, tops: true }), { conv, tops: true })
    for (const slot of [{ author: 'nope', seq: 1 }, { author: a!.peerId, seq: 0 }, { author: a!.peerId, seq: 1.5 }, 'x']) {
      assert.throws(() => parseHaveRequest({ conv, tops: true, slot }), code('ERR_MALFORMED_FRAME'), JSON.stringify(slot))
    }
    const env = sealEnvelope(a!, { id: newMessageId(), conv, seq: 4, hlc: { w: 1, c: 0 }, recipients: [b!.peerId, a!.peerId], body: { text: 'x' } })
    const base = { have: {}, tops: {}, epoch: 'e' }
    assert.deepEqual(parseHaveWithTops({ ...base, slot: env }).slot, env)
    assert.equal(parseHaveWithTops({ ...base, slot: null }).slot, null)
    assert.equal('slot' in parseHaveWithTops({ ...base, slot: { not: 'an envelope' } }), false)
    assert.equal('slot' in parseHaveWithTops(base), false)
  })
})
