import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MIN_PEER_PREFIX, resolvePeer } from '../../../node/src/api/resolve.js'
import { ParleyError } from '../../../core/errors.js'
import { PEER_A, PEER_B, PEER_C, PEER_D, PEER_E } from '../helpers/peer-ids.js'
import type { PeerView } from '../../../node/src/messaging/messenger.js'

const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c
const view = (peerId: string, name: string | null): PeerView => ({ peerId, name, online: false, reach: null, status: null, lastSeen: null, safetyNumber: '', verified: false, keyWarning: null, nameWarning: null, devices: [], needsUpdate: false })

describe('resolvePeer', () => {
  const [self, alice, bob, bob2, stranger] = [PEER_A, PEER_B, PEER_C, PEER_D, PEER_E]
  const peers = [view(alice, 'Alice'), view(bob, 'Bob'), view(bob2, 'bob'), view(self, 'Me')]

  it('returns a full peer id as is, even one not known yet', () => {
    assert.equal(resolvePeer(alice, peers, self), alice)
    assert.equal(resolvePeer(stranger, peers, self), stranger)
    assert.equal(resolvePeer(`  ${alice}\n`, peers, self), alice)
  })

  it('resolves a display name case-insensitively', () => {
    assert.equal(resolvePeer('Alice', peers, self), alice)
    assert.equal(resolvePeer('aLiCe', peers, self), alice)
    assert.equal(resolvePeer(' alice ', peers, self), alice)
  })

  it('throws ERR_AMBIGUOUS_PEER when several peers share a name', () => {
    assert.throws(() => resolvePeer('BOB', peers, self), code('ERR_AMBIGUOUS_PEER'))
  })

  it('does not resolve a name to ourselves', () => {
    assert.throws(() => resolvePeer('Me', peers, self), code('ERR_UNKNOWN_PEER'))
    // and our own name does not make another peer's name ambiguous
    assert.equal(resolvePeer('alice', [...peers, view(self, 'Alice')], self), alice)
  })

  it('throws ERR_UNKNOWN_PEER for an unknown name and for peers without names', () => {
    assert.throws(() => resolvePeer('Carol', peers, self), code('ERR_UNKNOWN_PEER'))
    assert.throws(() => resolvePeer('Carol', [view(stranger, null)], self), code('ERR_UNKNOWN_PEER'))
  })

  it('resolves a unique peer id prefix of at least 12 characters after 12D3KooW', () => {
    // every Ed25519 peer id starts with 12D3KooW: those 8 do not count
    assert.equal(resolvePeer(alice.slice(0, 8 + MIN_PEER_PREFIX), peers, self), alice)
    assert.throws(() => resolvePeer(alice.slice(0, 8 + MIN_PEER_PREFIX - 1), peers, self), code('ERR_UNKNOWN_PEER'))
  })

  it('resolves a unique suffix of at least 8 characters (the short form shown to people)', () => {
    assert.equal(resolvePeer(alice.slice(-MIN_PEER_PREFIX), peers, self), alice)
  })

  it('does not resolve references shorter than the minimum as prefixes', () => {
    assert.equal(MIN_PEER_PREFIX, 12)
    assert.throws(() => resolvePeer(alice.slice(-(MIN_PEER_PREFIX - 1)), peers, self), code('ERR_UNKNOWN_PEER'))
  })

  it('throws ERR_AMBIGUOUS_PEER for a prefix shared by several peers', () => {
    const twins = [view(alice.slice(0, 20) + 'x', null), view(alice.slice(0, 20) + 'y', null)]
    assert.throws(() => resolvePeer(alice.slice(0, 8 + MIN_PEER_PREFIX), twins, self), code('ERR_AMBIGUOUS_PEER'))
  })

  it('never resolves a prefix to oneself', () => {
    assert.throws(() => resolvePeer(self.slice(0, 24), [view(self, null)], self), code('ERR_UNKNOWN_PEER'))
  })

  it('prefers a display name over a peer id prefix', () => {
    const named = [view(alice, bob.slice(-10)), view(bob, null)]
    assert.equal(resolvePeer(bob.slice(-10), named, self), alice)
  })

  it('throws ERR_UNKNOWN_PEER for a long reference that matches nothing', () => {
    assert.throws(() => resolvePeer('zzzzzzzzzzzz', peers, self), code('ERR_UNKNOWN_PEER'))
  })

  it('throws ERR_INVALID_ARGUMENT for an empty or blank reference', () => {
    assert.throws(() => resolvePeer('', peers, self), code('ERR_INVALID_ARGUMENT'))
    assert.throws(() => resolvePeer('   \t', peers, self), code('ERR_INVALID_ARGUMENT'))
  })
})
