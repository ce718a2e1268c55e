/**
 * The relay-to-relay protocol's parsers and rules (relay/src/federation/):
 * hostile or broken input gets a typed error, never a crash; the pairing
 * token round-trips; per-peer policy is checked; the seq floor of a new pairing.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ParleyError } from '../../../core/errors.js'
import {
  encodePairingToken, newPairingSecret, parseFedDirectory, parseFedReceipt, parseForward, parsePair, parsePairingToken, secretHash
} from '../../../relay/src/federation/protocol.js'
import { parseFedPolicy } from '../../../relay/src/federation/federation.js'
import { fedSeqAfter, usableFedInvite } from '../../../relay/src/federation/rules.js'
import { DEFAULT_FED_POLICY } from '../../../relay/src/federation/types.js'
import { parseFetchResult } from '../../../core/protocol/relay-rpc.js'

const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c
const PEER = '12D3KooW' + 'A'.repeat(44)

describe('federation protocol', () => {
  it('a pairing token round-trips; damaged or foreign tokens are refused in words', () => {
    const t = { v: 1 as const, peerId: PEER, addrs: ['/ip4/127.0.0.1/tcp/4100'], secret: newPairingSecret(), exp: Date.now() + 1000 }
    assert.deepEqual(parsePairingToken(`  ${encodePairingToken(t)}\n`), t)
    assert.throws(() => parsePairingToken('hello'), (e: unknown) => code('ERR_FED_PAIRING')(e) && /parley-fed:/.test((e as Error).message))
    assert.throws(() => parsePairingToken('parley-fed:%%%'), code('ERR_FED_PAIRING'))
    assert.throws(() => parsePairingToken('parley-fed:' + Buffer.from('{"v":2}').toString('base64url')), code('ERR_FED_PAIRING'))
    assert.throws(() => parsePairingToken(encodePairingToken({ ...t, addrs: [] })), code('ERR_FED_PAIRING'))
    assert.throws(() => parsePairingToken(encodePairingToken({ ...t, peerId: 'not-a-peer' })), code('ERR_FED_PAIRING'))
    assert.equal(t.secret.length, 43, '256 bits, base64url')
    assert.notEqual(secretHash(t.secret), t.secret)
  })

  it('bodies from another relay are checked: malformed ones are ERR_MALFORMED_FRAME', () => {
    assert.throws(() => parsePair({ secret: 'short', name: 'x', addrs: [] }), code('ERR_MALFORMED_FRAME'))
    assert.throws(() => parsePair({ secret: 'A'.repeat(43), name: 'x\u0000', addrs: [] }), code('ERR_MALFORMED_FRAME'))
    assert.throws(() => parsePair({ secret: 'A'.repeat(43), name: 'x', addrs: Array(17).fill('/ip4/1.2.3.4/tcp/1') }), code('ERR_MALFORMED_FRAME'))
    assert.throws(() => parseForward({ batch: '1-1', items: [] }), code('ERR_MALFORMED_FRAME'))
    assert.throws(() => parseForward({ batch: '1-1', items: Array(201).fill({}) }), code('ERR_MALFORMED_FRAME'))
    assert.throws(() => parseForward({ batch: '1-1', items: [{ seq: 0, to: [PEER], envelope: {} }] }), (e: unknown) => e instanceof ParleyError)
    assert.throws(() => parseForward('nope'), code('ERR_MALFORMED_FRAME'))
    assert.throws(() => parseFedReceipt({ lastSeq: -1, stored: 0, unknown: [], full: false }), code('ERR_MALFORMED_FRAME'))
    assert.throws(() => parseFedReceipt({ lastSeq: 1, stored: 0, unknown: [[1]], full: false }), code('ERR_MALFORMED_FRAME'))
    assert.deepEqual(parseFedReceipt({ lastSeq: 3, stored: 1, unknown: [[2, PEER]], full: true }), { lastSeq: 3, stored: 1, unknown: [[2, PEER]], full: true })
    assert.throws(() => parseFedDirectory({ name: 'B', people: [{ peerId: 'x', name: 'y' }] }), code('ERR_MALFORMED_FRAME'))
    assert.deepEqual(parseFedDirectory({ name: 'B', people: [{ peerId: PEER, name: '陈静', department: '' }] }), { name: 'B', people: [{ peerId: PEER, name: '陈静' }] })
  })

  it('per-peer policy changes are checked; invites are one-time; a new pairing starts above the old seqs', () => {
    assert.deepEqual(parseFedPolicy({ directory: 'none', ttlMs: 60_000 }, DEFAULT_FED_POLICY), { ...DEFAULT_FED_POLICY, directory: 'none', ttlMs: 60_000 })
    assert.throws(() => parseFedPolicy({ directory: 'all' }, DEFAULT_FED_POLICY), code('ERR_INVALID_ARGUMENT'))
    assert.throws(() => parseFedPolicy({ ttlMs: 5 }, DEFAULT_FED_POLICY), code('ERR_INVALID_ARGUMENT'))
    assert.throws(() => parseFedPolicy({ color: 'red' }, DEFAULT_FED_POLICY), code('ERR_INVALID_ARGUMENT'))
    const inv = { id: 'abcdefgh', secretHash: 'h', createdAt: 1, expiresAt: 10 }
    assert.equal(usableFedInvite(inv, PEER, 5).usedBy, PEER)
    assert.throws(() => usableFedInvite(inv, PEER, 11), code('ERR_FED_PAIRING'))
    assert.equal(usableFedInvite({ ...inv, usedBy: PEER, usedAt: 5 }, PEER, 11).usedAt, 5, 'the same relay again, even late')
    assert.throws(() => usableFedInvite({ ...inv, usedBy: 'other' }, PEER, 5), code('ERR_FED_PAIRING'))
    assert.equal(fedSeqAfter(0, 1000), 1_000_001)
    assert.equal(fedSeqAfter(2_000_000, 1000), 2_000_001)
  })

  it('fed12: refused items with their typed reason, the offices down in a fetch answer', () => {
    const receipt = { lastSeq: 4, stored: 0, unknown: [], full: false }
    assert.deepEqual(parseFedReceipt({ ...receipt, refused: [[1, 'ERR_FED_NOT_HOME'], [2, 'ERR_BAD_SIGNATURE']] }).refused,
      [[1, 'ERR_FED_NOT_HOME'], [2, 'ERR_BAD_SIGNATURE']])
    assert.equal(parseFedReceipt(receipt).refused, undefined, 'an older relay says nothing of it')
    assert.throws(() => parseFedReceipt({ ...receipt, refused: [[1, 'not a code']] }), code('ERR_MALFORMED_FRAME'))
    assert.throws(() => parseFedReceipt({ ...receipt, refused: [1] }), code('ERR_MALFORMED_FRAME'))
    const down = [{ office: 'office B', relay: PEER, since: 1000, error: 'All multiaddr dials failed' }]
    assert.deepEqual(parseFetchResult({ items: [], more: false, notices: true, down }).down, down)
    assert.throws(() => parseFetchResult({ items: [], more: false, down: [{ office: 'x', relay: 'nope', since: 1 }] }), (e: unknown) => e instanceof ParleyError)
    assert.throws(() => parseFetchResult({ items: [], more: false, down: Array.from({ length: 65 }, () => down[0]) }), (e: unknown) => e instanceof ParleyError)
  })
})
