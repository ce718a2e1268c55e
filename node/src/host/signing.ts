/**
 * Detached Ed25519 signatures for discovery records: by our device key, and
 * checked against the key inside a peer ID. node:crypto, because it is about
 * ten times faster than libp2p's JavaScript Ed25519 and a node may check
 * hundreds of records when it joins an office.
 */
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { publicKeyOfPeer, type DeviceIdentity } from '../../../core/keys.js'

const publicKeys = new Map<string, KeyObject>()
const MAX_CACHED_KEYS = 4096

export function signWithDevice (identity: DeviceIdentity, data: Uint8Array): Uint8Array {
  const jwk = { kty: 'OKP', crv: 'Ed25519', d: Buffer.from(identity.seed).toString('base64url'), x: Buffer.from(identity.publicKey).toString('base64url') }
  const key = createPrivateKey({ key: jwk, format: 'jwk' })
  return cryptoSign(null, data, key)
}

/** false for a bad signature and for anything malformed (not an Ed25519 peer ID, wrong length). */
export function verifyByPeer (peerId: string, data: Uint8Array, sig: Uint8Array): boolean {
  try {
    let key = publicKeys.get(peerId)
    if (key === undefined) {
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKeyOfPeer(peerId)).toString('base64url') }, format: 'jwk' })
      if (publicKeys.size >= MAX_CACHED_KEYS) publicKeys.clear()
      publicKeys.set(peerId, key)
    }
    return cryptoVerify(null, data, key, sig)
  } catch {
    return false
  }
}
