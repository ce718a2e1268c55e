/**
 * FILE_PROTOCOL: the chunk protocol, on its own libp2p stream so a transfer
 * never waits behind (or holds up) messages on /parley/msg. Frames are
 * length-prefixed (frames.ts) and hold a small JSON header and a binary
 * payload (a chunk), so chunks are never base64'd:
 *
 *   u32 frame length | u32 header length | header (JSON) | payload
 *
 * Requests (`t: 'req'`, numbered `r`) and answers (`t: 'res'`, same `r`) may
 * be pipelined; a server answers up to `concurrency` at once, in the order
 * they finish. Ops: `have` (which chunks of file `f` the other end holds, as
 * a bitmap), `get` (chunk `i`, encrypted, as the payload), and for a relay
 * `offer` (announce a file to keep for offline recipients) and `put` (store
 * chunk `i`); `done` tells a sender that a recipient has the whole file. See PROTOCOL.md, "Files".
 */
import { ParleyError, RemoteError, toParleyError } from '../errors.js'
import { FrameDecoder } from './frames.js'
import { FILE_ID, MAX_CHUNK_BYTES } from './file-manifest.js'
import { CHUNK_TAG_BYTES } from './file-chunks.js'
import { Checker } from './validate.js'
import type { RawStream } from '../rpc/stream.js'
import type { Logger } from '../util/log.js'

export const FILE_PROTOCOL = '/parley/file/1.0.0'
export const FILE_OPS = ['have', 'get', 'done', 'offer', 'put'] as const
export type FileOp = typeof FILE_OPS[number]
/** a chunk, its tag and a header */
export const MAX_FILE_FRAME_BYTES = MAX_CHUNK_BYTES + CHUNK_TAG_BYTES + 256 * 1024
const MAX_HEADER_BYTES = 200 * 1024
/** requests not answered yet that one stream may queue (their payloads count too) before it is reset */
const MAX_QUEUED_REQUESTS = 64
const MAX_QUEUED_BYTES = 64 * 1024 * 1024
export const DEFAULT_FILE_CALL_TIMEOUT_MS = 30_000

export interface FileRequest { op: FileOp, f: string, i?: number, body?: unknown }
export interface FileAnswer { body?: unknown, payload?: Uint8Array }
export type FileHandler = (req: FileRequest, payload: Uint8Array) => Promise<FileAnswer>

interface Header { t: 'req' | 'res', r: number, op?: FileOp, f?: string, i?: number, ok?: boolean, code?: string, message?: string, body?: unknown }

const check = new Checker('ERR_MALFORMED_FRAME', 'file frame')

function parseHeader (bytes: Uint8Array): Header {
  let v: unknown
  try { v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) } catch { check.fail('header is not JSON') }
  const o = check.obj(v)
  const t = check.literal(o, 't', ['req', 'res'])
  const r = check.int(o, 'r', { min: 1, max: 2 ** 31 })
  if (t === 'res') {
    const ok = check.bool(o, 'ok')
    if (ok) return { t, r, ok, body: o.body }
    return { t, r, ok, code: check.str(o, 'code', { max: 64 }), message: check.str(o, 'message', { min: 0, max: 1000 }) }
  }
  const h: Header = { t, r, op: check.literal(o, 'op', FILE_OPS), f: check.str(o, 'f', { max: 22, pattern: FILE_ID }), body: o.body }
  if (o.i !== undefined) h.i = check.int(o, 'i', { min: 0, max: 1 << 20 })
  return h
}

function encode (h: Header, payload?: Uint8Array): [Uint8Array, Uint8Array | undefined] {
  const head = Buffer.from(JSON.stringify(h))
  const len = 4 + head.byteLength + (payload?.byteLength ?? 0)
  if (len > MAX_FILE_FRAME_BYTES) throw new ParleyError('ERR_FRAME_TOO_LARGE', `a ${len}-byte file frame exceeds ${MAX_FILE_FRAME_BYTES}`)
  const out = Buffer.alloc(8 + head.byteLength)
  out.writeUInt32BE(len, 0)
  out.writeUInt32BE(head.byteLength, 4)
  head.copy(out, 8)
  return [out, payload]
}

interface Pending { resolve: (a: FileAnswer) => void, reject: (e: Error) => void }

export interface FileWireInit {
  /** requests answered at once (reading and encrypting chunks in the thread pool): a receiver's whole window. @default 8 */
  concurrency?: number
  /** @default 30000 */
  callTimeoutMs?: number
}

/** One FILE_PROTOCOL stream, either end: `call` asks, the handler (if any) answers. */
export class FileWire {
  private readonly decoder = new FrameDecoder(MAX_FILE_FRAME_BYTES)
  private readonly pending = new Map<number, Pending>()
  private readonly queue: Array<{ h: Header, payload: Uint8Array }> = []
  private queuedBytes = 0
  private active = 0
  private nextR = 1
  private closedWith?: ParleyError
  private writing: Promise<void> = Promise.resolve()
  private readonly concurrency: number
  private readonly callTimeoutMs: number
  /** payload bytes received on this stream (answers and puts) */
  bytesIn = 0

  constructor (private readonly stream: RawStream, private readonly handler: FileHandler | undefined, private readonly log: Logger, init: FileWireInit = {}) {
    this.concurrency = init.concurrency ?? 8
    this.callTimeoutMs = init.callTimeoutMs ?? DEFAULT_FILE_CALL_TIMEOUT_MS
    stream.addEventListener('message', (evt) => { this.onData(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()) })
    stream.addEventListener('close', (evt) => { this.fail(new ParleyError('ERR_STREAM_CLOSED', 'file stream closed', { cause: evt.error })) })
  }

  get isOpen (): boolean { return this.closedWith === undefined }

  async call (op: FileOp, f: string, opts: { i?: number, body?: unknown, payload?: Uint8Array, timeoutMs?: number } = {}): Promise<FileAnswer> {
    if (this.closedWith !== undefined) throw this.closedWith
    const r = this.nextR++
    const answer = new Promise<FileAnswer>((resolve, reject) => { this.pending.set(r, { resolve, reject }) })
    answer.catch(() => {})
    const timer = setTimeout(() => {
      const p = this.pending.get(r)
      this.pending.delete(r)
      p?.reject(new ParleyError('ERR_TIMEOUT', `file ${op} timed out`))
    }, opts.timeoutMs ?? this.callTimeoutMs)
    try {
      const h: Header = { t: 'req', r, op, f, ...(opts.i !== undefined ? { i: opts.i } : {}), ...(opts.body !== undefined ? { body: opts.body } : {}) }
      await Promise.race([this.write(h, opts.payload), answer])
      return await answer
    } finally {
      clearTimeout(timer)
      this.pending.delete(r)
    }
  }

  abort (err: Error): void {
    const open = this.closedWith === undefined
    this.fail(toParleyError(err, 'ERR_STREAM_CLOSED'))
    if (open) this.stream.abort(err)
  }

  async close (): Promise<void> {
    this.fail(new ParleyError('ERR_STREAM_CLOSED', 'file stream closed locally'))
    await this.stream.close().catch(() => { this.stream.abort(new Error('close failed')) })
  }

  private fail (err: ParleyError): void {
    if (this.closedWith === undefined) this.closedWith = err
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
    this.queue.length = 0
    this.queuedBytes = 0
  }

  private async write (h: Header, payload?: Uint8Array): Promise<void> {
    const [head, body] = encode(h, payload)
    const next = this.writing.then(async () => {
      if (this.closedWith !== undefined) throw this.closedWith
      let ok = this.stream.send(head)
      if (body !== undefined && body.byteLength > 0) ok = this.stream.send(body)
      if (!ok) await this.stream.onDrain({ signal: AbortSignal.timeout(this.callTimeoutMs) })
    })
    this.writing = next.catch(() => {})
    await next
  }

  private onData (chunk: Uint8Array): void {
    if (this.closedWith !== undefined) return
    try {
      for (const frame of this.decoder.push(chunk)) {
        if (frame.byteLength < 4) check.fail('frame too short')
        const hlen = new DataView(frame.buffer, frame.byteOffset, 4).getUint32(0, false)
        if (hlen > MAX_HEADER_BYTES || hlen > frame.byteLength - 4) check.fail('bad header length')
        const h = parseHeader(frame.subarray(4, 4 + hlen))
        const payload = frame.subarray(4 + hlen)
        this.bytesIn += payload.byteLength
        if (h.t === 'res') {
          const p = this.pending.get(h.r)
          if (p === undefined) continue
          if (h.ok === true) p.resolve({ body: h.body, payload })
          else p.reject(new RemoteError(h.code ?? 'ERR_INTERNAL', h.message ?? ''))
          continue
        }
        this.queue.push({ h, payload })
        this.queuedBytes += payload.byteLength
        if (this.queue.length > MAX_QUEUED_REQUESTS || this.queuedBytes > MAX_QUEUED_BYTES) {
          throw new ParleyError('ERR_RESOURCE_LIMIT', 'the peer queued too many file requests')
        }
      }
    } catch (err) {
      const e = toParleyError(err, 'ERR_MALFORMED_FRAME')
      this.log.warn('resetting file stream after bad input', { code: e.code, err: e.message })
      this.abort(e)
      return
    }
    this.pump()
  }

  private pump (): void {
    while (this.active < this.concurrency && this.queue.length > 0 && this.closedWith === undefined) {
      const { h, payload } = this.queue.shift() as { h: Header, payload: Uint8Array }
      this.queuedBytes -= payload.byteLength
      this.active++
      void this.answer(h, payload).finally(() => { this.active--; this.pump() })
    }
  }

  private async answer (h: Header, payload: Uint8Array): Promise<void> {
    try {
      if (this.handler === undefined) throw new ParleyError('ERR_NOT_FOUND', 'this end takes no file requests')
      const a = await this.handler({ op: h.op as FileOp, f: h.f as string, ...(h.i !== undefined ? { i: h.i } : {}), body: h.body }, payload)
      await this.write({ t: 'res', r: h.r, ok: true, ...(a.body !== undefined ? { body: a.body } : {}) }, a.payload)
    } catch (err) {
      const e = toParleyError(err)
      const code = err instanceof RemoteError ? err.remoteCode : e.code
      await this.write({ t: 'res', r: h.r, ok: false, code, message: e.message.slice(0, 1000) }).catch(() => {})
    }
  }
}

/** A bitmap of `n` chunks (bit i set = held), base64url, as `have` answers it. */
export function encodeBitmap (held: (i: number) => boolean, n: number): string {
  const b = Buffer.alloc(Math.ceil(n / 8))
  for (let i = 0; i < n; i++) if (held(i)) b[i >> 3] = (b[i >> 3] as number) | (1 << (i & 7))
  return b.toString('base64url')
}

export function decodeBitmap (s: unknown, n: number): (i: number) => boolean {
  const b = typeof s === 'string' ? Buffer.from(s, 'base64url') : Buffer.alloc(0)
  return (i) => i < n && ((b[i >> 3] ?? 0) & (1 << (i & 7))) !== 0
}
