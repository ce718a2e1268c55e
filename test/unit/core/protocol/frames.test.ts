import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_MAX_FRAME_BYTES, FrameDecoder, encodeFrame } from '../../../../core/protocol/frames.js'
import { ParleyError } from '../../../../core/errors.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'))
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)
const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c

describe('encodeFrame', () => {
  it('matches the hex fixture for payload "hi"', () => {
    assert.equal(hex(encodeFrame(utf8('hi'))), '00000002' + '6869')
  })

  it('encodes an empty payload as a bare zero header', () => {
    assert.equal(hex(encodeFrame(new Uint8Array(0))), '00000000')
  })

  it('writes the length big-endian', () => {
    const f = encodeFrame(new Uint8Array(0x010203))
    assert.equal(hex(f.subarray(0, 4)), '00010203')
    assert.equal(f.byteLength, 4 + 0x010203)
  })

  it('encodes a payload that is a view into a larger buffer', () => {
    const big = utf8('xxhixx')
    assert.equal(hex(encodeFrame(big.subarray(2, 4))), '000000026869')
  })

  it('accepts exactly the limit and throws ERR_FRAME_TOO_LARGE one byte over', () => {
    assert.equal(encodeFrame(new Uint8Array(10), 10).byteLength, 14)
    assert.throws(() => encodeFrame(new Uint8Array(11), 10), code('ERR_FRAME_TOO_LARGE'))
  })

  it('applies the 1 MiB default limit', () => {
    assert.equal(DEFAULT_MAX_FRAME_BYTES, 1024 * 1024)
    assert.throws(() => encodeFrame(new Uint8Array(DEFAULT_MAX_FRAME_BYTES + 1)), code('ERR_FRAME_TOO_LARGE'))
  })
})

describe('FrameDecoder', () => {
  it('decodes the hex fixture', () => {
    const frames = new FrameDecoder().push(unhex('00000002 6869'))
    assert.deepEqual(frames.map(text), ['hi'])
  })

  it('round-trips encodeFrame output', () => {
    const payloads = ['', 'a', 'hello world', 'ü€😀'.repeat(100)]
    const d = new FrameDecoder()
    for (const p of payloads) {
      assert.deepEqual(d.push(encodeFrame(utf8(p))).map(text), [p])
    }
    assert.equal(d.bufferedBytes, 0)
  })

  it('returns nothing until a frame is complete, fed byte by byte', () => {
    const all = Buffer.concat([encodeFrame(utf8('first')), encodeFrame(utf8('')), encodeFrame(utf8('third one'))])
    const d = new FrameDecoder()
    const out: string[] = []
    const completedAt: number[] = []
    for (let i = 0; i < all.byteLength; i++) {
      const frames = d.push(all.subarray(i, i + 1))
      for (const f of frames) { out.push(text(f)); completedAt.push(i) }
    }
    assert.deepEqual(out, ['first', '', 'third one'])
    // each frame completes on its own last byte, not earlier and not later
    assert.deepEqual(completedAt, [4 + 5 - 1, 9 + 4 - 1, 13 + 4 + 9 - 1])
    assert.equal(d.bufferedBytes, 0)
  })

  it('decodes across every possible split point of a two-frame stream', () => {
    const all = Buffer.concat([encodeFrame(utf8('abc')), encodeFrame(utf8('defgh'))])
    for (let i = 0; i <= all.byteLength; i++) {
      for (let j = i; j <= all.byteLength; j++) {
        const d = new FrameDecoder()
        const out = [...d.push(all.subarray(0, i)), ...d.push(all.subarray(i, j)), ...d.push(all.subarray(j))].map(text)
        assert.deepEqual(out, ['abc', 'defgh'], `split at ${i},${j}`)
      }
    }
  })

  it('returns several frames from one chunk and keeps a trailing partial one', () => {
    const d = new FrameDecoder()
    const partial = encodeFrame(utf8('tail'))
    const chunk = Buffer.concat([encodeFrame(utf8('one')), encodeFrame(utf8('two')), encodeFrame(utf8('three')), partial.subarray(0, 6)])
    assert.deepEqual(d.push(chunk).map(text), ['one', 'two', 'three'])
    assert.equal(d.bufferedBytes, 6)
    assert.deepEqual(d.push(partial.subarray(6)).map(text), ['tail'])
    assert.equal(d.bufferedBytes, 0)
  })

  it('returns frames that do not change when later chunks arrive', () => {
    const d = new FrameDecoder()
    const chunk = new Uint8Array(Buffer.concat([encodeFrame(utf8('keep')), encodeFrame(utf8('x')).subarray(0, 2)]))
    const [first] = d.push(chunk)
    assert.ok(first !== undefined)
    chunk.fill(0)
    d.push(encodeFrame(utf8('x')).subarray(2))
    assert.equal(text(first), 'keep')
  })

  it('throws ERR_FRAME_TOO_LARGE as soon as the header declares more than the limit', () => {
    const d = new FrameDecoder(100)
    // only the header: the payload has not arrived and must not be waited for
    assert.throws(() => d.push(unhex('00000065')), code('ERR_FRAME_TOO_LARGE'))
    assert.equal(d.bufferedBytes, 4)
  })

  it('rejects a 4 GiB header under the default limit without buffering', () => {
    const d = new FrameDecoder()
    assert.throws(() => d.push(unhex('ffffffff 00')), code('ERR_FRAME_TOO_LARGE'))
  })

  it('throws for a header split across chunks once it is complete', () => {
    const d = new FrameDecoder(100)
    assert.deepEqual(d.push(unhex('0000')), [])
    assert.throws(() => d.push(unhex('0101')), code('ERR_FRAME_TOO_LARGE'))
  })

  it('accepts a frame of exactly the limit', () => {
    const d = new FrameDecoder(100)
    const frames = d.push(encodeFrame(new Uint8Array(100).fill(7), 100))
    assert.equal(frames.length, 1)
    assert.equal(frames[0]?.byteLength, 100)
  })

  it('ignores empty chunks', () => {
    const d = new FrameDecoder()
    assert.deepEqual(d.push(new Uint8Array(0)), [])
    assert.equal(d.bufferedBytes, 0)
  })

  it('hands out every frame in a buffer of its own (a worker may take it), the next frame intact', () => {
    const d = new FrameDecoder()
    const a = new Uint8Array(3000).fill(1)
    const b = new Uint8Array(2000).fill(2)
    const wire = Buffer.concat([encodeFrame(a), encodeFrame(b)])
    const frames: Uint8Array[] = []
    // pieces that end inside frames and inside a header
    for (const [from, to] of [[0, 1000], [1000, 3002], [3002, 3006], [3006, wire.byteLength]] as const) frames.push(...d.push(wire.subarray(from, to)))
    assert.equal(frames.length, 2)
    const [fa, fb] = frames as [Uint8Array, Uint8Array]
    assert.deepEqual([fa.byteLength, fb.byteLength], [3000, 2000])
    // the frame's buffer holds the frame and its 4-byte length, nothing of the next frame or of the input
    assert.equal(fa.buffer.byteLength, 3004)
    assert.notEqual(fa.buffer, wire.buffer)
    structuredClone(fa.buffer, { transfer: [fa.buffer] })
    assert.deepEqual(Buffer.from(fb), Buffer.from(b))
    assert.equal(d.bufferedBytes, 0)
  })
})
