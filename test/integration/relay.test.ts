/**
 * Relay on loopback, in process: admission, circuit chat, offline mailbox,
 * ciphertext only at rest.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { filesContaining, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'
import { remoteCode } from '../../core/rpc/channel.js'
import type { ParleyNode } from '../../node/src/parley-node.js'

describe('relay on loopback', () => {
  let dir: string
  let relay: RelayServer
  let relayAddr: string
  const nodes: Record<string, ParleyNode> = {}
  const logs: string[] = []

  const start = async (name: string, invite?: string): Promise<ParleyNode> => {
    const n = loopbackNode(join(dir, name), { name, relay: relayAddr, invite, messenger: { depositAfterMs: 100 }, relayClient: { mailboxPollMs: 300 } })
    await n.start()
    nodes[name] = n
    return n
  }

  before(async () => {
    dir = await tmpDir('parley-relay-')
    relay = new RelayServer({ dataDir: join(dir, 'relay'), listen: ['/ip4/127.0.0.1/tcp/0'] }, createLogger('relay', 'info', (l) => { logs.push(l) }))
    await relay.start()
    relayAddr = relay.addresses()[0] as string
  })
  after(async () => {
    for (const n of Object.values(nodes)) await n.stop()
    await relay?.stop()
    await removeDir(dir)
  })

  it('refuses a peer that was not admitted, with a clear error', async () => {
    const u = await start('Stranger')
    await until(() => u.relay.status().admitted === false, 'relay status')
    assert.equal(u.relay.status().lastError?.code, 'ERR_NOT_ADMITTED')
    await assert.rejects(u.relay.deposit([relay.peerId], { } as never), (err) => { assert.ok(remoteCode(err) !== undefined); return true })
    // no reservation, so no circuit address
    assert.ok(u.host.addresses().every(a => !a.includes('p2p-circuit')))
    assert.ok((await relay.stats()).counters.refused >= 1)
  })

  it('admits with an invite; the invite cannot be reused', async () => {
    const invite = await relay.mailbox.createInvite({ maxUses: 2 })
    const a = await start('Office', invite.token)
    const r = await start('Remote', invite.token)
    for (const n of [a, r]) await until(() => n.relay.status().admitted === true, 'admitted')
    await assert.rejects(relay.mailbox.redeem(invite.token, nodes.Stranger!.peerId), { code: 'ERR_INVITE_INVALID' })
    // reservations give circuit addresses
    for (const n of [a, r]) await until(() => n.host.addresses().some(x => x.includes('/p2p-circuit')), 'circuit address')
  })

  it('chats both ways through the relay circuit', async () => {
    const a = nodes.Office!
    const r = nodes.Remote!
    const m1 = await r.messenger.sendMessage(a.peerId, 'hello office')
    await r.messenger.waitForState(m1.id, 'delivered', { signal: AbortSignal.timeout(15_000) })
    assert.equal(r.host.reach(a.peerId), 'relay')
    const m2 = await a.messenger.sendMessage(r.peerId, 'hello remote')
    await a.messenger.waitForState(m2.id, 'delivered', { signal: AbortSignal.timeout(15_000) })
    assert.equal((await r.messenger.history(a.peerId)).map(m => m.text).join('|'), 'hello office|hello remote')
    // the route is told as it was: through the relay (its circuit, or its mailbox when the circuit was not up yet), never the LAN
    const routes = [(await r.messageStore.getMessage(m1.id))?.routes?.[a.peerId], (await r.messageStore.getMessage(m2.id))?.via]
    assert.ok(routes.every(x => x === 'circuit' || x === 'mailbox'), JSON.stringify(routes))
    assert.ok(routes.includes('circuit'), JSON.stringify(routes))
  })

  it('delivers to an offline user from the mailbox when they return; the relay holds ciphertext only', async () => {
    const invite = await relay.mailbox.createInvite()
    let b = await start('Away', invite.token)
    await until(() => b.relay.status().admitted === true, 'admitted')
    const bId = b.peerId
    await b.stop()
    const r = nodes.Remote!
    const canary = `canary-${Math.random().toString(36).slice(2)}-plaintext`
    const sent = []
    for (let i = 0; i < 20; i++) sent.push(await r.messenger.sendMessage(bId, i === 7 ? canary : `while away ${i}`))
    await Promise.all(sent.map(async m => await r.messenger.waitForState(m.id, 'sent', { signal: AbortSignal.timeout(15_000) })))
    assert.equal((await relay.stats()).mailbox.messages, 20)
    assert.deepEqual(await filesContaining(join(dir, 'relay'), canary), [], 'no plaintext in the relay data dir')
    assert.ok(!logs.join('\n').includes(canary), 'no plaintext in the relay log')
    b = await start('Away')
    await until(async () => (await b.messenger.history(r.peerId)).length === 20, 'mail drained', 15_000)
    assert.deepEqual((await b.messenger.history(r.peerId)).map(m => m.text), sent.map(m => m.text))
    await until(async () => (await relay.stats()).mailbox.messages === 0, 'mailbox acked and emptied')
    // the sender learns "delivered" once it reaches the recipient itself
    await Promise.all(sent.map(async m => await r.messenger.waitForState(m.id, 'delivered', { signal: AbortSignal.timeout(20_000) })))
    // both sides say how each came: through the mailbox, or (the sender also pushes what it holds once the
    // recipient is back, racing the drain) through the relay's circuit; the first copy counts, the other is a duplicate
    const got = await b.messenger.history(r.peerId)
    for (const m of got) assert.ok(m.via === 'mailbox' || m.via === 'circuit', `${m.text}: ${String(m.via)}`)
    assert.ok(got.some(m => m.via === 'mailbox'), 'the drain delivered')
    for (const m of sent) assert.ok(['mailbox', 'circuit'].includes((await r.messageStore.getMessage(m.id))?.routes?.[bId] ?? ''), `${m.text}: the sender's route`)
  })

  it('a message sent just before the sender quits still reaches an offline recipient: the stop deposits it', async () => {
    const invite = await relay.mailbox.createInvite({ maxUses: 2 })
    const start2 = async (name: string): Promise<ParleyNode> => {
      // a deposit wait of a minute: without the flush at stop, nothing would reach the relay in this test
      const n = loopbackNode(join(dir, name), {
        name, relay: relayAddr, invite: invite.token, messenger: { depositAfterMs: 60_000 }, relayClient: { mailboxPollMs: 300 }
      })
      await n.start()
      nodes[name] = n
      await until(() => n.relay.status().admitted === true, `${name} admitted`)
      return n
    }
    const quitter = await start2('Quitter')
    let later = await start2('Returner')
    const laterId = later.peerId
    await later.stop()
    await until(() => !quitter.host.isOnline(laterId), 'Returner offline')
    const m = await quitter.messenger.sendMessage(laterId, 'sent, then the laptop closed')
    assert.equal((await quitter.messageStore.getMessage(m.id))?.state, 'queued')
    await quitter.stop()
    delete nodes.Quitter
    later = await start2('Returner')
    await until(async () => (await later.messenger.history(m.author)).some(x => x.id === m.id), 'the message, from the mailbox', 15_000)
  })

  it('a relay set at run time (settings API) takes effect without a restart of the node', async () => {
    const n = loopbackNode(join(dir, 'Later'), { name: 'Later', relayClient: { mailboxPollMs: 300 } })
    await n.start()
    nodes.Later = n
    assert.equal(n.relay.status().addr, null)
    const invite = await relay.mailbox.createInvite()
    await n.setRelay(relayAddr, invite.token)
    await until(() => n.relay.status().admitted === true, 'admitted after setRelay')
    await until(() => n.host.addresses().some(a => a.includes('/p2p-circuit')), 'circuit address after setRelay')
    await n.setRelay(null, null)
    await until(() => !n.host.addresses().some(a => a.includes('/p2p-circuit')), 'circuit address gone')
  })

  it('moving to another relay at run time releases the old reservation and reserves on the new one', async () => {
    const other = new RelayServer({ dataDir: join(dir, 'relay-other'), listen: ['/ip4/127.0.0.1/tcp/0'] }, createLogger('relay', 'error'))
    await other.start()
    const n = loopbackNode(join(dir, 'Mover'), { name: 'Mover', relayClient: { mailboxPollMs: 300 } })
    try {
      await n.start()
      await n.setRelay(relayAddr, (await relay.mailbox.createInvite()).token)
      await until(() => n.host.addresses().some(a => a.includes(`${relay.peerId}/p2p-circuit`)), 'circuit through the first relay')
      const otherAddr = other.addresses()[0] as string
      await n.setRelay(otherAddr, (await other.mailbox.createInvite()).token)
      await until(() => n.host.addresses().some(a => a.includes(`${other.peerId}/p2p-circuit`)), 'circuit through the new relay', 20_000)
      assert.ok(!n.host.addresses().some(a => a.includes(`${relay.peerId}/p2p-circuit`)), 'no circuit address through the old relay')
      await until(async () => (await other.stats()).reservations === 1, 'reservation on the new relay')
      assert.equal(n.host.isConnected(relay.peerId), false, 'the old relay is let go')
    } finally {
      await n.stop()
      await other.stop()
    }
  })

  it('removing a user withdraws admission at once: its reservation and circuit address go', async () => {
    const invite = await relay.mailbox.createInvite()
    const n = loopbackNode(join(dir, 'Leaver'), { name: 'Leaver', relay: relayAddr, invite: invite.token, host: { redialIntervalMs: 300 }, relayClient: { mailboxPollMs: 300 } })
    await n.start()
    nodes.Leaver = n
    await until(() => n.host.addresses().some(a => a.includes('/p2p-circuit')), 'circuit address')
    assert.equal(await relay.removeUser(n.peerId), true)
    await until(() => n.relay.status().admitted === false, 'told it is no longer admitted', 15_000)
    await until(() => !n.host.addresses().some(a => a.includes('/p2p-circuit')), 'circuit address gone', 15_000)
    assert.equal(n.relay.status().lastError?.code, 'ERR_NOT_ADMITTED')
  })

  it('a node whose relay is down still starts, and joins the relay when it comes back', async () => {
    // below Linux's ephemeral range (32768+), so no outgoing connection holds it
    const port = 10000 + Math.floor(Math.random() * 22000)
    const later = new RelayServer({ dataDir: join(dir, 'relay-later'), listen: [`/ip4/127.0.0.1/tcp/${port}`] }, createLogger('relay', 'error'))
    await later.start()
    const addr = later.addresses()[0] as string
    const invite = await later.mailbox.createInvite()
    await later.stop()
    const n = loopbackNode(join(dir, 'Patient'), { name: 'Patient', relay: addr, invite: invite.token, host: { redialIntervalMs: 300 }, relayClient: { mailboxPollMs: 300 } })
    await n.start()
    nodes.Patient = n
    assert.equal(n.relay.status().connected, false)
    await later.start()
    try {
      await until(() => n.relay.status().admitted === true, 'admitted once the relay is back', 20_000)
      await until(() => n.host.addresses().some(a => a.includes('/p2p-circuit')), 'reservation once the relay is back', 20_000)
    } finally {
      await n.stop()
      delete nodes.Patient
      await later.stop()
    }
  })
})
