/**
 * Look-alike names through the local API: a colleague's name with a Cyrillic
 * letter, or with an invisible character, must not pass as that colleague.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { connect, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { ApiClient } from '../../node/src/cli/client.js'
import { RpcChannel, remoteCode } from '../../core/rpc/channel.js'
import { MSG_PROTOCOL, PEER_RPC_METHODS } from '../../core/protocol/peer-rpc.js'
import { signProfile } from '../../core/crypto/envelope.js'
import { ParleyError } from '../../core/errors.js'
import { Libp2pHost } from '../../node/src/host/libp2p-host.js'
import { createIdentityBytes, loadIdentity } from '../../core/keys.js'
import { silentLogger } from '../../core/util/log.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { PeerView } from '../../node/src/messaging/messenger.js'

describe('look-alike names', () => {
  let dir: string
  let me: ParleyNode
  let ben: ParleyNode
  let fake: ParleyNode
  let api: ApiClient

  before(async () => {
    dir = await tmpDir()
    me = loopbackNode(join(dir, 'me'), { name: 'Me' })
    ben = loopbackNode(join(dir, 'ben'), { name: 'Ben' })
    // Cyrillic е (U+0435) in the middle
    fake = loopbackNode(join(dir, 'fake'), { name: 'B\u0435n' })
    await me.start(); await ben.start(); await fake.start()
    api = await ApiClient.open(join(dir, 'me'))
    await connect(me, ben)
    await until(async () => (await api.call<PeerView[]>('GET', '/peers')).find(p => p.peerId === ben.peerId)?.name === 'Ben', 'Ben known by name')
  })
  after(async () => {
    await fake?.stop(); await ben?.stop(); await me?.stop()
    await removeDir(dir)
  })

  it('a peer announcing a look-alike of a known name gets the key warning; the first owner does not', async () => {
    await connect(me, fake)
    const peers = await until(async () => {
      const list = await api.call<PeerView[]>('GET', '/peers')
      return list.find(p => p.peerId === fake.peerId)?.name === 'B\u0435n' ? list : undefined
    }, 'the look-alike profile')
    const impostor = peers.find(p => p.peerId === fake.peerId)
    assert.match(impostor?.keyWarning ?? '', new RegExp(`Another key \\(${ben.peerId.slice(-8)}\\) used the name "Ben", which looks like`))
    assert.equal(peers.find(p => p.peerId === ben.peerId)?.keyWarning, null)
  })

  it('a name with an invisible character is refused at the API with a typed error', async () => {
    for (const name of ['Be\u200Bn', 'Be\u00ADn', 'Be\u200Dn']) {
      await assert.rejects(api.call('PUT', '/profile', { name }), (err) => err instanceof ParleyError && err.code === 'ERR_INVALID_ARGUMENT' && /invisible/.test(err.message))
    }
    // fullwidth input is stored NFKC-normalised
    assert.deepEqual((await api.call<{ name: string }>('PUT', '/profile', { name: 'Ｍｅ' })).name, 'Me')
  })

  it('a signed profile with an invisible character is refused on the wire with a typed error', async () => {
    const evil = loadIdentity(await createIdentityBytes())
    const attacker = new Libp2pHost({ identity: evil, log: silentLogger }, { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
    await attacker.start()
    try {
      await attacker.dial(me.host.addresses()[0] as string)
      const ch = new RpcChannel(await attacker.openStream(me.peerId, MSG_PROTOCOL), undefined, silentLogger, { methods: PEER_RPC_METHODS })
      for (const name of ['Be\u200Bn', 'Be\u00ADn', 'Ben\uD800']) {
        await assert.rejects(ch.call('announceProfile', signProfile(evil, name, Date.now())), (err) => { assert.equal(remoteCode(err), 'ERR_INVALID_ENVELOPE'); return true })
      }
      const peers = await api.call<PeerView[]>('GET', '/peers')
      assert.equal(peers.find(p => p.peerId === evil.peerId)?.name ?? null, null)
    } finally {
      await attacker.stop()
    }
  })
})
