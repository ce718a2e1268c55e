/**
 * Length-prefixed frames: a 4-byte big-endian length, then that many bytes.
 * The decoder refuses a declared length above `maxFrameBytes` before it
 * buffers anything, so a peer cannot make us allocate more than the limit.
 */
import { ParleyError } from '../errors.js'

/** @default 1 MiB */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024
export const FRAME_HEADER_BYTES = 4
const HEADER_BYTES = FRAME_HEADER_BYTES

export function encodeFrame (payload: Uint8Array, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Uint8Array {
  if (payload.byteLength > maxFrameBytes) {
    throw new ParleyError('ERR_FRAME_TOO_LARGE', `frame of ${payload.byteLength} bytes exceeds the ${maxFrameBytes}-byte limit`)
  }
  const out = new Uint8Array(HEADER_BYTES + payload.byteLength)
  new DataView(out.buffer).setUint32(0, payload.byteLength, false)
  out.set(payload, HEADER_BYTES)
  return out
}

/** Incremental decoder: push chunks in, get whole frames out. */
export class FrameDecoder {
  private chunks: Uint8Array[] = []
  private buffered = 0
  private readonly maxFrameBytes: number

  constructor (maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    this.maxFrameBytes = maxFrameBytes
  }

  /** Returns every frame completed by this chunk; throws ERR_FRAME_TOO_LARGE on an oversized header. */
  push (chunk: Uint8Array): Uint8Array[] {
    if (chunk.byteLength > 0) {
      this.chunks.push(chunk)
      this.buffered += chunk.byteLength
    }
    const frames: Uint8Array[] = []
    while (this.buffered >= HEADER_BYTES) {
      const head = this.peek(HEADER_BYTES)
      const length = new DataView(head.buffer, head.byteOffset, HEADER_BYTES).getUint32(0, false)
      if (length > this.maxFrameBytes) {
        throw new ParleyError('ERR_FRAME_TOO_LARGE', `peer announced a ${length}-byte frame; the limit is ${this.maxFrameBytes}`)
      }
      if (this.buffered < HEADER_BYTES + length) break
      const whole = this.take(HEADER_BYTES + length)
      frames.push(whole.subarray(HEADER_BYTES))
    }
    return frames
  }

  get bufferedBytes (): number { return this.buffered }

  /** The announced length of the frame being received once its header is in, else undefined. */
  get partialFrameLength (): number | undefined {
    if (this.buffered < HEADER_BYTES) return undefined
    const head = this.peek(HEADER_BYTES)
    return new DataView(head.buffer, head.byteOffset, HEADER_BYTES).getUint32(0, false)
  }

  private peek (n: number): Uint8Array {
    const first = this.chunks[0]
    if (first !== undefined && first.byteLength >= n) return first.subarray(0, n)
    return this.concat().subarray(0, n)
  }

  /**
   * The next `n` bytes, as a buffer of their own (exactly `n` bytes, so a frame can be handed to a
   * worker whole): copied once out of the chunks they came in; the rest stays where it is.
   */
  private take (n: number): Uint8Array {
    const taken = new Uint8Array(n)
    let off = 0
    while (off < n) {
      const c = this.chunks[0] as Uint8Array
      const k = Math.min(c.byteLength, n - off)
      taken.set(k === c.byteLength ? c : c.subarray(0, k), off)
      off += k
      if (k === c.byteLength) this.chunks.shift()
      else this.chunks[0] = c.subarray(k)
    }
    this.buffered -= n
    return taken
  }

  private concat (): Uint8Array {
    if (this.chunks.length === 1) return this.chunks[0] as Uint8Array
    const all = new Uint8Array(this.buffered)
    let offset = 0
    for (const c of this.chunks) { all.set(c, offset); offset += c.byteLength }
    this.chunks = [all]
    return all
  }
}
