/**
 * The bare baselines of bench:relay (issue 15), run in the bench's own process in the same run:
 * - bareLevelWrite: the same kind of envelopes written to a fresh LevelDB in fsynced batches (what storing
 *   a drained mailbox costs with nothing else around it);
 * - bareCircuit: libp2p request/ack through the same relay's circuit between two bare hosts (TCP + Noise +
 *   yamux, circuit-relay-v2 transport), the receiver acking each request after an fsynced LevelDB batch
 *   that holds every request that arrived meanwhile (group commit), `inFlight` requests outstanding.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Level } from 'level'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Envelope } from '../../core/protocol/envelope.js'
import { benchKey } from './relay-idle-client.js'

/** ms to write `envelopes` (by id) to a fresh LevelDB in `dir`, `batch` per fsynced write. */
export async function bareLevelWrite (dir: string, envelopes: Envelope[], batch: number): Promise<number> {
  const db = new Level<string, string>(join(dir, 'bare-level'))
  await db.open()
  const t0 = performance.now()
  for (let i = 0; i < envelopes.length; i += batch) {
    await db.batch(envelopes.slice(i, i + batch).map(e => ({ type: 'put' as const, key: e.id, value: JSON.stringify(e) })), { sync: true })
  }
  const ms = performance.now() - t0
  await db.close()
  return ms
}

/** the two bare hosts' keys (the bench allow-lists them at the relay) */
export const BARE_KEYS = [-10, -11]
export async function barePeerIds (): Promise<string[]> {
  return await Promise.all(BARE_KEYS.map(async i => peerIdFromPrivateKey(await benchKey(i)).toString()))
}

const PROTOCOL = '/parley-bench/bare-ack/1.0.0'
/** how long bareCircuit waits for all its acks */
const ACK_DEADLINE_MS = 120_000

async function host (i: number, relayAddr: string, listen: boolean): Promise<Libp2p> {
  return await createLibp2p({
    privateKey: await benchKey(i),
    addresses: { listen: listen ? [`${relayAddr}/p2p-circuit`] : [] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
}

const u32 = (n: number): Uint8Array => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n); return b }
type Chunk = Uint8Array | { subarray: () => Uint8Array }
const bytesOf = (d: Chunk): Uint8Array => d instanceof Uint8Array ? d : d.subarray()

/** Reads length-prefixed frames (4-byte length) from chunks. */
class Frames {
  private buf = new Uint8Array(0)
  push (chunk: Uint8Array): Uint8Array[] {
    const b = new Uint8Array(this.buf.length + chunk.length); b.set(this.buf); b.set(chunk, this.buf.length)
    const out: Uint8Array[] = []
    let at = 0
    while (b.length - at >= 4) {
      const len = new DataView(b.buffer, b.byteOffset + at).getUint32(0)
      if (b.length - at - 4 < len) break
      out.push(b.subarray(at + 4, at + 4 + len)); at += 4 + len
    }
    this.buf = b.slice(at)
    return out
  }
}

/** Messages/s and ack round trip p50 of `count` requests of `size` bytes through the relay's circuit, `inFlight` outstanding. */
export async function bareCircuit (dir: string, relayAddr: string, count: number, size: number, inFlight: number): Promise<{ perSecond: number, p50Ms: number }> {
  const [a, b] = [await host(BARE_KEYS[0]!, relayAddr, false), await host(BARE_KEYS[1]!, relayAddr, true)]
  const db = new Level<string, Uint8Array>(join(dir, 'bare-circuit'), { valueEncoding: 'view' })
  await db.open()
  try {
    const deadline = Date.now() + 30_000
    while (!b.getMultiaddrs().some(m => m.toString().includes('/p2p-circuit'))) {
      if (Date.now() > deadline) throw new Error('bare host: no reservation at the relay')
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    // receiver: every request that arrived while the last batch was being written goes into the next one
    await b.handle(PROTOCOL, (stream) => {
      const frames = new Frames()
      let pending: Uint8Array[] = []
      let writing = false
      const commit = async (): Promise<void> => {
        writing = true
        while (pending.length > 0) {
          const batch = pending; pending = []
          await db.batch(batch.map(f => ({ type: 'put' as const, key: String(new DataView(f.buffer, f.byteOffset).getUint32(0)), value: f })), { sync: true })
          const acks = new Uint8Array(8 * batch.length)
          batch.forEach((f, i) => { acks.set(u32(4), i * 8); acks.set(f.subarray(0, 4), i * 8 + 4) })
          stream.send(acks)
        }
        writing = false
      }
      stream.addEventListener('message', (evt) => {
        pending.push(...frames.push(bytesOf(evt.data as Chunk)))
        if (!writing) void commit()
      })
    }, { runOnLimitedConnection: true })
    const target = b.getMultiaddrs().find(m => m.toString().includes('/p2p-circuit'))!
    const conn = await a.dial(multiaddr(target.toString()))
    const stream = await conn.newStream(PROTOCOL, { runOnLimitedConnection: true })
    const sentAt = new Map<number, number>()
    const rtt: number[] = []
    const frames = new Frames()
    let next = 0
    let acked = 0
    const payload = randomBytes(size - 4)
    const t0 = performance.now()
    let timer: NodeJS.Timeout | undefined
    await new Promise<void>((resolve, reject) => {
      // the circuit can fail (relay drops it, a host stops): the bench stops with an error instead of waiting
      timer = setTimeout(() => { reject(new Error(`bare circuit: ${acked}/${count} acked after ${ACK_DEADLINE_MS / 1000} s`)) }, ACK_DEADLINE_MS)
      stream.addEventListener('close', () => { if (acked < count) reject(new Error(`bare circuit: stream closed at ${acked}/${count} acked`)) })
      const send = (): void => {
        while (next < count && next - acked < inFlight) {
          const f = new Uint8Array(4 + size); f.set(u32(size)); f.set(u32(next), 4); f.set(payload, 8)
          sentAt.set(next, performance.now()); next++
          stream.send(f)
        }
      }
      stream.addEventListener('message', (evt) => {
        for (const f of frames.push(bytesOf(evt.data as Chunk))) {
          const n = new DataView(f.buffer, f.byteOffset).getUint32(0)
          rtt.push(performance.now() - (sentAt.get(n) ?? 0)); sentAt.delete(n); acked++
        }
        if (acked >= count) resolve(); else send()
      })
      send()
    }).finally(() => { clearTimeout(timer) })
    const ms = performance.now() - t0
    rtt.sort((x, y) => x - y)
    await stream.close().catch(() => {})
    return { perSecond: Math.round(count / ms * 1000), p50Ms: Number((rtt[Math.floor(rtt.length / 2)] ?? 0).toFixed(2)) }
  } finally {
    await db.close()
    await a.stop(); await b.stop()
  }
}
