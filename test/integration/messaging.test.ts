import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { connect, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { ParleyNode } from '../../node/src/parley-node.js'

describe('two nodes on loopback', () => {
  let dir: string
  let a: ParleyNode
  let b: ParleyNode
  before(async () => {
    dir = await tmpDir()
    a = loopbackNode(join(dir, 'a'), { name: 'Alice' })
    b = loopbackNode(join(dir, 'b'), { name: 'Bob' })
    await a.start(); await b.start()
    await connect(a, b)
  })
  after(async () => {
    await a?.stop(); await b?.stop()
    await removeDir(dir)
  })

  it('exchanges signed profiles on connect', async () => {
    const peers = await until(async () => {
      const p = await a.messenger.listPeers()
      return p.find(x => x.peerId === b.peerId && x.name === 'Bob')
    }, 'Bob profile at Alice')
    assert.equal(peers.online, true)
  })

  it('delivers a message and acks it after the durable write', async () => {
    const sent = await a.messenger.sendMessage(b.peerId, 'hello Bob')
    assert.equal(sent.state, 'queued')
    const delivered = await a.messenger.waitForState(sent.id, 'delivered', { signal: AbortSignal.timeout(5000) })
    assert.equal(delivered.state, 'delivered')
    const hist = await b.messenger.history(a.peerId)
    assert.equal(hist.length, 1)
    assert.equal(hist[0]?.text, 'hello Bob')
    assert.equal(hist[0]?.seq, 1)
    assert.equal(hist[0]?.outgoing, false)
  })

  it('keeps per-author order for a burst both ways', async () => {
    const N = 200
    const sends = []
    for (let i = 0; i < N; i++) {
      sends.push(a.messenger.sendMessage(b.peerId, `a${i}`))
      sends.push(b.messenger.sendMessage(a.peerId, `b${i}`))
    }
    const msgs = await Promise.all(sends)
    await Promise.all(msgs.map(async m => await (m.author === a.peerId ? a : b).messenger.waitForState(m.id, 'delivered', { signal: AbortSignal.timeout(15000) })))
    const ha = await a.messenger.history(b.peerId, { limit: 10_000 })
    const hb = await b.messenger.history(a.peerId, { limit: 10_000 })
    assert.equal(ha.length, 2 * N + 1)
    assert.deepEqual(ha.map(m => m.id), hb.map(m => m.id), 'both sides show the same order')
    for (const author of [a.peerId, b.peerId]) {
      const seqs = ha.filter(m => m.author === author).map(m => m.seq)
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'sequence order within an author')
      assert.equal(new Set(seqs).size, seqs.length, 'no duplicates')
    }
  })

  it('queues while the peer is offline and delivers exactly once after it returns', async () => {
    await b.stop()
    await until(() => !a.host.isConnected(b.peerId), 'disconnect')
    const queued = []
    for (let i = 0; i < 20; i++) queued.push(await a.messenger.sendMessage(b.peerId, `offline ${i}`))
    b = loopbackNode(join(dir, 'b'), { host: { peers: [a.host.addresses()[0] as string] } })
    await b.start()
    await Promise.all(queued.map(async m => await a.messenger.waitForState(m.id, 'delivered', { signal: AbortSignal.timeout(15000) })))
    const hist = await b.messenger.history(a.peerId, { limit: 10_000 })
    const texts = hist.filter(m => m.text.startsWith('offline ')).map(m => m.text)
    assert.deepEqual(texts, queued.map(m => m.text))
  })

  it('read receipts mark outgoing messages read', async () => {
    const m = await a.messenger.sendMessage(b.peerId, 'read me')
    await a.messenger.waitForState(m.id, 'delivered', { signal: AbortSignal.timeout(5000) })
    assert.ok(await b.messenger.markSeen(a.peerId) >= 1)
    const read = await a.messenger.waitForState(m.id, 'read', { signal: AbortSignal.timeout(5000) })
    assert.equal(read.state, 'read')
  })
})
