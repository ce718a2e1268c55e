import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { RpcChannel, type RpcHandler, type RpcChannelOptions } from '../../../../core/rpc/channel.js'
import { RPC_METHODS, type RpcMethod } from '../../../../core/protocol/rpc-frame.js'
import { InboundBudget } from '../../../../core/rpc/budget.js'
import { encodeFrame } from '../../../../core/protocol/frames.js'
import { ParleyError } from '../../../../core/errors.js'
import { silentLogger } from '../../../../core/util/log.js'
import { closed, streamPair, type FakeStream } from '../../helpers/fake-stream.js'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const frameOf = (v: unknown): Uint8Array => encodeFrame(new TextEncoder().encode(JSON.stringify(v)))
/** the 4-byte header of a frame of `n` bytes */
const header = (n: number): Uint8Array => { const h = new Uint8Array(4); new DataView(h.buffer).setUint32(0, n); return h }

function rawPeer (init: Partial<RpcChannelOptions<RpcMethod>> = {}, handler?: RpcHandler): { a: RpcChannel, raw: FakeStream } {
  const [sa, raw] = streamPair()
  return { a: new RpcChannel(sa, handler, silentLogger, { methods: RPC_METHODS, ...init }), raw }
}

describe('RpcChannel read deadline', () => {
  // the channel's deadline timer is unref'd (it must not keep a process alive): keep the test's loop alive
  let keepAlive: NodeJS.Timeout
  before(() => { keepAlive = setInterval(() => {}, 1000) })
  after(() => { clearInterval(keepAlive) })

  it('a stalled frame (no byte for frameTimeoutMs) resets the stream with ERR_TIMEOUT, long before its deadline', async () => {
    // a 100 000-byte frame has 40 ms + 12.2 s at 8 KiB/s to complete, but no byte for 40 ms is a stall
    const { a, raw } = rawPeer({ frameTimeoutMs: 40 })
    const reset = closed(raw)
    const started = Date.now()
    raw.send(header(100_000)); raw.send(new Uint8Array(10))
    const reason = await reset
    assert.equal((reason as ParleyError).code, 'ERR_TIMEOUT')
    assert.match((reason as Error).message, /no data/)
    assert.ok(Date.now() - started < 5000)
    assert.equal(a.isOpen, false)
  })

  it('is a deadline, not an idle timeout: trickling bytes does not keep a frame alive', async () => {
    // 1000 bytes: 60 ms + 123 ms at 8 KiB/s; one byte every 10 ms never stalls but never completes in time
    const { a, raw } = rawPeer({ frameTimeoutMs: 60 })
    const reset = closed(raw)
    raw.send(header(1000))
    const started = Date.now()
    const trickle = setInterval(() => { if (raw.status === 'open') raw.send(new Uint8Array(1)) }, 10)
    try {
      const reason = await reset
      assert.equal((reason as ParleyError).code, 'ERR_TIMEOUT')
      assert.match((reason as Error).message, /not completed within 183 ms/)
      assert.ok(Date.now() - started < 2000)
    } finally { clearInterval(trickle) }
    assert.equal(a.isOpen, false)
  })

  it('the deadline restarts with each frame: frames spread over five deadlines keep the stream', async () => {
    // a 300 ms deadline; 10 frames over ~1.5 s, each completed within ~10 ms of its first byte. A deadline that
    // did not restart per frame would cut the stream at 300 ms. (Each second chunk's timer is set before the
    // channel's, so a loaded machine delays both and keeps their order.)
    const { a, raw } = rawPeer({ frameTimeoutMs: 300 }, async () => 'ok')
    const started = Date.now()
    for (let i = 0; i < 10; i++) {
      const f = frameOf({ v: 1, t: 'req', rid: i + 1, m: 'getHave', body: { conv: 'x' } })
      // split after the header, so each frame's length is known and its deadline runs
      raw.send(f.subarray(0, 10)); await sleep(10); raw.send(f.subarray(10))
      await sleep(140)
    }
    assert.ok(Date.now() - started >= 1400)
    // idle for longer than the deadline between frames
    await sleep(500)
    assert.equal(a.isOpen, true)
    assert.equal(raw.status, 'open')
  })

  it('a slow but progressing frame completes: its deadline grows with its length (8 KiB/s)', async () => {
    // a ~8 KiB answer in 16 chunks over ~640 ms: longer than frameTimeoutMs (300 ms), well within
    // 300 ms + 8 KiB at 8 KiB/s (~1.3 s); no gap reaches the 300 ms stall bound
    const { a, raw } = rawPeer({ frameTimeoutMs: 300 })
    const answer = a.call('getHave', { conv: 'x' })
    const body = { pad: 'x'.repeat(8000) }
    const f = frameOf({ v: 1, t: 'res', rid: 1, ok: true, body })
    const started = Date.now()
    const step = Math.ceil(f.byteLength / 16)
    for (let at = 0; at < f.byteLength; at += step) { raw.send(f.subarray(at, at + step)); await sleep(40) }
    assert.deepEqual(await answer, body)
    assert.ok(Date.now() - started > 300)
    assert.equal(a.isOpen, true)
  })
})

describe('RpcChannel input budget', () => {
  it('a peer whose partial frames on several streams exceed its share gets the stream that goes over reset', async () => {
    const budget = new InboundBudget({ perPeerBytes: 10_000, totalBytes: 1_000_000 })
    const peers = [0, 1, 2].map(() => rawPeer({ budget: budget.for('evil') }))
    const resets = peers.map(p => closed(p.raw))
    for (const p of peers) { p.raw.send(header(900_000)); p.raw.send(new Uint8Array(4000)) }
    await sleep(10)
    // two streams fit (8008 bytes), the third goes over and is reset with ERR_RESOURCE_LIMIT
    assert.deepEqual(peers.map(p => p.a.isOpen), [true, true, false])
    assert.equal(((await resets[2]) as ParleyError).code, 'ERR_RESOURCE_LIMIT')
    assert.equal(budget.usedBytes, 8008)
    // another peer has its own share
    const other = rawPeer({ budget: budget.for('honest') })
    other.raw.send(header(900_000)); other.raw.send(new Uint8Array(4000))
    await sleep(10)
    assert.equal(other.a.isOpen, true)
    // a reset stream gives its bytes back
    peers[0]!.a.abort(new ParleyError('ERR_STREAM_CLOSED', 'test'))
    assert.equal(budget.usedBytes, 8008)
  })

  it('requests queued behind a slow handler count until handled, then are released', async () => {
    const budget = new InboundBudget({ perPeerBytes: 1_000, totalBytes: 1_000_000 })
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const { a, raw } = rawPeer({ budget: budget.for('p') }, async () => { await gate; return 'ok' })
    const f = frameOf({ v: 1, t: 'req', rid: 1, m: 'getHave', body: { conv: 'x'.repeat(100) } })
    for (let i = 0; i < 5; i++) raw.send(f)
    await sleep(10)
    assert.equal(budget.usedBytes, 5 * f.byteLength)
    for (let i = 0; i < 5; i++) raw.send(f)
    await sleep(10)
    // the queue went over the 1000-byte share
    assert.equal(a.isOpen, false)
    assert.equal(budget.usedBytes, 0)
    release()
  })

  it('the total bound holds across peers (above their floors)', async () => {
    const budget = new InboundBudget({ perPeerBytes: 10_000, totalBytes: 12_000, floorBytes: 1000 })
    const chans = ['a', 'b', 'c'].map(p => rawPeer({ budget: budget.for(p) }))
    for (const c of chans) { c.raw.send(header(900_000)); c.raw.send(new Uint8Array(6000)) }
    await sleep(10)
    assert.deepEqual(chans.map(c => c.a.isOpen), [true, true, false])
    assert.ok(budget.usedBytes <= 12_000 + 3 * 1000)
  })

  it('nine identities holding partial frames up to their shares do not starve an honest peer\'s small frame', async () => {
    // the defaults: 8 MiB per peer, 64 MiB in all, a 256 KiB floor per peer
    const budget = new InboundBudget()
    // ten identities, eight streams each, each stream holding an unfinished 1 MiB frame: 80 MiB asked for
    const attackers = Array.from({ length: 10 * 8 }, (_, i) => rawPeer({ budget: budget.for(`evil${Math.floor(i / 8)}`) }))
    const chunk = new Uint8Array(1024 * 1024 - 4)
    for (const at of attackers) { at.raw.send(header(1024 * 1024)); at.raw.send(chunk) }
    await sleep(20)
    // the attackers filled the total; the streams past it were reset
    const held = attackers.filter(at => at.a.isOpen).length
    assert.ok(held >= 64 && held < 80, `${held} attacking streams held`)
    assert.ok(budget.usedBytes >= 64 * 1024 * 1024)
    // an honest peer's 4 KiB request still passes and is answered
    let served = 0
    const honest = rawPeer({ budget: budget.for('honest') }, async () => { served++; return 'ok' })
    honest.raw.send(frameOf({ v: 1, t: 'req', rid: 1, m: 'getHave', body: { conv: 'x'.repeat(4000) } }))
    await sleep(20)
    assert.equal(honest.a.isOpen, true)
    assert.equal(served, 1)
    for (const at of attackers) at.a.abort(new ParleyError('ERR_STREAM_CLOSED', 'test'))
    await sleep(10)
    assert.equal(budget.usedBytes, 0)
  })
})
