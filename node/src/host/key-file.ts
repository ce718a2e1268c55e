/**
 * The device key outside LevelDB: `device-key` in the data dir, mode 0600,
 * written (tmp file, fsync, rename, fsync of the directory) before the key is
 * first used, so the identity survives a database that is damaged or gone.
 */
import { open, readFile, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import { ParleyError } from '../../../core/errors.js'
import { b64, unb64 } from '../../../core/protocol/validate.js'
import { createIdentityBytes, loadIdentity } from '../../../core/keys.js'
import type { Logger } from '../../../core/util/log.js'

interface KeyFileV1 { v: 1, key: string }

/** The key bytes in `path`, or undefined when there is no such file. */
export async function readKeyFile (path: string): Promise<Uint8Array | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    const parsed = JSON.parse(text) as KeyFileV1
    if (parsed.v !== 1 || typeof parsed.key !== 'string') throw new Error('not a version 1 key file')
    const bytes = unb64(parsed.key)
    loadIdentity(bytes)
    return bytes
  } catch (err) {
    throw new ParleyError('ERR_STORE_CORRUPT', `the device key file ${path} is damaged (${(err as Error).message}). ` +
      'Restore it from a backup of this data directory; without it this device cannot prove it is itself', { cause: err })
  }
}

/** Writes `bytes` to `path` durably and atomically, mode 0600. */
export async function writeKeyFile (path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(JSON.stringify({ v: 1, key: b64(bytes) } satisfies KeyFileV1) + '\n')
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
  const dir = await open(dirname(path), 'r')
  try { await dir.sync() } finally { await dir.close() }
}

/** Where a store keeps its copy of the device key (meta `identity`, base64 of the protobuf encoding). */
interface KeyStore { getMeta(key: string): Promise<unknown>, putMeta(key: string, value: unknown): Promise<void> }

/**
 * The device key of this data dir: the key file's (the store's copy is put
 * back if the store lost it); else the store's, copied to a new key file (data
 * dirs from before the key file); else a new key, written to the key file
 * before the store or anything else uses it.
 */
export async function resolveDeviceKey (store: KeyStore, path: string, fromFile: Uint8Array | undefined, log: Logger): Promise<Uint8Array> {
  const stored = await store.getMeta('identity')
  const inStore = typeof stored === 'string' ? unb64(stored) : undefined
  if (fromFile !== undefined) {
    if (inStore === undefined) await store.putMeta('identity', b64(fromFile))
    else if (!Buffer.from(inStore).equals(Buffer.from(fromFile))) {
      throw new ParleyError('ERR_STORE_CORRUPT', `the device key in the message store differs from the key file ${path}: ` +
        'this store belongs to another device. Put back this data directory\'s own db/ (or its key file)')
    }
    return fromFile
  }
  if (inStore !== undefined) {
    await writeKeyFile(path, inStore)
    log.info('device key copied out of the store into its key file', { path })
    return inStore
  }
  const fresh = await createIdentityBytes()
  await writeKeyFile(path, fresh)
  await store.putMeta('identity', b64(fresh))
  log.info('created a new device identity', { path })
  return fresh
}
