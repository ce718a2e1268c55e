/**
 * Hostile peers on loopback: oversized and malformed frames, bad envelopes,
 * replays. Each must cost the attacker its stream, never the node its process
 * or an honest peer its messages.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { connect, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { Libp2pHost } from '../../node/src/host/libp2p-host.js'
import { createIdentityBytes, loadIdentity, type DeviceIdentity } from '../../core/keys.js'
import { RpcChannel, remoteCode } from '../../core/rpc/channel.js'
import { dmConversationId, type Envelope } from '../../core/protocol/envelope.js'
import { MSG_PROTOCOL, PEER_RPC_METHODS } from '../../core/protocol/peer-rpc.js'
import { newMessageId, sealEnvelope } from '../../core/crypto/envelope.js'
import { silentLogger } from '../../core/util/log.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { RawStream } from '../../core/rpc/stream.js'

function closed (stream: RawStream): Promise<Error | undefined> {
  return new Promise(resolve => { stream.addEventListener('close', (evt) => { resolve(evt.error) }) })
}

describe('hostile input from the network', () => {
  let dir: string
  let victim: ParleyNode
  let honest: ParleyNode
  let attacker: Libp2pHost
  let evil: DeviceIdentity

  before(async () => {
    dir = await tmpDir()
    victim = loopbackNode(join(dir, 'victim'), { name: 'Victim' })
    honest = loopbackNode(join(dir, 'honest'), { name: 'Honest' })
    await victim.start(); await honest.start()
    await connect(honest, victim)
    evil = loadIdentity(await createIdentityBytes())
    attacker = new Libp2pHost({ identity: evil, log: silentLogger }, { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
    await attacker.start()
    await attacker.dial(victim.host.addresses()[0] as string)
  })
  after(async () => {
    await attacker?.stop(); await victim?.stop(); await honest?.stop()
    await removeDir(dir)
  })

  const honestStillWorks = async (text: string): Promise<void> => {
    const m = await honest.messenger.sendMessage(victim.peerId, text)
    await honest.messenger.waitForState(m.id, 'delivered', { signal: AbortSignal.timeout(5000) })
  }

  it('an oversized frame header resets that stream only', async () => {
    const stream = await attacker.openStream(victim.peerId, MSG_PROTOCOL)
    const done = closed(stream)
    stream.send(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]))
    const err = await done
    assert.ok(err !== undefined, 'stream was reset, not closed cleanly')
    await honestStillWorks('after oversized')
  })

  it('garbage inside a well-sized frame resets that stream only', async () => {
    for (const payload of [Buffer.from('not json'), Buffer.from([0xc3, 0x28]), Buffer.from('{"v":1,"t":"req","rid":1,"m":"rm -rf"}')]) {
      const stream = await attacker.openStream(victim.peerId, MSG_PROTOCOL)
      const done = closed(stream)
      const frame = Buffer.alloc(4 + payload.length)
      frame.writeUInt32BE(payload.length, 0)
      payload.copy(frame, 4)
      stream.send(frame)
      assert.ok(await done !== undefined)
    }
    await honestStillWorks('after garbage')
  })

  it('malformed, forged and misaddressed envelopes get typed errors', async () => {
    const ch = new RpcChannel(await attacker.openStream(victim.peerId, MSG_PROTOCOL), undefined, silentLogger, { methods: PEER_RPC_METHODS })
    const conv = dmConversationId(evil.peerId, victim.peerId)
    const good = sealEnvelope(evil, { id: newMessageId(), conv, seq: 1, hlc: { w: Date.now(), c: 0 }, recipients: [victim.peerId], body: { text: '<img src=x onerror=alert(1)>' } })
    const expectCode = async (env: unknown, code: string): Promise<void> => {
      await assert.rejects(ch.call('deliver', env), (err) => { assert.equal(remoteCode(err), code); return true })
    }
    await expectCode({ ...good, seq: -1 }, 'ERR_INVALID_ENVELOPE')
    await expectCode({ ...good, seq: 2 }, 'ERR_BAD_SIGNATURE')
    await expectCode({ ...good, author: honest.peerId }, 'ERR_INVALID_ENVELOPE')
    // a conversation the victim is not in
    const other = sealEnvelope(evil, { id: newMessageId(), conv: dmConversationId(evil.peerId, honest.peerId), seq: 1, hlc: { w: Date.now(), c: 0 }, recipients: [honest.peerId], body: { text: 'x' } })
    await expectCode(other, 'ERR_NOT_A_RECIPIENT')
    // the channel survives typed errors: the genuine envelope is stored, verbatim
    assert.deepEqual(await ch.call('deliver', good), { status: 'stored' })
    const hist = await victim.messenger.history(evil.peerId)
    assert.equal(hist.at(-1)?.text, '<img src=x onerror=alert(1)>')
  })

  it('replayed envelopes are acknowledged as duplicates and stored once', async () => {
    const ch = new RpcChannel(await attacker.openStream(victim.peerId, MSG_PROTOCOL), undefined, silentLogger, { methods: PEER_RPC_METHODS })
    const conv = dmConversationId(evil.peerId, victim.peerId)
    const env: Envelope = sealEnvelope(evil, { id: newMessageId(), conv, seq: 2, hlc: { w: Date.now(), c: 0 }, recipients: [victim.peerId], body: { text: 'once' } })
    assert.deepEqual(await ch.call('deliver', env), { status: 'stored' })
    for (let i = 0; i < 5; i++) assert.deepEqual(await ch.call('deliver', env), { status: 'duplicate' })
    // same author and seq under a new id (equivocation, or an author restored from an old backup) is
    // refused for good with its own code: the sender learns it was not stored, the first one stays
    const twin = sealEnvelope(evil, { id: newMessageId(), conv, seq: 2, hlc: { w: Date.now(), c: 1 }, recipients: [victim.peerId], body: { text: 'twin' } })
    await assert.rejects(ch.call('deliver', twin), (err) => { assert.equal(remoteCode(err), 'ERR_SEQ_CONFLICT'); return true })
    const texts = (await victim.messenger.history(evil.peerId)).map(m => m.text)
    assert.equal(texts.filter(t => t === 'once').length, 1)
    assert.ok(!texts.includes('twin'))
  })

  it('the node is still fully alive', async () => {
    await honestStillWorks('final')
    await until(async () => (await victim.messenger.history(honest.peerId)).length === 3, 'three honest messages')
  })
})
