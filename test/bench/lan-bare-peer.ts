/**
 * The bare baselines of `npm run bench` (lan-latency.ts), run inside a namespace:
 *   serve PORT DIR [IP]: a libp2p host (TCP + Noise + yamux, as Parley's host sets them up) whose
 *     receiver group-commits: every request is staged into the current LevelDB batch, each batch is
 *     written with `sync: true`, and the acks of a batch go out once it is on disk. With one request
 *     in flight that is one fsync per request. Prints "ready ADDR".
 *   send ADDR DIR lat COUNT: request/ack one at a time, with a synced LevelDB put at the sender first
 *     (the "fsync at sender and receiver" baseline); prints "result {ms: [...]}".
 *   send ADDR DIR burst COUNT INFLIGHT: COUNT requests, INFLIGHT in flight (no sender fsync), after a
 *     "go" line on stdin; prints "result {ms}" (go → last ack).
 * Requests are 4-byte big-endian length + a body of BODY_BYTES (about a sealed short text).
 */
import '../../core/polyfill.js'
import { createInterface } from 'node:readline'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { Level } from 'level'

const [mode, ...args] = process.argv.slice(2)
const PROTO = '/bench/ack/1.0.0'
const BODY_BYTES = 900
const SYNC = { sync: true }

interface BenchStream {
  send: (b: Uint8Array) => boolean
  onDrain: () => Promise<void>
  addEventListener: (t: 'message', fn: (e: { data: Uint8Array | { subarray: () => Uint8Array } }) => void) => void
}

/** Calls `fn` with each complete length-prefixed frame arriving on `stream`. */
function frames (stream: BenchStream, fn: (frame: Buffer) => void): void {
  let buf = Buffer.alloc(0)
  stream.addEventListener('message', (evt) => {
    const chunk = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
    buf = buf.byteLength === 0 ? Buffer.from(chunk) : Buffer.concat([buf, chunk])
    while (buf.byteLength >= 4) {
      const len = buf.readUInt32BE(0)
      if (buf.byteLength < 4 + len) break
      fn(buf.subarray(4, 4 + len))
      buf = buf.subarray(4 + len)
    }
  })
}

function frame (body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + body.byteLength)
  out.writeUInt32BE(body.byteLength, 0)
  body.copy(out, 4)
  return out
}

const host = async (listen?: string): Promise<Awaited<ReturnType<typeof createLibp2p>>> => await createLibp2p({
  ...(listen !== undefined ? { addresses: { listen: [listen] } } : {}),
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()]
})

if (mode === 'serve') {
  const [port, dir, ip = '0.0.0.0'] = args as [string, string, string | undefined]
  const db = new Level<string, Buffer>(dir, { valueEncoding: 'buffer' })
  await db.open()
  let ops: Array<{ type: 'put', key: string, value: Buffer }> = []
  let acks: Array<() => void> = []
  let flushing = false
  const flush = async (): Promise<void> => {
    flushing = true
    while (ops.length > 0) {
      const batch = ops; const done = acks
      ops = []; acks = []
      await db.batch(batch, SYNC)
      for (const ack of done) ack()
    }
    flushing = false
  }
  const node = await host(`/ip4/${ip}/tcp/${port}`)
  await node.handle(PROTO, (raw) => {
    const stream = raw as unknown as BenchStream
    frames(stream, (f) => {
      const id = f.subarray(0, 16).toString('hex')
      ops.push({ type: 'put', key: id, value: Buffer.from(f) })
      acks.push(() => { stream.send(frame(f.subarray(0, 16))) })
      if (!flushing) void flush()
    })
  }, { maxInboundStreams: 64 })
  console.log(`ready ${node.getMultiaddrs().map(String).find(a => ip === '127.0.0.1' || !a.includes('127.0.0.1')) ?? ''}`)
} else if (mode === 'send') {
  const [addr, dir, kind, countArg, inflightArg] = args as [string, string, 'lat' | 'burst', string, string | undefined]
  const count = Number(countArg)
  const db = new Level<string, Buffer>(dir, { valueEncoding: 'buffer' })
  await db.open()
  const node = await host()
  const stream = await node.dialProtocol(multiaddr(addr), PROTO) as unknown as BenchStream
  const waiting = new Map<string, () => void>()
  frames(stream, (f) => { const id = f.toString('hex'); waiting.get(id)?.(); waiting.delete(id) })
  let n = 0
  const request = async (sync: boolean): Promise<void> => {
    const body = Buffer.alloc(BODY_BYTES, 1)
    body.writeUInt32BE(process.pid, 0); body.writeUInt32BE(n++, 4); body.writeDoubleBE(Math.random(), 8)
    const id = body.subarray(0, 16).toString('hex')
    if (sync) await db.put(id, body, SYNC)
    const acked = new Promise<void>(resolve => { waiting.set(id, resolve) })
    if (!stream.send(frame(body))) await stream.onDrain()
    await acked
  }
  for (let i = 0; i < 20; i++) await request(kind === 'lat') // warm up
  if (kind === 'lat') {
    const ms: number[] = []
    for (let i = 0; i < count; i++) { const t0 = performance.now(); await request(true); ms.push(performance.now() - t0) }
    console.log(`result ${JSON.stringify({ ms })}`)
  } else {
    console.log('ready')
    const lines = createInterface({ input: process.stdin })
    await new Promise<void>(resolve => { lines.once('line', () => { resolve() }) })
    const t0 = performance.now()
    let next = 0
    const lane = async (): Promise<void> => { while (next < count) { next++; await request(false) } }
    await Promise.all(Array.from({ length: Number(inflightArg ?? 32) }, lane))
    console.log(`result ${JSON.stringify({ ms: performance.now() - t0 })}`)
  }
  await node.stop()
  await db.close()
  process.exit(0)
} else {
  console.error('usage: lan-bare-peer serve PORT DIR | send ADDR DIR lat|burst COUNT [INFLIGHT]')
  process.exit(2)
}
