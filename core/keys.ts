/**
 * Device identity and peer-ID helpers: the libp2p Ed25519 key, the key inside
 * a peer ID, the peer ID at the end of a multiaddr. The only place outside the
 * hosts that knows how libp2p encodes keys, peer IDs and addresses (key and
 * address encodings only, no networking); the rest of Parley sees raw 32-byte keys.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { ParleyError } from './errors.js'

export interface DeviceIdentity {
  peerId: string
  /** Ed25519 seed (private), 32 bytes */
  seed: Uint8Array
  /** Ed25519 public key, 32 bytes */
  publicKey: Uint8Array
  /** the same key in libp2p form, for the host */
  libp2pKey: PrivateKey
}

/** Creates a new device key; returns its persistable encoding. */
export async function createIdentityBytes (): Promise<Uint8Array> {
  return privateKeyToProtobuf(await generateKeyPair('Ed25519'))
}

export function loadIdentity (bytes: Uint8Array): DeviceIdentity {
  const key = privateKeyFromProtobuf(bytes)
  if (key.type !== 'Ed25519') throw new ParleyError('ERR_STORE', `stored device key is ${key.type}, expected Ed25519`)
  // libp2p keeps Ed25519 private keys as seed || public key
  const raw = key.raw
  return {
    peerId: peerIdFromPrivateKey(key).toString(),
    seed: raw.slice(0, 32),
    publicKey: raw.slice(32, 64),
    libp2pKey: key
  }
}

/** The Ed25519 public key embedded in a peer ID (identity multihash). */
export function publicKeyOfPeer (peerId: string): Uint8Array {
  try {
    const id = peerIdFromString(peerId)
    if (id.type !== 'Ed25519' || id.publicKey == null) throw new Error(`peer id type ${id.type} has no inline Ed25519 key`)
    return id.publicKey.raw
  } catch (err) {
    throw new ParleyError('ERR_INVALID_ARGUMENT', `not an Ed25519 peer id: ${peerId.slice(0, 60)}`, { cause: err })
  }
}

/** The peer ID at the end of a multiaddr; throws ERR_INVALID_ARGUMENT when there is none. */
/**
 * A relay setting: one multiaddr with /p2p/, or several (the instances of a
 * relay cluster sharing one store), separated by commas or spaces; each checked.
 */
export function relayAddrs (value: string): string[] {
  const addrs = value.split(/[\s,]+/).filter(a => a !== '')
  for (const a of addrs) peerOfAddr(a)
  return addrs
}

export function peerOfAddr (addr: string): string {
  let ma: Multiaddr
  try { ma = multiaddr(addr) } catch (err) { throw new ParleyError('ERR_INVALID_ARGUMENT', `not a multiaddr: ${addr}`, { cause: err }) }
  const peer = ma.getComponents().findLast(c => c.name === 'p2p')?.value
  if (peer === undefined) throw new ParleyError('ERR_INVALID_ARGUMENT', `address needs /p2p/<peer id>: ${addr}`)
  return peer
}
