/**
 * Peer channels (node/src/messaging/peer-channels.ts) over a typed fake host:
 * one lazy channel per peer, shared by concurrent callers, opened again after
 * the connection went; a peer channel answers peer methods only.
 */
import { describe, it, beforeEach } from 'node:test'
import assert from 'node:assert/strict'
import { ChannelOpener, PeerChannels } from '../../../node/src/messaging/peer-channels.js'
import { MSG_PROTOCOL, PEER_RPC_METHODS, type PeerRpcMethod } from '../../../core/protocol/peer-rpc.js'
import { RPC_METHODS } from '../../../core/protocol/rpc-frame.js'
import { RpcChannel } from '../../../core/rpc/channel.js'
import { ParleyError } from '../../../core/errors.js'
import { silentLogger } from '../../../core/util/log.js'
import { FakeNetwork, type FakeHost } from '../helpers/fake-host.js'
import { streamPair } from '../helpers/fake-stream.js'
import { PEER_A, PEER_B } from '../helpers/peer-ids.js'

describe('ChannelOpener', () => {
  it('opens once for concurrent callers and again after the channel closed', async () => {
    let opened = 0
    const opener = new ChannelOpener<PeerRpcMethod>(async () => {
      opened++
      const [mine] = streamPair()
      return new RpcChannel(mine, undefined, silentLogger, { methods: PEER_RPC_METHODS })
    })
    const [a, b] = await Promise.all([opener.get(), opener.get()])
    assert.equal(a, b)
    assert.equal(opened, 1)
    await a.close()
    const c = await opener.get()
    assert.notEqual(c, a)
    assert.equal(opened, 2)
    opener.reset()
    await opener.get()
    assert.equal(opened, 3)
  })

  it('a failed opening is not kept: the next call tries again', async () => {
    let fail = true
    const opener = new ChannelOpener<PeerRpcMethod>(async () => {
      if (fail) throw new ParleyError('ERR_PEER_UNREACHABLE', 'down')
      return new RpcChannel(streamPair()[0], undefined, silentLogger, { methods: PEER_RPC_METHODS })
    })
    await assert.rejects(opener.get(), (err: unknown) => err instanceof ParleyError && err.code === 'ERR_PEER_UNREACHABLE')
    assert.equal(opener.isOpening, false)
    fail = false
    assert.equal((await opener.get()).isOpen, true)
  })
})

describe('ChannelOpener reset while it opens', () => {
  /** an opener whose openings the test finishes by hand, in any order */
  const manual = (): { opener: ChannelOpener<PeerRpcMethod>, finish: Array<() => RpcChannel<PeerRpcMethod>> } => {
    const finish: Array<() => RpcChannel<PeerRpcMethod>> = []
    const opener = new ChannelOpener<PeerRpcMethod>(async () => await new Promise(resolve => {
      finish.push(() => { const ch = new RpcChannel(streamPair()[0], undefined, silentLogger, { methods: PEER_RPC_METHODS }); resolve(ch); return ch })
    }))
    return { opener, finish }
  }
  const closed = (err: unknown): boolean => err instanceof ParleyError && err.code === 'ERR_STREAM_CLOSED'

  it('an opening overtaken by reset() is closed, not kept, and does not clear the newer opening', async () => {
    const { opener, finish } = manual()
    const old = opener.get()
    opener.reset()
    const fresh = opener.get()
    assert.equal(finish.length, 2, 'the reset let a new opening start')
    const stale = finish[0]!()
    await assert.rejects(old, closed)
    assert.equal(stale.isOpen, false, 'the stale channel is closed')
    assert.equal(opener.isOpening, true, 'the newer opening is still under way')
    const joined = opener.get()
    assert.equal(finish.length, 2, 'a caller meanwhile joins the newer opening')
    const ch = finish[1]!()
    assert.equal(await fresh, ch)
    assert.equal(await joined, ch)
    assert.equal(await opener.get(), ch)
  })

  it('a newer opening that finishes first is kept when the stale one finishes later', async () => {
    const { opener, finish } = manual()
    const old = opener.get()
    opener.reset()
    const fresh = opener.get()
    const ch = finish[1]!()
    assert.equal(await fresh, ch)
    finish[0]!()
    await assert.rejects(old, closed)
    assert.equal(await opener.get(), ch, 'the stale opening did not replace the channel')
  })

  it('close() while it opens: the channel that then arrives is closed', async () => {
    const { opener, finish } = manual()
    const pending = opener.get()
    await opener.close()
    const ch = finish[0]!()
    await assert.rejects(pending, closed)
    assert.equal(ch.isOpen, false)
    assert.equal(opener.isOpening, false)
  })
})

describe('PeerChannels', () => {
  let net: FakeNetwork
  let a: FakeHost, b: FakeHost
  let served: Array<{ remote: string, method: PeerRpcMethod }>
  const channels = (host: FakeHost): PeerChannels => new PeerChannels({ host, log: silentLogger }, {
    serve: async (remote, method) => { served.push({ remote, method }); return { from: host.peerId } }
  })

  beforeEach(() => {
    net = new FakeNetwork()
    a = net.host(PEER_A)
    b = net.host(PEER_B)
    served = []
  })

  it('serves requests on channels either side opened, naming the remote peer', async () => {
    const ca = channels(a)
    const cb = channels(b)
    await ca.start()
    await cb.start()
    net.connect(PEER_A, PEER_B)
    assert.deepEqual(await (await ca.get(PEER_B)).call('getProfile', {}), { from: PEER_B })
    assert.deepEqual(await (await cb.get(PEER_A)).call('typing', {}), { from: PEER_A })
    assert.deepEqual(served, [{ remote: PEER_A, method: 'getProfile' }, { remote: PEER_B, method: 'typing' }])
  })

  it('reuses the open channel and opens a new one after a reconnect', async () => {
    const ca = channels(a)
    await channels(b).start()
    net.connect(PEER_A, PEER_B)
    const first = await ca.get(PEER_B)
    assert.equal(await ca.get(PEER_B), first)
    net.disconnect(PEER_A, PEER_B)
    ca.reset(PEER_B)
    net.connect(PEER_A, PEER_B)
    const second = await ca.get(PEER_B)
    assert.notEqual(second, first)
    assert.deepEqual(await second.call('getHave', {}), { from: PEER_B })
  })

  it('a relay method on the peer protocol resets the stream instead of being answered', async () => {
    await channels(b).start()
    net.connect(PEER_A, PEER_B)
    // a caller that speaks every method (the old single contract)
    const raw = new RpcChannel(await a.openStream(PEER_B, MSG_PROTOCOL), undefined, silentLogger, { methods: RPC_METHODS })
    await assert.rejects(raw.call('fetch', { after: 0, limit: 1 }), (err: unknown) => err instanceof ParleyError && err.code !== 'ERR_REMOTE')
    assert.equal(raw.isOpen, false)
    assert.deepEqual(served, [])
  })
})
