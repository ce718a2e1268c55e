/**
 * The baselines of bench:files, run inside a namespace by files-bench.ts:
 *   tcp-sink PORT / tcp-source HOST PORT BYTES: raw TCP
 *   p2p-sink PORT / p2p-source ADDR BYTES: libp2p TCP + Noise + yamux, one stream, as Parley's host sets them up
 * A sink prints "ready" once listening and "done <bytes> <ms>" once BYTES arrived (from the first byte).
 */
import '../../core/polyfill.js'
import { createServer, connect } from 'node:net'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'

const [mode, ...args] = process.argv.slice(2)
const PROTO = '/bench/blast/1.0.0'
const BLOCK = Buffer.alloc(256 * 1024, 7)

if (mode === 'tcp-sink') {
  const want = Number(args[1])
  createServer((s) => {
    let got = 0; let t0 = 0
    s.on('data', (d) => {
      if (t0 === 0) t0 = performance.now()
      got += d.byteLength
      if (got >= want) { console.log(`done ${got} ${(performance.now() - t0).toFixed(1)}`); process.exit(0) }
    })
  }).listen(Number(args[0]), '0.0.0.0', () => { console.log('ready') })
} else if (mode === 'tcp-source') {
  const [host, port, bytes] = args as [string, string, string]
  const s = connect(Number(port), host)
  let left = Number(bytes)
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, BLOCK.byteLength)
      left -= n
      if (!s.write(n === BLOCK.byteLength ? BLOCK : BLOCK.subarray(0, n))) { s.once('drain', pump); return }
    }
    s.end()
  }
  s.on('connect', pump)
} else if (mode === 'p2p-sink') {
  const want = Number(args[1])
  const node = await createLibp2p({ addresses: { listen: [`/ip4/0.0.0.0/tcp/${args[0]}`] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
  await node.handle(PROTO, (stream) => {
    let got = 0; let t0 = 0
    stream.addEventListener('message', (evt) => {
      if (t0 === 0) t0 = performance.now()
      got += (evt.data as { byteLength: number }).byteLength
      if (got >= want) { console.log(`done ${got} ${(performance.now() - t0).toFixed(1)}`); process.exit(0) }
    })
  })
  console.log(`ready ${node.getMultiaddrs().map(String).find(a => !a.includes('127.0.0.1')) ?? ''}`)
} else if (mode === 'p2p-source') {
  const [addr, bytes] = args as [string, string]
  const node = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
  const stream = await node.dialProtocol(multiaddr(addr), PROTO)
  let left = Number(bytes)
  while (left > 0) {
    const n = Math.min(left, BLOCK.byteLength)
    left -= n
    if (!stream.send(n === BLOCK.byteLength ? BLOCK : BLOCK.subarray(0, n))) await stream.onDrain()
  }
  await stream.close()
  await new Promise(resolve => setTimeout(resolve, 60_000))
} else {
  console.error('usage: files-bench-peer tcp-sink|tcp-source|p2p-sink|p2p-source …')
  process.exit(2)
}
