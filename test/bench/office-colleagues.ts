/**
 * Emulated colleagues for `npm run bench:office`, run inside one namespace:
 * each is a real Libp2pHost (TCP + Noise + yamux, the same connection
 * policy) with its own key and its own IP address, and its own RFC 6762
 * responder (the product's MdnsResponder: its own signed records, signed
 * once, answering queries with known-answer suppression, spread and rate
 * limits, announcements and goodbyes), all sharing one mDNS socket.
 * What they share beyond the socket: one browser (the product's
 * MdnsBrowser: its cache, browse and refresh queries) for the whole process,
 * so a packet is decoded, checked and cached once per process, not once per
 * colleague. The load is the bench's, not the product's: 125 full discovery
 * instances per process on 2 shared cores never converged at N=500 (their
 * event loops ran 3-13 s late). What the node under test hears is the same
 * kind of traffic: every colleague's own answers and announcements, and
 * browse and refresh queries, from 4 queriers per 500 instead of 500 (with
 * §7.3 suppression a warm office sends about one either way).
 * Instead of a full messenger each answers the message protocol minimally:
 * its signed profile, an empty have-vector, and `stored` for every envelope
 * (counted per message id).
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
import { MdnsBrowser } from '../../node/src/host/mdns/browser.js'
import { MdnsResponder } from '../../node/src/host/mdns/responder.js'
import { QueryAssembly, answerSpreadMs, recordTtlS, recordsOf } from '../../node/src/host/mdns/discovery.js'
import { signWithDevice, verifyByPeer } from '../../node/src/host/signing.js'
import { RpcChannel } from '../../core/rpc/channel.js'
import { signProfile } from '../../core/crypto/envelope.js'
import { MSG_PROTOCOL, PEER_RPC_METHODS } from '../../core/protocol/peer-rpc.js'
import { createLogger, silentLogger } from '../../core/util/log.js'

const { ips, startPerSecond, minTtlS, peersFile } = JSON.parse(process.argv[2] ?? '{}') as { ips: string[], startPerSecond: number, minTtlS?: number, peersFile: string }
const log = createLogger('colleagues', 'warn')
const socket = new UdpMdnsSocket(log)
await socket.start()

// the process's one cache of the office (it lists the colleagues of this process too: their announcements loop back)
const browser = new MdnsBrowser({ transport: socket, token: socket.token(), random: Math.random, self: 'office-bench-cache', verify: verifyByPeer }, { peer: () => {}, gone: () => {} })
const responders: MdnsResponder[] = []
browser.onMassLoss = () => { for (const r of responders) r.reannounce() }
const queries = new QueryAssembly((q, waited) => {
  for (const r of responders) r.onQuery(q, waited)
  browser.onForeignQuery(q)
})
socket.subscribe(({ packet, from }) => {
  if (packet.type === 'response') browser.onResponse(recordsOf(packet))
  else queries.onPacket(packet, from)
})
browser.start()

const hosts: Libp2pHost[] = []
const delivered = new Map<string, number>()
let index = 0
for (const ip of ips) {
  const identity = loadIdentity(await createIdentityBytes())
  const host = new Libp2pHost({ identity, log: silentLogger }, { listen: [`/ip4/${ip}/tcp/4001`], mdns: false })
  const profile = signProfile(identity, `Colleague ${ip}`, Date.now())
  await host.start()
  const responder = new MdnsResponder({
    transport: socket,
    token: socket.token(),
    random: Math.random,
    ttl: () => recordTtlS(browser.size, minTtlS),
    spreadMs: () => answerSpreadMs(browser.size),
    sign: (payload) => signWithDevice(identity, payload)
  })
  responders.push(responder)
  responder.update({ peerId: host.peerId, addrs: host.addresses().map(a => a.includes('/p2p/') ? a : `${a}/p2p/${host.peerId}`), advert: JSON.stringify(profile) })
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
  const lagMs = Math.round(lag.max / 1e6)
  lag.reset()
  process.stdout.write(`status ${JSON.stringify({ seen: browser.size, delivered: Object.fromEntries(delivered), packetsIn: socket.stats.packetsIn, connections: hosts.reduce((n, h) => n + h.connectionCount(), 0), lagMs })}\n`)
}, 1000).unref()

let stopping = false
process.on('SIGTERM', () => {
  if (stopping) return
  stopping = true
  // goodbyes first, as a node does
  for (const r of responders) r.stop()
  browser.stop()
  void Promise.all(hosts.map(async h => { await h.stop() })).then(async () => { await socket.stop() }).finally(() => process.exit(0))
})
setInterval(() => {}, 1 << 30)
