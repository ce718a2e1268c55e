/**
 * Envelope sealing with standard primitives only:
 *  - body: random 32-byte content key, ChaCha20-Poly1305 (node:crypto), AAD = envelope header
 *  - key wrap per recipient: X25519 (ephemeral key per envelope, recipient key
 *    converted from its Ed25519 identity as libsodium's crypto_sign_ed25519_pk_to_curve25519,
 *    @noble/curves) -> HKDF-SHA256 -> ChaCha20-Poly1305
 *  - signature: Ed25519 (node:crypto) by the author over every other field
 * This is the ECIES shape of HPKE base mode; see docs/SECURITY.md.
 */
import {
  createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync,
  randomBytes, sign, verify, type KeyObject
} from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { ParleyError } from '../errors.js'
import { publicKeyOfPeer } from '../keys.js'
import { b64, unb64 } from '../protocol/validate.js'
import { parseBody, type Body, type Envelope, type EnvelopeKind, type Hlc, type Profile } from '../protocol/envelope.js'
import type { SignedReceipt } from '../protocol/fed-notice.js'
import type { SlotTaken } from '../protocol/slot-notice.js'

const TAG_BYTES = 16
const WRAP_INFO = Buffer.from('parley/v1/key-wrap')
const ZERO_NONCE = new Uint8Array(12)

export interface SigningKeys {
  peerId: string
  seed: Uint8Array
  publicKey: Uint8Array
}

export interface SealInput {
  id: string
  conv: string
  seq: number
  hlc: Hlc
  recipients: string[]
  body: Body
  /** @default 'text' */
  kind?: EnvelopeKind
}

const privCache = new WeakMap<Uint8Array, KeyObject>()
const pubCache = new Map<string, KeyObject>()
const xPubCache = new Map<string, { raw: Uint8Array, key: KeyObject }>()
const xPrivCache = new WeakMap<Uint8Array, { raw: Uint8Array, key: KeyObject }>()

function bounded<K, V> (m: Map<K, V>, k: K, v: V): V {
  if (m.size > 4096) m.clear()
  m.set(k, v)
  return v
}

/** A peer's X25519 public key, converted from the Ed25519 key in its peer ID. */
function xPublicOfPeer (peerId: string): { raw: Uint8Array, key: KeyObject } {
  const hit = xPubCache.get(peerId)
  if (hit !== undefined) return hit
  const raw = ed25519.utils.toMontgomery(publicKeyOfPeer(peerId))
  return bounded(xPubCache, peerId, { raw, key: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64(raw) }, format: 'jwk' }) })
}

function xPrivate (k: SigningKeys): { raw: Uint8Array, key: KeyObject } {
  let hit = xPrivCache.get(k.seed)
  if (hit === undefined) {
    const jwk = { kty: 'OKP', crv: 'X25519', d: b64(ed25519.utils.toMontgomerySecret(k.seed)), x: b64(ed25519.utils.toMontgomery(k.publicKey)) }
    const key = createPrivateKey({ key: jwk, format: 'jwk' })
    hit = { raw: ed25519.utils.toMontgomery(k.publicKey), key }
    xPrivCache.set(k.seed, hit)
  }
  return hit
}

/**
 * A fresh X25519 key pair with the public key already encoded by the key
 * generation itself. Exporting a just-generated KeyObject as JWK can deadlock
 * Node 20 (observed here: ExportJWK holds the key's mutex while allocating,
 * the garbage collector then destroys the finished KeyGenJob, which takes the
 * same mutex); a DER export inside generateKeyPairSync avoids that path.
 */
function ephemeralX25519 (): { privateKey: KeyObject, raw: Uint8Array } {
  const pair = generateKeyPairSync('x25519', { publicKeyEncoding: { type: 'spki', format: 'der' } })
  const { privateKey, publicKey } = pair as unknown as { privateKey: KeyObject, publicKey: Buffer }
  // SPKI DER of an X25519 key: a 12-byte header, then the 32 raw bytes
  return { privateKey, raw: new Uint8Array(publicKey.subarray(publicKey.length - 32)) }
}

function edPrivate (k: SigningKeys): KeyObject {
  let key = privCache.get(k.seed)
  if (key === undefined) {
    key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64(k.seed), x: b64(k.publicKey) }, format: 'jwk' })
    privCache.set(k.seed, key)
  }
  return key
}

function edPublicOfPeer (peerId: string): KeyObject {
  let key = pubCache.get(peerId)
  if (key === undefined) {
    key = bounded(pubCache, peerId, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64(publicKeyOfPeer(peerId)) }, format: 'jwk' }))
  }
  return key
}

function aead (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES })
  c.setAAD(aad, { plaintextLength: plaintext.byteLength })
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()])
}

function unaead (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
  if (sealed.byteLength < TAG_BYTES) throw new ParleyError('ERR_DECRYPT_FAILED', 'ciphertext too short')
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES })
  d.setAAD(aad, { plaintextLength: sealed.byteLength - TAG_BYTES })
  d.setAuthTag(sealed.subarray(sealed.byteLength - TAG_BYTES))
  try {
    return Buffer.concat([d.update(sealed.subarray(0, sealed.byteLength - TAG_BYTES)), d.final()])
  } catch (err) {
    throw new ParleyError('ERR_DECRYPT_FAILED', 'authentication failed', { cause: err })
  }
}

/** Header bytes bound into the body AEAD: everything that says who, where and when. */
function headerBytes (e: Pick<Envelope, 'v' | 'id' | 'conv' | 'author' | 'seq' | 'hlc' | 'kind' | 'epk'>): Uint8Array {
  return Buffer.from(JSON.stringify(['parley-hdr-v1', e.v, e.id, e.conv, e.author, e.seq, e.hlc.w, e.hlc.c, e.kind, e.epk]))
}

/** Canonical bytes the author signs: a fixed-order array, so JSON key order never matters. */
function signingBytes (e: Envelope): Uint8Array {
  return Buffer.from(JSON.stringify(['parley-env-v1', e.v, e.id, e.conv, e.author, e.seq, e.hlc.w, e.hlc.c, e.kind, e.epk,
    e.keys.map(k => [k.to, k.wk]), e.nonce, e.ct]))
}

function wrapKey (shared: Uint8Array, epk: Uint8Array, recipientX: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', shared, Buffer.concat([epk, recipientX]), WRAP_INFO, 32))
}

export function newMessageId (): string {
  return b64(randomBytes(16))
}

export function sealEnvelope (author: SigningKeys, input: SealInput): Envelope {
  const contentKey = randomBytes(32)
  const eph = ephemeralX25519()
  const epk = eph.raw
  const nonce = randomBytes(12)
  const partial = {
    v: 1 as const, id: input.id, conv: input.conv, author: author.peerId, seq: input.seq, hlc: input.hlc, kind: input.kind ?? 'text', epk: b64(epk)
  }
  const aad = headerBytes(partial)
  const keys = [...new Set(input.recipients)].map(to => {
    const rx = xPublicOfPeer(to)
    const kek = wrapKey(diffieHellman({ privateKey: eph.privateKey, publicKey: rx.key }), epk, rx.raw)
    return { to, wk: b64(aead(kek, ZERO_NONCE, aad, contentKey)) }
  })
  const ct = aead(contentKey, nonce, aad, Buffer.from(JSON.stringify(input.body)))
  const env: Envelope = { ...partial, keys, nonce: b64(nonce), ct: b64(ct), sig: '' }
  env.sig = b64(sign(null, signingBytes(env), edPrivate(author)))
  return env
}

/** Checks the author's signature; throws ERR_BAD_SIGNATURE. Anyone can verify, no key needed. */
export function verifyEnvelope (env: Envelope): void {
  let ok = false
  try {
    ok = verify(null, signingBytes(env), edPublicOfPeer(env.author), unb64(env.sig))
  } catch (err) {
    throw new ParleyError('ERR_BAD_SIGNATURE', `envelope ${env.id}: signature check failed`, { cause: err })
  }
  if (!ok) throw new ParleyError('ERR_BAD_SIGNATURE', `envelope ${env.id}: signature does not match author ${env.author}`)
}

/** Verifies, then decrypts the body for `me`. */
export function openEnvelope (me: SigningKeys, env: Envelope): Body {
  verifyEnvelope(env)
  const mine = env.keys.find(k => k.to === me.peerId)
  if (mine === undefined) throw new ParleyError('ERR_NOT_A_RECIPIENT', `envelope ${env.id} is not addressed to this device`)
  const epk = unb64(env.epk)
  const my = xPrivate(me)
  let shared: Uint8Array
  try {
    shared = diffieHellman({ privateKey: my.key, publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: env.epk }, format: 'jwk' }) })
  } catch (err) {
    throw new ParleyError('ERR_DECRYPT_FAILED', 'invalid ephemeral key', { cause: err })
  }
  const aad = headerBytes(env)
  const contentKey = unaead(wrapKey(shared, epk, my.raw), ZERO_NONCE, aad, unb64(mine.wk))
  const plain = unaead(contentKey, unb64(env.nonce), aad, unb64(env.ct))
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(plain).toString('utf8'))
  } catch (err) {
    throw new ParleyError('ERR_INVALID_ENVELOPE', 'body is not JSON', { cause: err })
  }
  return parseBody(parsed, env.kind)
}

function profileBytes (p: Omit<Profile, 'sig'>): Uint8Array {
  return Buffer.from(JSON.stringify(['parley-profile-v1', p.v, p.peerId, p.name, p.updatedAt]))
}

export function signProfile (me: SigningKeys, name: string, updatedAt: number): Profile {
  const p = { v: 1 as const, peerId: me.peerId, name, updatedAt }
  return { ...p, sig: b64(sign(null, profileBytes(p), edPrivate(me))) }
}

export function verifyProfile (p: Profile): void {
  let ok = false
  try {
    ok = verify(null, profileBytes(p), edPublicOfPeer(p.peerId), unb64(p.sig))
  } catch (err) {
    throw new ParleyError('ERR_BAD_SIGNATURE', 'profile signature check failed', { cause: err })
  }
  if (!ok) throw new ParleyError('ERR_BAD_SIGNATURE', `profile of ${p.peerId} has a bad signature`)
}

// ---- receipts through the relays (federation, issue 12: core/protocol/fed-notice.ts) ----

function receiptBytes (r: Omit<SignedReceipt, 'sig'>): Uint8Array {
  return Buffer.from(JSON.stringify(['parley-receipt-v1', r.v, r.by, r.author, r.conv, r.ids, r.state, r.at]))
}

/** A delivery or read receipt signed by this device, for `author`'s messages `ids`. */
export function signReceipt (me: SigningKeys, r: Omit<SignedReceipt, 'sig' | 'by' | 'v'>): SignedReceipt {
  const body = { v: 1 as const, by: me.peerId, ...r }
  return { ...body, sig: b64(sign(null, receiptBytes(body), edPrivate(me))) }
}

/** Throws ERR_BAD_SIGNATURE unless `by` signed it. */
export function verifyReceipt (r: SignedReceipt): void {
  let ok = false
  try {
    ok = verify(null, receiptBytes(r), edPublicOfPeer(r.by), unb64(r.sig))
  } catch (err) {
    throw new ParleyError('ERR_BAD_SIGNATURE', 'receipt signature check failed', { cause: err })
  }
  if (!ok) throw new ParleyError('ERR_BAD_SIGNATURE', `receipt of ${r.by} has a bad signature`)
}

// ---- "slot taken" notices through the relays (issue 9: core/protocol/slot-notice.ts) ----

function slotTakenBytes (env: Envelope, t: Omit<SlotTaken, 'sig'>): Uint8Array {
  return Buffer.from(JSON.stringify(['parley-slot-taken-v1', t.v, t.by, env.author, env.conv, env.seq, env.id, env.sig, t.refused ?? '', t.at]))
}

/**
 * `env` (another author's envelope this device holds) with a "slot taken" notice signed by this device
 * beside it; `refused`: the author's message this device refused at `env`'s number.
 */
export function signSlotTaken (me: SigningKeys, env: Envelope, refused?: string): Envelope {
  const { taken: _old, ...plain } = env
  const t = { v: 1 as const, by: me.peerId, ...(refused !== undefined ? { refused } : {}), at: Date.now() }
  return { ...plain, taken: { ...t, sig: b64(sign(null, slotTakenBytes(plain, t), edPrivate(me))) } }
}

/** Throws ERR_BAD_SIGNATURE unless `env.taken` is there and its `by` signed it for exactly this envelope. */
export function verifySlotTaken (env: Envelope): SlotTaken {
  const t = env.taken
  if (t === undefined) throw new ParleyError('ERR_INVALID_ENVELOPE', 'no slot notice beside the envelope')
  let ok = false
  try {
    ok = verify(null, slotTakenBytes(env, t), edPublicOfPeer(t.by), unb64(t.sig))
  } catch (err) {
    throw new ParleyError('ERR_BAD_SIGNATURE', 'slot notice signature check failed', { cause: err })
  }
  if (!ok) throw new ParleyError('ERR_BAD_SIGNATURE', `slot notice of ${t.by} has a bad signature`)
  return t
}

/** The envelope without a notice beside it (as it is stored). */
export function withoutSlotTaken (env: Envelope): Envelope {
  if (env.taken === undefined) return env
  const { taken: _t, ...plain } = env
  return plain
}
