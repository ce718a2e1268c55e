/**
 * One client process of bench:relay-idle: `count` libp2p hosts (keys derived from their index, so the bench
 * can allow-list them at the relay beforehand), each connected to the relay over loopback TCP with a
 * reservation taken the way a Parley node takes it (listen on the relay's /p2p-circuit address). Prints
 * "progress N" while connecting, then "done N FAILED", and holds everything until stdin closes.
 *   node --import tsx relay-idle-client.ts reserve|connect ADDR FROM COUNT [PARALLEL]
 *   node --import tsx relay-idle-client.ts serve ADDR_FILE     (the bare baseline's listener)
 */
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { multiaddr } from '@multiformats/multiaddr'

/** The key of bench client `i` (the bench derives the same to allow-list it). */
export async function benchKey (i: number): Promise<Ed25519PrivateKey> {
  return await generateKeyPairFromSeed('Ed25519', createHash('sha256').update(`parley-relay-idle-${i}`).digest())
}

/** `reserve`: a reservation at the relay, like a node; else only a connection (the bare baseline's clients) */
async function one (i: number, relayAddr: string, reserve: boolean): Promise<Libp2p> {
  const node = await createLibp2p({
    privateKey: await benchKey(i),
    addresses: { listen: reserve ? [`${relayAddr}/p2p-circuit`] : [] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() }
  })
  if (!reserve) { await node.dial(multiaddr(relayAddr)); return node }
  const deadline = Date.now() + 120_000
  while (!node.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit'))) {
    if (Date.now() > deadline) throw new Error('no reservation')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return node
}

/** The bare baseline's listener: a libp2p host with the same transports and services and nothing else. */
async function serveBare (addrFile: string): Promise<void> {
  const node = await createLibp2p({
    privateKey: await benchKey(-1),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: 100_000, inboundConnectionThreshold: 100_000, maxIncomingPendingConnections: 128 },
    services: { identify: identify(), ping: ping() }
  })
  writeFileSync(addrFile, node.getMultiaddrs()[0]!.toString())
  process.stdout.write('ready\n')
  // held until the bench stops it (SIGTERM)
  setInterval(() => {}, 1 << 30)
}

if (process.argv[1]?.endsWith('relay-idle-client.ts') === true && process.argv[2] === 'serve') await serveBare(process.argv[3] as string)
else if (process.argv[1]?.endsWith('relay-idle-client.ts') === true) {
  const [mode, relayAddr, from, count, parallel] = [process.argv[2], process.argv[3] as string, Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6] ?? 32)]
  const reserve = mode === 'reserve'
  const nodes: Libp2p[] = []
  let failed = 0
  let next = from
  const worker = async (): Promise<void> => {
    while (next < from + count) {
      const i = next++
      try { nodes.push(await one(i, relayAddr, reserve)) } catch (err) { failed++; process.stderr.write(`client ${i}: ${(err as Error).message}\n`) }
      if ((nodes.length + failed) % 250 === 0) process.stdout.write(`progress ${nodes.length}\n`)
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
  process.stdout.write(`done ${nodes.length} ${failed}\n`)
  process.stdin.resume()
  process.stdin.on('end', () => { void Promise.all(nodes.map(async n => { await n.stop() })).finally(() => process.exit(0)) })
}
