/**
 * Chunk encryption and hashes, with standard primitives only and off the
 * event loop (WebCrypto runs in Node's thread pool):
 *  - content: AES-256-GCM under the file's random 32-byte key (in the sealed
 *    manifest), one AEAD message per chunk; nonce = 4 zero bytes + the chunk
 *    index as 64-bit big-endian (a key is used for one file only, so every
 *    nonce is used once per key, and the same chunk always encrypts to the
 *    same bytes: any holder can serve it and its hash still matches);
 *    AAD = "parley/file/v1" + file id + chunk count (a chunk cannot move to
 *    another file, and a file cannot be cut short: the count is bound in)
 *  - chunk hash: SHA-256 of the encrypted chunk (ciphertext + tag), so a relay
 *    or a member that cannot or need not decrypt can still check what it holds
 */
import { webcrypto } from 'node:crypto'
import { ParleyError } from '../errors.js'
import { CHUNK_HASH_BYTES } from './file-manifest.js'

const { subtle } = webcrypto
export const CHUNK_TAG_BYTES = 16
const AAD_LABEL = Buffer.from('parley/file/v1')

export type ContentKey = webcrypto.CryptoKey

export async function importContentKey (raw: Uint8Array): Promise<ContentKey> {
  if (raw.byteLength !== 32) throw new ParleyError('ERR_INVALID_ARGUMENT', 'a content key is 32 bytes')
  return await subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt'])
}

function nonce (index: number): Uint8Array {
  const n = new Uint8Array(12)
  new DataView(n.buffer).setBigUint64(4, BigInt(index), false)
  return n
}

function aad (fileId: string, count: number): Uint8Array {
  const id = Buffer.from(fileId, 'base64url')
  const out = Buffer.alloc(AAD_LABEL.byteLength + id.byteLength + 4)
  AAD_LABEL.copy(out, 0)
  id.copy(out, AAD_LABEL.byteLength)
  out.writeUInt32BE(count, AAD_LABEL.byteLength + id.byteLength)
  return out
}

export interface ChunkContext { key: ContentKey, fileId: string, count: number }

export async function encryptChunk (ctx: ChunkContext, index: number, plain: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv: nonce(index), additionalData: aad(ctx.fileId, ctx.count) }, ctx.key, plain))
}

/** Throws ERR_CHUNK_REJECTED when the chunk was not sealed under this key, index and file. */
export async function decryptChunk (ctx: ChunkContext, index: number, sealed: Uint8Array): Promise<Uint8Array> {
  try {
    return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: nonce(index), additionalData: aad(ctx.fileId, ctx.count) }, ctx.key, sealed))
  } catch (err) {
    throw new ParleyError('ERR_CHUNK_REJECTED', `chunk ${index} does not decrypt under the file's key`, { cause: err })
  }
}

export async function sha256 (data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle.digest('SHA-256', data))
}

/** Does `sealed` hash to `expected` (CHUNK_HASH_BYTES)? Compared in constant time is not needed (hashes are public). */
export async function chunkMatches (sealed: Uint8Array, expected: Uint8Array): Promise<boolean> {
  if (expected.byteLength !== CHUNK_HASH_BYTES) return false
  return Buffer.from(await sha256(sealed)).equals(expected)
}
