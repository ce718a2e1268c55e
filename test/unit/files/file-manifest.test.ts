import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import {
  MAX_CHUNKS, MAX_SAFE_NAME_BYTES, MIN_CHUNK_BYTES, chunkCount, chunkSizeFor, parseFileManifest, safeFileName, safeRelativeDir
} from '../../../core/protocol/file-manifest.js'
import { chunkMatches, decryptChunk, encryptChunk, importContentKey, sha256 } from '../../../core/protocol/file-chunks.js'
import { decodeBitmap, encodeBitmap } from '../../../core/protocol/file-wire.js'
import { parseBody } from '../../../core/protocol/envelope.js'

describe('safe file names on receipt', () => {
  const cases: Array<[string, string]> = [
    ['../../etc/passwd', '_.._etc_passwd'],
    ['..', 'file'],
    ['.', 'file'],
    ['', 'file'],
    ['/etc/shadow', '_etc_shadow'],
    ['C:\\Windows\\system32\\cmd.exe', 'C__Windows_system32_cmd.exe'],
    ['..\\..\\boot.ini', '_.._boot.ini'],
    ['.bashrc', 'bashrc'],
    ['CON', '_CON'],
    ['con.txt', '_con.txt'],
    ['NUL.tar.gz', '_NUL.tar.gz'],
    ['com1', '_com1'],
    ['LPT9.doc', '_LPT9.doc'],
    ['CONSOLE.txt', 'CONSOLE.txt'],
    ['report.pdf. . ', 'report.pdf'],
    ['a\u0000b\u0007c\u001b[31md.txt', 'abc[31md.txt'],
    ['invoice\u202egpj.exe', 'invoicegpj.exe'],
    ['line\nbreak\r.txt', 'linebreak.txt'],
    ['what?<>|*".txt', 'what______.txt'],
    ['报告 2026.docx', '报告 2026.docx']
  ]
  for (const [sent, want] of cases) {
    it(`${JSON.stringify(sent)} → ${JSON.stringify(want)}`, () => { assert.equal(safeFileName(sent), want) })
  }

  it('over-long names are cut to the byte limit, keeping the extension and whole characters', () => {
    const long = '很'.repeat(300) + '.pdf'
    const safe = safeFileName(long)
    assert.ok(Buffer.byteLength(safe) <= MAX_SAFE_NAME_BYTES, `${Buffer.byteLength(safe)} bytes`)
    assert.ok(safe.endsWith('.pdf'))
    assert.ok(!safe.includes('\ufffd'))
    assert.equal(safeFileName('a'.repeat(5000)).length, MAX_SAFE_NAME_BYTES)
  })

  it('no result is ever a path, hidden, or a reserved name', () => {
    for (let n = 0; n < 2000; n++) {
      const s = Array.from({ length: 1 + (n % 40) }, () => String.fromCharCode(Math.floor(Math.random() * 0x80))).join('') + (n % 3 === 0 ? '/..' : '')
      const safe = safeFileName(s)
      assert.ok(!/[/\\]/.test(safe) && !safe.startsWith('.') && safe !== '' && !/^(con|nul|prn|aux)(\.|$)/i.test(safe), JSON.stringify([s, safe]))
    }
  })

  it('a sent folder path is made safe part by part, without . or ..', () => {
    assert.deepEqual(safeRelativeDir('../../x/./y/../CON'), ['x', 'y', '_CON'])
    assert.deepEqual(safeRelativeDir('/abs\\win/'), ['abs', 'win'])
    assert.deepEqual(safeRelativeDir(undefined), [])
  })
})

describe('file manifest', () => {
  const manifest = (size: number): Record<string, unknown> => {
    const chunkSize = chunkSizeFor(size)
    return { v: 1, id: randomBytes(16).toString('base64url'), name: 'a.bin', size, type: 'application/octet-stream', chunkSize, hashes: randomBytes(32 * chunkCount(size, chunkSize)).toString('base64url'), key: randomBytes(32).toString('base64url') }
  }

  it('chunk size grows so that 4 GiB fits in MAX_CHUNKS', () => {
    assert.equal(chunkSizeFor(0), MIN_CHUNK_BYTES)
    assert.equal(chunkSizeFor(1024 ** 3), MIN_CHUNK_BYTES)
    assert.equal(chunkSizeFor(4 * 1024 ** 3), 4 * MIN_CHUNK_BYTES)
    assert.ok(chunkCount(4 * 1024 ** 3, chunkSizeFor(4 * 1024 ** 3)) <= MAX_CHUNKS)
  })

  it('a valid manifest parses, inside a message body too', () => {
    const m = manifest(5 * 1024 * 1024 + 1)
    assert.equal(parseFileManifest(m).size, m.size)
    assert.equal(parseBody({ text: 'a.bin', file: m }).file?.id, m.id)
  })

  it('hostile manifests are refused', () => {
    const bad: Array<Record<string, unknown>> = [
      { ...manifest(10), hashes: randomBytes(64).toString('base64url') },
      { ...manifest(10), chunkSize: 3 * 1024 * 1024 },
      { ...manifest(10), size: -1 },
      { ...manifest(10), key: 'short' },
      { ...manifest(10), id: '../../x' },
      { ...manifest(10), thumb: { type: 'image/svg+xml', data: '', w: 1, h: 1 } },
      { ...manifest(10), size: 2 ** 40 }
    ]
    for (const b of bad) assert.throws(() => parseFileManifest(b), { code: 'ERR_INVALID_ENVELOPE' })
    assert.throws(() => parseFileManifest(manifest(10 * 1024 * 1024), 1024 * 1024), { code: 'ERR_INVALID_ENVELOPE' })
  })
})

describe('chunk encryption', () => {
  it('round-trips, is deterministic, and refuses another index, file or key', async () => {
    const key = await importContentKey(randomBytes(32))
    const ctx = { key, fileId: randomBytes(16).toString('base64url'), count: 3 }
    const plain = randomBytes(100_000)
    const a = await encryptChunk(ctx, 1, plain)
    const b = await encryptChunk(ctx, 1, plain)
    assert.deepEqual(a, b)
    assert.ok(!Buffer.from(a).includes(plain.subarray(0, 32)))
    assert.deepEqual(Buffer.from(await decryptChunk(ctx, 1, a)), plain)
    await assert.rejects(decryptChunk(ctx, 2, a), { code: 'ERR_CHUNK_REJECTED' })
    await assert.rejects(decryptChunk({ ...ctx, count: 2 }, 1, a), { code: 'ERR_CHUNK_REJECTED' })
    await assert.rejects(decryptChunk({ ...ctx, fileId: randomBytes(16).toString('base64url') }, 1, a), { code: 'ERR_CHUNK_REJECTED' })
    await assert.rejects(decryptChunk({ ...ctx, key: await importContentKey(randomBytes(32)) }, 1, a), { code: 'ERR_CHUNK_REJECTED' })
    const h = await sha256(a)
    assert.equal(await chunkMatches(a, h), true)
    const tampered = Buffer.from(a); tampered[10] = (tampered[10] as number) ^ 1
    assert.equal(await chunkMatches(tampered, h), false)
  })

  it('bitmaps round-trip', () => {
    const set = new Set([0, 7, 8, 1000, 1023])
    const has = decodeBitmap(encodeBitmap(i => set.has(i), 1024), 1024)
    for (let i = 0; i < 1024; i++) assert.equal(has(i), set.has(i))
  })
})
