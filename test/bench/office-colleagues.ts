/**
 * Emulated colleagues for `npm run bench:office`, run inside one namespace:
 * each is a real Libp2pHost (the same RFC 6762 discovery, signed records,
 * TCP + Noise + yamux, the same connection policy) with its own key and its
 * own IP address, all sharing one mDNS socket. Instead of a full messenger
 * each answers the message protocol minimally: its signed profile, an empty
 * have-vector, and `stored` for every envelope (counted per message id).
 *
 * Usage: office-colleagues.ts '{"ips":["10.233.1.1",...],"startPerSecond":40}'
 * Prints "ready" once all have started, then a status line (JSON) every second.
 * Stops (goodbyes sent) on SIGTERM.
 */
import '../../core/polyfill.js'
import { writeFileSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Libp2pHost } from '../../node/src/host/libp2p-host.js'
import { createIdentityBytes, loadIdentity } from '../../core/keys.js'
import { UdpMdnsSocket } from '../../node/src/host/mdns/socket.js'
import { RpcChannel } from '../../core/rpc/channel.js'
import { signProfile } from '../../core/crypto/envelope.js'
import { MSG_PROTOCOL, PEER_RPC_METHODS } from '../../core/protocol/peer-rpc.js'
import { createLogger, silentLogger } from '../../core/util/log.js'

const { ips, startPerSecond, minTtlS, peersFile } = JSON.parse(process.argv[2] ?? '{}') as { ips: string[], startPerSecond: number, minTtlS?: number, peersFile: string }
const log = createLogger('colleagues', 'warn')
const socket = new UdpMdnsSocket(log)
await socket.start()

const hosts: Libp2pHost[] = []
const delivered = new Map<string, number>()
let index = 0
for (const ip of ips) {
  const identity = loadIdentity(await createIdentityBytes())
  const host = new Libp2pHost({ identity, log: silentLogger, mdnsTransport: socket }, {
    listen: [`/ip4/${ip}/tcp/4001`],
    ...(minTtlS !== undefined ? { discovery: { minTtlS } } : {})
  })
  const profile = signProfile(identity, `Colleague ${ip}`, Date.now())
  await host.start()
  host.setAdvert(JSON.stringify(profile))
  await host.handle(MSG_PROTOCOL, (stream) => {
    const ch = new RpcChannel(stream, async (method, body) => {
      switch (method) {
        case 'getProfile': return profile
        case 'getHave': return {}
        case 'deliver': {
          const id = (body as { id?: unknown }).id
          if (typeof id === 'string') delivered.set(id, (delivered.get(id) ?? 0) + 1)
          return { status: 'stored' }
        }
        default: return {}
      }
    }, silentLogger, { methods: PEER_RPC_METHODS })
    void ch
  })
  hosts.push(host)
  // a Monday morning spread over a few seconds, not one instant (the 30-node LAN test covers that)
  if (++index % startPerSecond === 0) await new Promise(resolve => setTimeout(resolve, 1000))
}

writeFileSync(peersFile, JSON.stringify(hosts.map(h => h.peerId)))
process.stdout.write('ready\n')
// how late this process's event loop runs (is the emulation keeping up?): the worst delay in each second
const lag = monitorEventLoopDelay({ resolution: 10 })
lag.enable()
setInterval(() => {
  const seen = hosts.map(h => h.stats().mdns?.peers ?? 0)
  const lagMs = Math.round(lag.max / 1e6)
  lag.reset()
  process.stdout.write(`status ${JSON.stringify({ minSeen: Math.min(...seen), maxSeen: Math.max(...seen), delivered: Object.fromEntries(delivered), packetsIn: socket.stats.packetsIn, connections: hosts.reduce((n, h) => n + h.connectionCount(), 0), lagMs })}\n`)
}, 1000).unref()

let stopping = false
process.on('SIGTERM', () => {
  if (stopping) return
  stopping = true
  void Promise.all(hosts.map(async h => { await h.stop() })).then(async () => { await socket.stop() }).finally(() => process.exit(0))
})
setInterval(() => {}, 1 << 30)
