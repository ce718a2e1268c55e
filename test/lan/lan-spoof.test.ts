/**
 * Spoofed mDNS answers: a hostile host claims a colleague's peer ID at its own
 * address (and at 127.0.0.1). Parley's discovery records are signed by the
 * device key, so the unsigned lie is dropped before it reaches presence or
 * the peer store (and were an address to get through, the Noise handshake
 * binds the peer ID to its key): the impostor never becomes "Ben", and the
 * real Ben still gets through.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { createWriteStream } from 'node:fs'
import { NetnsLan, canUseNamespaces } from '../helpers/netns.js'
import { NodeProc, spawnReady, stopChild } from '../helpers/proc.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { ChildProcess } from 'node:child_process'
import type { IdentityView, MessageView } from '../../node/src/api/contract.js'
import type { PeerView } from '../../node/src/messaging/messenger.js'
import type { HostStats } from '../../node/src/host/types.js'

const SPOOFER = new URL('../fixtures/mdns-spoofer.ts', import.meta.url).pathname

describe('LAN: spoofed mDNS answers', () => {
  const lan = new NetnsLan('pspf', 3, '10.231.10')
  let dir: string
  let victim: NodeProc
  let ben: NodeProc
  let spoofer: ChildProcess | undefined
  let benId: string
  let failed = false
  const guard = async (fn: () => Promise<void>): Promise<void> => { try { await fn() } catch (e) { failed = true; throw e } }

  before(async () => {
    // a failed setup keeps its logs too (after() deletes them only when nothing failed)
    try {
      const why = canUseNamespaces()
      if (why !== null) throw new Error(why)
      dir = await tmpDir('parley-spoof-')
      lan.up()
      const [hv, hb] = lan.hosts as [typeof lan.hosts[0], typeof lan.hosts[0]]
      victim = new NodeProc({ dataDir: join(dir, 'victim'), name: 'Vera', netns: hv!.name, logFile: join(dir, 'victim.log'), args: ['--listen', '/ip4/0.0.0.0/tcp/4001'] })
      ben = new NodeProc({ dataDir: join(dir, 'ben'), name: 'Ben', netns: hb!.name, logFile: join(dir, 'ben.log'), args: ['--listen', '/ip4/0.0.0.0/tcp/4001'] })
      // learn Ben's peer ID, then take Ben off the network
      await ben.start()
      benId = (await ben.api!.call<IdentityView>('GET', '/identity')).peerId
      await ben.stop()
    } catch (e) { failed = true; throw e }
  })

  after(async () => {
    await stopChild(spoofer)
    await victim?.stop(); await ben?.stop()
    lan.down()
    if (failed || process.env.KEEP_LOGS === '1') console.error(`spoof test logs kept in ${dir}`)
    else await removeDir(dir)
  })

  it('an impostor claiming the peer ID of Ben never shows up as Ben', async () => guard(async () => {
    const hs = lan.hosts[2]!
    spoofer = await spawnReady([process.execPath, '--import', 'tsx', SPOOFER, benId, hs.ip], hs.name, createWriteStream(join(dir, 'spoofer.log')), 'spoofer', 30_000)
    await victim.start()
    // the victim hears the lie, and drops it: the record is not signed by Ben's key
    const status = async (): Promise<{ host: HostStats, connectionList: Array<{ addr: string }> }> => await victim.api!.call('GET', '/status')
    await until(async () => ((await status()).host.mdns?.rejected ?? 0) >= 1, 'spoofed answer received and refused', 20_000, 100)
    assert.ok(!victim.logText().includes('"msg":"peer discovered","peerId":"' + benId), 'the impostor never becomes a discovered peer')
    await new Promise(resolve => setTimeout(resolve, 3000))
    const peers = await victim.api!.call<PeerView[]>('GET', '/peers')
    assert.equal(peers.filter(p => p.online).length, 0, 'nobody online: the impostor is not Ben')
    const st = await status()
    assert.ok(st.connectionList.every(c => !c.addr.includes('127.0.0.1') && !c.addr.includes(hs.ip)), 'neither the spoofed nor loopback addresses are dialled')
    // a message to Ben waits; it is not handed to the impostor
    const m = await victim.api!.call<MessageView>('POST', '/messages', { to: benId, text: 'for Ben only' })
    await new Promise(resolve => setTimeout(resolve, 1500))
    assert.equal((await victim.api!.call<MessageView[]>('GET', `/conversations/${benId}/messages`)).find(x => x.id === m.id)?.state, 'queued')
  }))

  it('the real Ben comes back and gets the message; the victim kept running', async () => guard(async () => {
    await ben.start()
    await until(async () => (await ben.api!.call<MessageView[]>('GET', `/conversations/${(await victim.api!.call<IdentityView>('GET', '/identity')).peerId}/messages`)).some(x => x.text === 'for Ben only'), 'delivered to the real Ben', 30_000, 200)
    assert.equal(victim.child?.exitCode, null)
  }))
})
