/**
 * Request/response over one length-prefixed stream. Either end may send
 * requests; requests are handled one at a time in arrival order (so deliveries
 * are stored in send order), responses are matched by `rid`. Oversized or
 * malformed frames reset the stream and fail pending calls; the process and
 * the other streams are untouched.
 */
import { ParleyError, RemoteError, toParleyError } from '../errors.js'
import { DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES, FrameDecoder, encodeFrame } from '../protocol/frames.js'
import { rpcFrameParser, type RpcFrame, type RpcMethod } from '../protocol/rpc-frame.js'
import type { ByteBudget } from './budget.js'
import { SerialQueue, throwIfAborted, withTimeout, type AbortOptions } from '../util/abort.js'
import type { RawStream } from './stream.js'
import type { Logger } from '../util/log.js'

/**
 * Answers one request. A plain value is the answer; an `AckAfterWrite` is
 * answered when its durable write settles (see there).
 */
export type RpcHandler<M extends string = RpcMethod> = (method: M, body: unknown) => Promise<unknown>

export interface RpcChannelInit {
  /** @default 1 MiB */
  maxFrameBytes?: number
  /** @default 15000 */
  callTimeoutMs?: number
  /**
   * a frame begun that gets no byte for this long is reset; once its length is known it must also be
   * complete within this long plus its length at minFrameBytesPerSecond. @default 20000
   */
  frameTimeoutMs?: number
  /** the slowest link a frame may arrive over. @default 8192 (8 KiB/s: a 1 MiB frame may take 20 s + 128 s) */
  minFrameBytesPerSecond?: number
}

export const DEFAULT_CALL_TIMEOUT_MS = 15_000
/** the stall bound and the fixed part of a frame's deadline; an unfinished frame holds memory, so it does not wait forever */
export const DEFAULT_FRAME_TIMEOUT_MS = 20_000
/** the slowest honest link a frame's deadline allows for (8 KiB/s), on top of DEFAULT_FRAME_TIMEOUT_MS */
export const DEFAULT_MIN_FRAME_BYTES_PER_SECOND = 8192
const UNBOUNDED: ByteBudget = { reserve: () => true, release: () => {} }

interface Pending { resolve: (v: unknown) => void, reject: (e: Error) => void }

export interface RpcChannelOptions<M extends string> extends RpcChannelInit {
  /** the methods this channel's protocol has: a request for any other resets the stream (no default: each protocol names its own) */
  methods: readonly M[]
  /** where the bytes of partial frames and of requests not handled yet are counted (budget.ts). @default unbounded */
  budget?: ByteBudget
}

export class RpcChannel<M extends string = RpcMethod> {
  private readonly decoder: FrameDecoder
  private readonly parse: (bytes: Uint8Array) => RpcFrame<M>
  private readonly pending = new Map<number, Pending>()
  private readonly inbound = new SerialQueue()
  private readonly writes = new SerialQueue()
  /** the frames waiting for this turn's chunk (see write) */
  private cork?: { frames: Uint8Array[], sent: Promise<void> }
  private nextRid = 1
  private closedWith?: ParleyError
  private readonly maxFrameBytes: number
  private readonly callTimeoutMs: number
  private readonly frameTimeoutMs: number
  private readonly minFrameBytesPerSecond: number
  private readonly budget: ByteBudget
  /** bytes reserved from the budget: the partial frame in the decoder plus requests not handled yet */
  private held = 0
  private queuedBytes = 0
  private frameTimer?: NodeJS.Timeout
  private stallTimer?: NodeJS.Timeout

  constructor (
    private readonly stream: RawStream,
    private readonly handler: RpcHandler<M> | undefined,
    private readonly log: Logger,
    init: RpcChannelOptions<M>
  ) {
    this.parse = rpcFrameParser(init.methods)
    this.maxFrameBytes = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    this.callTimeoutMs = init.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS
    this.frameTimeoutMs = init.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS
    this.minFrameBytesPerSecond = init.minFrameBytesPerSecond ?? DEFAULT_MIN_FRAME_BYTES_PER_SECOND
    this.budget = init.budget ?? UNBOUNDED
    this.decoder = new FrameDecoder(this.maxFrameBytes)
    stream.addEventListener('message', (evt) => {
      const chunk = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
      this.onData(chunk)
    })
    stream.addEventListener('close', (evt) => {
      this.fail(new ParleyError('ERR_STREAM_CLOSED', 'stream closed', { cause: evt.error }))
    })
  }

  get isOpen (): boolean { return this.closedWith === undefined }

  async call (method: M, body: unknown, options: AbortOptions = {}): Promise<unknown> {
    if (this.closedWith !== undefined) throw this.closedWith
    throwIfAborted(options.signal)
    const rid = this.nextRid++
    const signal = withTimeout(options.signal, this.callTimeoutMs)
    const result = new Promise<unknown>((resolve, reject) => { this.pending.set(rid, { resolve, reject }) })
    // if the write fails, the channel may reject this too while nobody awaits it
    result.catch(() => {})
    const onAbort = (): void => {
      const p = this.pending.get(rid)
      this.pending.delete(rid)
      const timedOut = (signal.reason as Error | undefined)?.name === 'TimeoutError'
      p?.reject(new ParleyError(timedOut ? 'ERR_TIMEOUT' : 'ERR_ABORTED', `${method} ${timedOut ? 'timed out' : 'aborted'}`))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      // a stalled write must not hold the call once the channel has failed (result rejects then)
      await Promise.race([this.write({ v: 1, t: 'req', rid, m: method, body }), result])
      return await result
    } finally {
      signal.removeEventListener('abort', onAbort)
      this.pending.delete(rid)
    }
  }

  /** Resets the stream: pending calls fail with `err`. */
  abort (err: ParleyError): void {
    const open = this.closedWith === undefined
    // fail first: the stream's close event (fired synchronously by abort) must not win with ERR_STREAM_CLOSED
    this.fail(err)
    if (open) this.stream.abort(err)
  }

  async close (): Promise<void> {
    this.fail(new ParleyError('ERR_STREAM_CLOSED', 'channel closed locally'))
    await this.stream.close().catch(() => { this.stream.abort(new Error('close failed')) })
  }

  private fail (err: ParleyError): void {
    if (this.closedWith === undefined) this.closedWith = err
    this.clearFrameTimers()
    this.budget.release(this.held)
    this.held = 0
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }

  /**
   * Frames written in the same turn of the event loop (the acks of one group
   * commit, a window of deliveries) are corked: sent as one chunk, so one
   * encryption and one socket write carry all of them. The bytes on the wire
   * are the same frames, back to back.
   */
  private async write (frame: RpcFrame<M>): Promise<void> {
    const bytes = encodeFrame(Buffer.from(JSON.stringify(frame)), this.maxFrameBytes)
    if (this.cork !== undefined) {
      this.cork.frames.push(bytes)
      await this.cork.sent
      return
    }
    const frames = [bytes]
    const sent = new Promise<void>((resolve, reject) => {
      process.nextTick(() => {
        // frames written from here on go into the next chunk
        this.cork = undefined
        this.writes.run(async () => {
          if (this.closedWith !== undefined) throw this.closedWith
          const chunk = frames.length === 1 ? frames[0] as Uint8Array : Buffer.concat(frames)
          if (!this.stream.send(chunk)) await this.stream.onDrain({ signal: AbortSignal.timeout(this.callTimeoutMs) })
        }).then(resolve, reject)
      })
    })
    sent.catch(() => {})
    this.cork = { frames, sent }
    await sent
  }

  private onData (chunk: Uint8Array): void {
    if (this.closedWith !== undefined) return
    let frames: Array<{ frame: RpcFrame<M>, bytes: number }>
    try {
      frames = this.decoder.push(chunk).map(f => ({ frame: this.parse(f), bytes: f.byteLength + FRAME_HEADER_BYTES }))
    } catch (err) {
      const e = toParleyError(err, 'ERR_MALFORMED_FRAME')
      this.log.warn('resetting stream after bad input', { code: e.code, err: e.message })
      this.abort(e)
      return
    }
    for (const f of frames) if (f.frame.t === 'req') this.queuedBytes += f.bytes
    if (!this.account()) return
    this.armFrameDeadline(frames.length > 0)
    for (const { frame, bytes } of frames) {
      if (frame.t === 'res') {
        const p = this.pending.get(frame.rid)
        if (p === undefined) continue
        if (frame.ok) p.resolve(frame.body)
        else p.reject(new RemoteError(frame.code, frame.message))
        continue
      }
      const req = frame
      void this.inbound.run(async () => {
        const reply = (result: Promise<unknown>): Promise<void> => result.then(
          (body): RpcFrame<M> => ({ v: 1, t: 'res', rid: req.rid, ok: true, body }),
          (err): RpcFrame<M> => {
            const e = toParleyError(err)
            return { v: 1, t: 'res', rid: req.rid, ok: false, code: e.code, message: e.message.slice(0, 1000) }
          }
        ).then(async (f) => {
          try {
            await this.write(f)
          } catch (err) {
            // an answer too large for one frame is replaced by an error the caller can act on
            const e = toParleyError(err)
            if (e.code !== 'ERR_FRAME_TOO_LARGE') return
            await this.write({ v: 1, t: 'res', rid: req.rid, ok: false, code: e.code, message: 'the answer exceeds the frame limit' })
          }
        }).catch(() => {})
        const handled = (async () => {
          if (this.handler === undefined) throw new ParleyError('ERR_NOT_FOUND', 'this end takes no requests')
          return await this.handler(req.m, req.body)
        })()
        const first = await handled.then((v) => ({ v }), () => undefined)
        // handled (an AckAfterWrite holds its own parsed body, not the frame): its bytes no longer count
        this.queuedBytes -= bytes
        this.account()
        // answered when the write settles; the next request is handled meanwhile
        if (first?.v instanceof AckAfterWrite) { void reply(first.v.durable); return }
        await reply(handled)
      })
    }
  }

  /**
   * Holds the budget to what this channel keeps in memory now (partial frame
   * plus requests waiting); a channel that would go over it is reset.
   */
  private account (): boolean {
    if (this.closedWith !== undefined) return false
    const need = this.decoder.bufferedBytes + this.queuedBytes
    if (need > this.held) {
      if (!this.budget.reserve(need - this.held)) {
        this.log.warn('resetting stream: the peer holds too much unprocessed input', { bytes: need })
        this.abort(new ParleyError('ERR_RESOURCE_LIMIT', `the peer sent more unprocessed input (${need} bytes) than its share of the buffers`))
        return false
      }
    } else {
      this.budget.release(this.held - need)
    }
    this.held = need
    return true
  }

  /**
   * Two bounds on a frame begun: no byte for frameTimeoutMs (a stall) resets
   * the stream, and once its 4-byte header gives the length it must be
   * complete within frameTimeoutMs + length / minFrameBytesPerSecond (a
   * deadline, not an idle timeout: trickling bytes does not extend it). So an
   * honest frame over a slow link (8 KiB/s by default) completes, and a held
   * frame is cut. The next frame's clocks start when one completes.
   */
  private armFrameDeadline (completed: boolean): void {
    if (completed || this.decoder.bufferedBytes === 0) {
      clearTimeout(this.frameTimer)
      this.frameTimer = undefined
    }
    clearTimeout(this.stallTimer)
    this.stallTimer = undefined
    if (this.decoder.bufferedBytes === 0) return
    this.stallTimer = setTimeout(() => {
      this.log.warn('resetting stream: frame stalled', { ms: this.frameTimeoutMs, bytes: this.decoder.bufferedBytes })
      this.abort(new ParleyError('ERR_TIMEOUT', `a frame got no data for ${this.frameTimeoutMs} ms`))
    }, this.frameTimeoutMs)
    this.stallTimer.unref()
    const length = this.decoder.partialFrameLength
    if (this.frameTimer !== undefined || length === undefined) return
    const ms = this.frameTimeoutMs + Math.ceil(length * 1000 / this.minFrameBytesPerSecond)
    this.frameTimer = setTimeout(() => {
      this.log.warn('resetting stream: frame not completed in time', { ms, bytes: this.decoder.bufferedBytes, length })
      this.abort(new ParleyError('ERR_TIMEOUT', `a ${length}-byte frame was not completed within ${ms} ms`))
    }, ms)
    this.frameTimer.unref()
  }

  private clearFrameTimers (): void {
    clearTimeout(this.frameTimer)
    clearTimeout(this.stallTimer)
    this.frameTimer = undefined
    this.stallTimer = undefined
  }
}

/**
 * The ack-after-durable-write contract as a type: a handler that returns this
 * has checked the request (in arrival order) and started its durable write;
 * the channel moves on to the next request at once and answers with
 * `durable`'s value only once it settles, so no ack precedes the write.
 */
export class AckAfterWrite<T> {
  constructor (readonly durable: Promise<T>) {
    // the channel (or the mailbox drain) reports a failed write; never an unhandled rejection
    durable.catch(() => {})
  }
}

/** The value a handler's answer settles with: a plain value at once, an `AckAfterWrite` after its write. */
export async function answered<T> (answer: T | AckAfterWrite<T>): Promise<T> {
  return answer instanceof AckAfterWrite ? await answer.durable : answer
}

/** The code a remote end answered with (a `RemoteError`), undefined for any other error. */
export function remoteCode (err: unknown): string | undefined {
  return err instanceof RemoteError ? err.remoteCode : undefined
}
