/**
 * The chunk workers (node/src/files/chunk-crypto.ts) against the reference
 * construction (core/protocol/file-chunks.ts): the same sealed bytes and
 * hashes, both ways; a damaged chunk, a wrong index or a wrong hash is refused;
 * the buffers handed over are the worker's (transferred), and small or shared
 * buffers are copied instead.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChunkCrypto, type ChunkKeys } from '../../../node/src/files/chunk-crypto.js'
import { decryptChunk, encryptChunk, importContentKey, sha256 } from '../../../core/protocol/file-chunks.js'

describe('chunk workers', () => {
  const crypto = new ChunkCrypto(2)
  after(async () => { await crypto.close() })
  const keys = async (): Promise<ChunkKeys> => {
    const raw = randomBytes(32)
    return { key: await importContentKey(raw), raw, fileId: randomBytes(16).toString('base64url'), count: 7 }
  }

  it('seals exactly as file-chunks.ts does, and opens what it sealed', async () => {
    const k = await keys()
    for (const size of [0, 5, 100_000, 1024 * 1024]) {
      const plain = randomBytes(size)
      const ref = await encryptChunk(k, 3, plain)
      const { sealed, hash } = await crypto.seal(k, 3, Buffer.from(plain))
      assert.deepEqual(Buffer.from(sealed as Uint8Array), Buffer.from(ref))
      assert.deepEqual(Buffer.from(hash), Buffer.from(await sha256(ref)))
      const hashOnly = await crypto.seal(k, 3, Buffer.from(plain), true)
      assert.equal(hashOnly.sealed, undefined)
      assert.deepEqual(Buffer.from(hashOnly.hash), Buffer.from(hash))
      const opened = await crypto.open(k, 3, new Uint8Array(ref), hash)
      assert.deepEqual(Buffer.from(opened as Uint8Array), plain)
      assert.deepEqual(Buffer.from(await decryptChunk(k, 3, sealed as Uint8Array)), plain)
    }
  })

  it('refuses a damaged chunk, another index, another hash', async () => {
    const k = await keys()
    const plain = randomBytes(200_000)
    const sealed = await encryptChunk(k, 1, plain)
    const hash = await sha256(sealed)
    const bad = new Uint8Array(sealed); bad[10] = (bad[10] as number) ^ 1
    const badHash = await sha256(bad)
    assert.equal(await crypto.open(k, 1, new Uint8Array(bad), hash), undefined)
    assert.equal(await crypto.open(k, 1, new Uint8Array(bad), badHash), undefined, 'the hash matches, the tag does not')
    assert.equal(await crypto.open(k, 2, new Uint8Array(sealed), hash), undefined, 'sealed for chunk 1')
    assert.equal(await crypto.open(k, 1, new Uint8Array(sealed), new Uint8Array(32)), undefined)
    assert.equal(await crypto.open(k, 1, new Uint8Array(4), await sha256(new Uint8Array(4))), undefined, 'shorter than a tag')
  })

  it('hands a chunk buffer over; a view into a larger shared buffer is copied and left intact', async () => {
    const k = await keys()
    const own = randomBytes(256 * 1024)
    const copy = Buffer.from(own)
    await crypto.seal(k, 0, own)
    assert.equal(own.byteLength, 0, 'transferred to the worker')
    const big = randomBytes(4 * 1024 * 1024)
    const view = big.subarray(1024, 1024 + 128 * 1024)
    const before = Buffer.from(view)
    const { hash } = await crypto.seal(k, 0, view, true)
    assert.equal(view.byteLength, 128 * 1024)
    assert.deepEqual(Buffer.from(view), before)
    assert.deepEqual(Buffer.from(hash), Buffer.from(await sha256(await encryptChunk(k, 0, before))))
    assert.ok(copy.byteLength > 0)
    // a chunk with more bytes after it in its buffer (not a frame's tail): copied, the rest of the buffer left alone
    const parent = randomBytes(384 * 1024)
    const head = parent.subarray(0, 128 * 1024)
    const rest = Buffer.from(parent.subarray(128 * 1024))
    await crypto.seal(k, 0, head, true)
    assert.equal(parent.byteLength, 384 * 1024, 'not detached')
    assert.deepEqual(Buffer.from(parent.subarray(128 * 1024)), rest)
    // a frame: a small header, then the chunk to the end of the buffer: handed over
    const frame = randomBytes(64 + 128 * 1024)
    const chunk = frame.subarray(64)
    await crypto.seal(k, 0, chunk, true)
    assert.equal(frame.byteLength, 0, 'the frame was handed over')
  })
})

/** Runs `code` (an ES module that may import ChunkCrypto from `MOD`) in a node of its own; its exit code, or 'hung' after `ms`. */
async function inChild (code: string, ms: number): Promise<{ rc: number | 'hung', out: string }> {
  const mod = fileURLToPath(new URL('../../../node/src/files/chunk-crypto.ts', import.meta.url))
  const dir = await mkdtemp(join(tmpdir(), 'parley-cc-'))
  const file = join(dir, 'child.mts')
  await writeFile(file, code.replaceAll('MOD', JSON.stringify(mod)))
  const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  return await new Promise((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve({ rc: 'hung', out }) }, ms)
    child.on('exit', (rc) => { clearTimeout(timer); resolve({ rc: rc ?? -1, out }) })
  }).finally(async () => { await rm(dir, { recursive: true, force: true }) }) as { rc: number | 'hung', out: string }
}

describe('chunk workers and the process lifetime', () => {
  const KEYS = `
    import { ChunkCrypto } from MOD
    import { randomBytes } from 'node:crypto'
    const raw = randomBytes(32)
    const k = { raw, key: await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']), fileId: randomBytes(16).toString('base64url'), count: 2 }
    const c = new ChunkCrypto(2)
  `
  it('an idle worker does not keep the process alive: it exits after a call without close()', async () => {
    const r = await inChild(KEYS + `
      const { hash } = await c.seal(k, 0, randomBytes(256 * 1024))
      console.log('sealed', hash.byteLength)
    `, 60_000)
    assert.equal(r.rc, 0, r.out)
    assert.match(r.out, /sealed 32/)
  })

  it('after close() a call is refused (ERR_STREAM_CLOSED), no worker starts again, and the process exits', async () => {
    const r = await inChild(KEYS + `
      await c.seal(k, 0, randomBytes(1000))
      await c.close()
      for (const call of [() => c.seal(k, 1, randomBytes(256 * 1024)), () => c.open(k, 1, randomBytes(1000), new Uint8Array(32))]) {
        try { await call(); console.log('not refused') } catch (err) { console.log('refused', err.code) }
      }
    `, 60_000)
    assert.equal(r.rc, 0, r.out)
    assert.deepEqual(r.out.match(/refused \S+|not refused/g), ['refused ERR_STREAM_CLOSED', 'refused ERR_STREAM_CLOSED'])
  })
})
