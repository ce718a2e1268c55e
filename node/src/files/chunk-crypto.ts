/**
 * Chunk encryption and hash checks in worker threads (the `file-chunks.ts`
 * construction, byte for byte: AES-256-GCM, nonce = 4 zero bytes + the chunk
 * index as u64 BE, AAD = "parley/file/v1" + file id + chunk count; SHA-256 of
 * the sealed chunk). The buffers move to the worker and back (transferred,
 * not copied), so the event loop neither copies a chunk nor computes on it:
 * it only sends and receives. WebCrypto, which file-chunks.ts uses, copies
 * every input on the event loop and allocates its output there; on a file
 * transfer that was most of the receiver's time (profile in PERFORMANCE.md).
 * Without workers (they failed to start) the same calls run on WebCrypto.
 */
import { Worker } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
import { ParleyError } from '../../../core/errors.js'
import { chunkMatches, decryptChunk, encryptChunk, sha256, type ChunkContext } from '../../../core/protocol/file-chunks.js'

/** a chunk's keys: the raw content key for the workers, the WebCrypto key for the fallback */
export interface ChunkKeys extends ChunkContext { raw: Uint8Array }

const WORKER = `
const { parentPort } = require('node:worker_threads')
const { createCipheriv, createDecipheriv, createHash } = require('node:crypto')
const LABEL = Buffer.from('parley/file/v1')
const nonce = (i) => { const n = Buffer.alloc(12); n.writeBigUInt64BE(BigInt(i), 4); return n }
const aads = new Map()
const aad = (f, n) => {
  const k = f + ':' + n
  let a = aads.get(k)
  if (a === undefined) {
    const id = Buffer.from(f, 'base64url')
    a = Buffer.alloc(LABEL.length + id.length + 4)
    LABEL.copy(a, 0); id.copy(a, LABEL.length); a.writeUInt32BE(n, LABEL.length + id.length)
    if (aads.size > 64) aads.clear()
    aads.set(k, a)
  }
  return a
}
const own = (b) => b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b)
parentPort.on('message', (m) => {
  try {
    const data = Buffer.from(m.buf, m.off, m.len)
    if (m.op === 'seal') {
      const c = createCipheriv('aes-256-gcm', m.key, nonce(m.i))
      c.setAAD(aad(m.f, m.n))
      const ct = c.update(data)
      c.final()
      const sealed = new Uint8Array(ct.length + 16)
      sealed.set(ct, 0)
      sealed.set(c.getAuthTag(), ct.length)
      const hash = createHash('sha256').update(sealed).digest()
      if (m.hashOnly) parentPort.postMessage({ id: m.id, hash })
      else parentPort.postMessage({ id: m.id, hash, out: sealed }, [sealed.buffer])
      return
    }
    const hash = createHash('sha256').update(data).digest()
    if (!hash.equals(Buffer.from(m.hash))) { parentPort.postMessage({ id: m.id, bad: 'hash' }); return }
    if (data.length < 16) { parentPort.postMessage({ id: m.id, bad: 'short' }); return }
    const d = createDecipheriv('aes-256-gcm', m.key, nonce(m.i))
    d.setAAD(aad(m.f, m.n))
    d.setAuthTag(data.subarray(data.length - 16))
    const plain = d.update(data.subarray(0, data.length - 16))
    d.final()
    const out = own(plain)
    parentPort.postMessage({ id: m.id, out }, [out.buffer])
  } catch (err) {
    parentPort.postMessage({ id: m.id, bad: String((err && err.message) || err) })
  }
})
`

interface Reply { id: number, hash?: Uint8Array, out?: Uint8Array, bad?: string }
interface Slot { w: Worker, busy: number }

/** Buffers this size or more are handed to the worker (its own ArrayBuffer, or the frame it came in); smaller ones are copied. */
const TRANSFER_MIN = 64 * 1024
/** how far into its ArrayBuffer a chunk may start and still be handed over whole (a frame's header); it must end at the buffer's end */
const TRANSFER_SLACK = 64 * 1024

export class ChunkCrypto {
  private slots: Slot[] | undefined
  private failed = false
  /** set by close(): no worker is started again and every call is refused */
  private closed = false
  private readonly pending = new Map<number, { resolve: (r: Reply) => void, reject: (e: Error) => void }>()
  private nextId = 1

  constructor (private readonly size = Math.max(1, Math.min(2, availableParallelism()))) {}

  private start (): Slot[] | undefined {
    if (this.closed) throw new ParleyError('ERR_STREAM_CLOSED', 'the file service is stopping')
    if (this.slots !== undefined || this.failed) return this.slots
    try {
      this.slots = Array.from({ length: this.size }, () => {
        const w = new Worker(WORKER, { eval: true })
        w.on('message', (r: Reply) => {
          const p = this.pending.get(r.id)
          this.pending.delete(r.id)
          p?.resolve(r)
        })
        w.on('error', (err) => { this.broken(err) })
        w.on('exit', (code) => { if (this.slots?.some(x => x.w === w) === true) this.broken(new Error(`a chunk worker exited (${code})`)) })
        // after the listeners (adding a 'message' listener refs the worker again): an idle worker
        // never keeps the process alive; call() refs it only while it has calls in flight
        w.unref()
        return { w, busy: 0 }
      })
    } catch {
      this.failed = true
      this.slots = undefined
    }
    return this.slots
  }

  /** a worker died: every call in flight fails (its transfer is retried by the fetch), the next ones use WebCrypto */
  private broken (err: Error): void {
    this.failed = true
    const slots = this.slots ?? []
    this.slots = undefined
    for (const s of slots) void s.w.terminate()
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }

  private async call (msg: Record<string, unknown>, data: Uint8Array): Promise<Reply> {
    const slots = this.start()
    if (slots === undefined) throw new Error('no chunk workers')
    const slot = slots.reduce((a, b) => b.busy < a.busy ? b : a)
    const id = this.nextId++
    const reply = new Promise<Reply>((resolve, reject) => { this.pending.set(id, { resolve, reject }) })
    if (slot.busy++ === 0) slot.w.ref()
    try {
      const whole = data.byteLength >= TRANSFER_MIN && data.byteOffset <= TRANSFER_SLACK &&
        data.byteOffset + data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer
      try {
        if (!whole) throw new Error('copy')
        slot.w.postMessage({ ...msg, id, buf: data.buffer, off: data.byteOffset, len: data.byteLength }, [data.buffer])
      } catch {
        // not ours to hand over (a pooled or shared buffer): a copy goes instead
        const copy = new Uint8Array(data)
        slot.w.postMessage({ ...msg, id, buf: copy.buffer, off: 0, len: copy.byteLength }, [copy.buffer])
      }
      return await reply
    } finally { if (--slot.busy === 0) slot.w.unref() }
  }

  /**
   * Encrypts chunk `i`; its hash, and the sealed bytes unless `hashOnly`.
   * `plain` is handed to a worker: the caller must not use it afterwards.
   */
  async seal (k: ChunkKeys, i: number, plain: Uint8Array, hashOnly = false): Promise<{ sealed?: Uint8Array, hash: Uint8Array }> {
    if (this.start() === undefined) {
      const sealed = await encryptChunk(k, i, plain)
      return { ...(hashOnly ? {} : { sealed }), hash: await sha256(sealed) }
    }
    const r = await this.call({ op: 'seal', key: k.raw, f: k.fileId, n: k.count, i, hashOnly }, plain)
    if (r.bad !== undefined || r.hash === undefined) throw new Error(`could not encrypt chunk ${i}: ${r.bad ?? 'no answer'}`)
    return { ...(r.out !== undefined ? { sealed: r.out } : {}), hash: new Uint8Array(r.hash) }
  }

  /**
   * The plaintext of sealed chunk `i` if it hashes to `hash` and decrypts under the file's key, else
   * undefined. `sealed` is handed to a worker: the caller must not use it afterwards.
   */
  async open (k: ChunkKeys, i: number, sealed: Uint8Array, hash: Uint8Array): Promise<Uint8Array | undefined> {
    if (this.start() === undefined) {
      if (!(await chunkMatches(sealed, hash))) return undefined
      return await decryptChunk(k, i, sealed).catch(() => undefined)
    }
    const r = await this.call({ op: 'open', key: k.raw, f: k.fileId, n: k.count, i, hash: new Uint8Array(hash) }, sealed)
    return r.bad === undefined ? r.out : undefined
  }

  /** Stops the workers; afterwards every seal/open is refused (ERR_STREAM_CLOSED) and no worker starts again. */
  async close (): Promise<void> {
    this.closed = true
    const slots = this.slots ?? []
    this.slots = undefined
    await Promise.all(slots.map(async s => await s.w.terminate()))
    for (const p of this.pending.values()) p.reject(new ParleyError('ERR_STREAM_CLOSED', 'the file service is stopping'))
    this.pending.clear()
  }
}
