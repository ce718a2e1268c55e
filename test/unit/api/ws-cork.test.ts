/**
 * The UI socket's cork (node/src/api/ws-cork.ts): the events of one turn go
 * out together, each its own message, in order; a flush before terminate()
 * (what ApiServer.stop does) loses none of them.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { WsCork } from '../../../node/src/api/ws-cork.js'

async function pair (): Promise<{ server: WebSocket, got: string[], closed: Promise<void>, done: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise(resolve => wss.once('listening', resolve))
  const { port } = wss.address() as AddressInfo
  const connected = new Promise<WebSocket>(resolve => wss.once('connection', resolve))
  const client = new WebSocket(`ws://127.0.0.1:${port}`)
  const got: string[] = []
  client.on('message', (data) => { got.push(String(data)) })
  client.on('error', () => {})
  const closed = new Promise<void>(resolve => client.once('close', () => { resolve() }))
  await new Promise(resolve => client.once('open', resolve))
  const server = await connected
  return {
    server,
    got,
    closed,
    done: async () => {
      client.terminate()
      await new Promise<void>(resolve => { wss.close(() => { resolve() }) })
    }
  }
}

describe('UI WebSocket cork', () => {
  it('the events of one turn arrive in order, each its own message, and the socket is uncorked after the turn', async () => {
    const cork = new WsCork()
    const { server, got, done } = await pair()
    try {
      for (let i = 0; i < 20; i++) { cork.forThisTurn(server); server.send(`e${i}`) }
      await new Promise(resolve => setImmediate(resolve))
      cork.forThisTurn(server)
      server.send('e20')
      const want = Array.from({ length: 21 }, (_, i) => `e${i}`)
      const until = Date.now() + 10_000
      while (got.length < want.length && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 5))
      assert.deepEqual(got, want)
    } finally {
      await done()
    }
  })

  it('a flush before terminate() in the same turn sends what was corked', async () => {
    const cork = new WsCork()
    const { server, got, closed, done } = await pair()
    try {
      for (let i = 0; i < 5; i++) { cork.forThisTurn(server); server.send(`e${i}`) }
      cork.flush()
      server.terminate()
      await closed
      assert.deepEqual(got, ['e0', 'e1', 'e2', 'e3', 'e4'])
    } finally {
      await done()
    }
  })
})
