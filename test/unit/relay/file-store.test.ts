import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { RelayFileStore, parseFileOffer } from '../../../relay/src/files/file-store.js'
import { createLogger } from '../../../core/util/log.js'
import { removeDir, tmpDir } from '../../helpers/nodes.js'
import { decodeBitmap } from '../../../core/protocol/file-wire.js'

const MiB = 1024 * 1024
const ids = { up: '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq', to: '12D3KooWCXw4Vy2RyBsbGvm3cKVJpQTVxvjjm2vYvXi8zxXhwZKX', other: '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo' }

describe('relay file store', () => {
  let dir: string
  let store: RelayFileStore
  before(async () => {
    dir = await tmpDir('parley-filestore-')
    store = new RelayFileStore(join(dir, 'files'), { quotaBytes: 3 * MiB, ttlMs: 1000, maxFileBytes: 2 * MiB }, createLogger('t', 'silent'))
    await store.start(60_000)
  })
  after(async () => { store.stop(); await removeDir(dir) })

  const sealed = [randomBytes(MiB + 16), randomBytes(100 + 16)]
  const hashes = Buffer.concat(sealed.map(c => createHash('sha256').update(c).digest())).toString('base64url')
  const id = randomBytes(16).toString('base64url')

  it('keeps chunks that match the offered hashes, for the recipients and uploader only', async () => {
    await store.offer(ids.up, id, parseFileOffer({ size: MiB + 100, chunkSize: MiB, hashes, recipients: [ids.to] }))
    await assert.rejects(store.put(id, ids.up, 0, sealed[1] as Uint8Array), { code: 'ERR_CHUNK_REJECTED' })
    const bad = Buffer.from(sealed[0] as Buffer); bad[0] = (bad[0] as number) ^ 1
    await assert.rejects(store.put(id, ids.up, 0, bad), { code: 'ERR_CHUNK_REJECTED' })
    await assert.rejects(store.put(id, ids.to, 0, sealed[0] as Uint8Array), { code: 'ERR_NOT_FOUND' })
    await store.put(id, ids.up, 0, sealed[0] as Uint8Array)
    const have = decodeBitmap(store.have(id, ids.to), 2)
    assert.deepEqual([have(0), have(1)], [true, false])
    assert.deepEqual(Buffer.from(await store.get(id, ids.to, 0)), sealed[0])
    assert.throws(() => store.have(id, ids.other), { code: 'ERR_NOT_FOUND' })
    await assert.rejects(store.get(id, ids.other, 0), { code: 'ERR_NOT_FOUND' })
  })

  it('refuses over the per-user quota and the largest file, with the numbers', async () => {
    const h = (n: number): string => randomBytes(32 * n).toString('base64url')
    await assert.rejects(store.offer(ids.up, randomBytes(16).toString('base64url'), { size: 3 * MiB, chunkSize: MiB, hashes: h(3), recipients: [ids.to] }),
      { code: 'ERR_FILE_TOO_LARGE' })
    await assert.rejects(store.offer(ids.up, randomBytes(16).toString('base64url'), { size: 2 * MiB, chunkSize: MiB, hashes: h(2), recipients: [ids.to] }),
      (err: Error & { code?: string }) => err.code === 'ERR_FILE_QUOTA_EXCEEDED' && /at most 3\.0 MiB .* 1\.0 MiB are in use/.test(err.message))
    // another user has a quota of its own
    await store.offer(ids.other, randomBytes(16).toString('base64url'), { size: 2 * MiB, chunkSize: MiB, hashes: h(2), recipients: [ids.to] })
  })

  it('survives a restart and expires files after their time to live', async () => {
    store.stop()
    store = new RelayFileStore(join(dir, 'files'), { quotaBytes: 3 * MiB, ttlMs: 1000, maxFileBytes: 2 * MiB }, createLogger('t', 'silent'))
    await store.start(60_000)
    assert.equal(decodeBitmap(store.have(id, ids.to), 2)(0), true)
    assert.equal(await store.sweep(Date.now() + 2000), 2)
    assert.deepEqual(await readdir(join(dir, 'files')), [])
    assert.equal(store.usage(ids.up), 0)
  })
})
