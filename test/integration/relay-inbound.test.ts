/**
 * An office behind one NAT address reconnecting to its relay at once: the
 * relay takes them all in (libp2p's default of 5 new connections per second
 * per IP refused all but 5 of 200), and a flood from one address is still
 * bounded by the handshakes in progress. Raw TCP sockets from 127.0.0.1 that
 * never finish the handshake: a refused one is closed by the relay at once,
 * an accepted one is held until the relay's upgrade timeout.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { removeDir, tmpDir } from '../helpers/nodes.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { MAX_PENDING_HANDSHAKES } from '../../relay/src/relay-host.js'
import { createLogger } from '../../core/util/log.js'

/**
 * Opens `n` sockets at once; after `holdMs`, how many the relay had closed (refused) and how many it held.
 * With `untilRefused`, waits on (up to 5 s, half the relay's 10 s upgrade timeout, so a held socket is never
 * counted as refused) until the relay closed that many: on a loaded machine its refusals take a while to arrive.
 */
async function burst (port: number, n: number, holdMs: number, untilRefused = 0): Promise<{ refused: number, held: number }> {
  const sockets: Socket[] = []
  let refused = 0
  await Promise.all(Array.from({ length: n }, async () => {
    await new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1', () => { resolve() })
      s.on('error', () => { resolve() })
      s.on('close', () => { refused++ })
      sockets.push(s)
    })
  }))
  await new Promise(resolve => setTimeout(resolve, holdMs))
  const deadline = Date.now() + 5000
  while (refused < untilRefused && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
  const counted = refused
  for (const s of sockets) s.destroy()
  // let the relay see the closes before the next burst
  await new Promise(resolve => setTimeout(resolve, 300))
  return { refused: counted, held: n - counted }
}

describe('relay: inbound connections from one address', () => {
  let dir: string
  let relay: RelayServer
  let port: number

  before(async () => {
    dir = await tmpDir()
    relay = new RelayServer({ dataDir: join(dir, 'relay'), listen: ['/ip4/127.0.0.1/tcp/0'] }, createLogger('relay', 'error'))
    await relay.start()
    const tcp = relay.addresses().find(a => a.includes('/tcp/') && !a.includes('/ws'))
    port = Number(/\/tcp\/(\d+)/.exec(tcp ?? '')?.[1])
    assert.ok(port > 0, `a TCP listen address in ${relay.addresses().join(' ')}`)
  })

  after(async () => {
    await relay.stop()
    await removeDir(dir)
  })

  it('takes 100 connections from one address at once', async () => {
    const r = await burst(port, 100, 500)
    assert.equal(r.refused, 0, JSON.stringify(r))
  })

  it('bounds a flood from one address by the handshakes in progress', async () => {
    const r = await burst(port, MAX_PENDING_HANDSHAKES + 100, 500, 100)
    assert.ok(r.held <= MAX_PENDING_HANDSHAKES, JSON.stringify(r))
    assert.ok(r.refused >= 100, JSON.stringify(r))
  })

  it('still serves after the flood', async () => {
    const r = await burst(port, 20, 300)
    assert.equal(r.refused, 0, JSON.stringify(r))
  })
})
