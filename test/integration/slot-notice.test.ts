/**
 * Issue 9, gap N3: a colleague reachable only through the relay's mailbox
 * (Ann and Bob are never online at the same time after the first minute).
 * Ann's data dir is put back from an old copy, so her next message takes a
 * number Bob holds another message of hers under. Bob refuses it from the
 * mailbox (ERR_SEQ_CONFLICT) and can ask Ann nothing: he gives her own signed
 * envelopes back through the relay with a "slot taken" notice he signs. Ann
 * moves her message above them (the move) and takes the lost one back; Bob
 * gets the moved copy from the mailbox. At the end both histories are
 * complete, nothing failed, and across the two nodes every (conversation,
 * author, seq) names one message (test/helpers/slots.ts).
 * Before the notice, Bob dropped the mail, Ann's message stayed `sent` and
 * "ann 1" never came back to her.
 * Also: hostile notices (a forged signature, a relay's own, one about
 * another device's message) are refused with typed errors.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { cp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { connect, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { sameSlots } from '../helpers/slots.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { StoredMessage } from '../../node/src/store/types.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'
import { newMessageId, sealEnvelope, signSlotTaken } from '../../core/crypto/envelope.js'
import { toParleyError } from '../../core/errors.js'
import type { Envelope } from '../../core/protocol/envelope.js'
import { remoteCode } from '../../core/rpc/channel.js'
import { newIdentity } from '../unit/helpers/identities.js'

/** a fresh, generous deadline per wait (a signal made once at import would run out under a loaded suite) */
const within = (): { signal: AbortSignal } => ({ signal: AbortSignal.timeout(60_000) })

/** `x`'s history with `peer`, once it holds every message of `ms` (by id and text); says what it holds if not. */
async function has (x: ParleyNode, peer: string, ms: StoredMessage[]): Promise<StoredMessage[]> {
  return await until(async () => {
    const h = await x.messenger.history(peer)
    return ms.every(m => h.some(y => y.id === m.id && y.text === m.text)) ? h : undefined
  }, `${x.messenger.name} holds ${ms.map(m => m.text).join(', ')}`, 30_000).catch(async (err: Error) => {
    const h = await x.messenger.history(peer)
    throw new Error(`${err.message}; has ${h.map(m => `${m.text}@${m.seq}:${m.state}`).join(', ')}`)
  })
}

describe('issue 9 N3: a number given out twice, seen only through the relay\'s mailbox', () => {
  it('the refusing device gives the envelope back with a signed notice; the author moves its message and the lost one comes back', async () => {
    const dir = await tmpDir('parley-slotnotice-')
    const relay = new RelayServer({ dataDir: join(dir, 'relay'), listen: ['/ip4/127.0.0.1/tcp/0'] }, createLogger('relay', 'error'))
    await relay.start()
    const relayAddr = relay.addresses()[0] as string
    const at = (name: string): ParleyNode => loopbackNode(join(dir, name), {
      name, relay: relayAddr, messenger: { depositAfterMs: 100 }, relayClient: { mailboxPollMs: 300 }
    })
    const annDir = join(dir, 'ann')
    const n = { ann: at('ann'), bob: at('bob') }
    const up = async (k: 'ann' | 'bob'): Promise<ParleyNode> => {
      n[k] = at(k)
      await n[k].start()
      await until(() => n[k].relay.status().admitted === true && n[k].host.isConnected(relay.peerId), `${k} at the relay`, 20_000)
      return n[k]
    }
    const drained = async (x: ParleyNode): Promise<void> => {
      await until(async () => await relay.mailbox.queued(x.peerId) === 0, `${x.messenger.name}'s mailbox drained`, 20_000)
    }
    try {
      for (const k of ['ann', 'bob'] as const) {
        await n[k].start()
        await relay.mailbox.admit(n[k].peerId, 'allow-list')
        await n[k].host.reconnectRelay()
        await until(() => n[k].relay.status().admitted === true, `${k} admitted`, 20_000)
      }
      await connect(n.ann, n.bob)
      const bob = n.bob.peerId
      const ann = n.ann.peerId
      const sent = [await n.ann.messenger.sendMessage(bob, 'ann 0')]
      await n.ann.messenger.waitForState(sent[0]!.id, 'delivered', within())
      await n.ann.stop()
      await cp(annDir, join(dir, 'backup'), { recursive: true })
      await n.bob.stop()
      // from here on Ann and Bob are never online together: the relay's mailbox is their only path
      await up('ann')
      const lost = await n.ann.messenger.sendMessage(bob, 'ann 1')
      await n.ann.messenger.waitForState(lost.id, 'sent', within())
      await n.ann.stop()
      await up('bob')
      await has(n.bob, ann, [...sent, lost])
      await drained(n.bob)
      await n.bob.stop()
      // the restore: Ann's store is a clean one from before "ann 1"
      await rm(annDir, { recursive: true })
      await cp(join(dir, 'backup'), annDir, { recursive: true })
      await up('ann')
      const after = await n.ann.messenger.sendMessage(bob, 'after the restore')
      assert.equal(after.seq, lost.seq, 'the number Bob holds "ann 1" under is given out again')
      await n.ann.messenger.waitForState(after.id, 'sent', within())
      await n.ann.stop()
      // Bob refuses it from the mailbox (he holds "ann 1" there) and gives "ann 1" back to Ann through the relay
      await up('bob')
      await drained(n.bob)
      await until(async () => await relay.mailbox.queued(ann) > 0, 'a notice waits for Ann at the relay', 20_000)
      await n.bob.stop()
      // Ann takes it: "after the restore" moves above it, "ann 1" is back in her history under its old number
      await up('ann')
      const annHist = await has(n.ann, bob, [...sent, lost])
      assert.equal(annHist.find(m => m.id === lost.id)?.seq, lost.seq, '"ann 1" back under its own number')
      const moved = await until(async () => {
        const m = (await n.ann.messenger.history(bob)).find(x => x.id === after.id)
        return m !== undefined && m.seq > lost.seq ? m : undefined
      }, 'Ann\'s message moved', 20_000)
      await until(async () => await relay.mailbox.queued(bob) > 0, 'the moved copy waits for Bob at the relay', 20_000)
      await n.ann.stop()
      // Bob gets the moved copy from the mailbox
      await up('bob')
      const bobHist = await has(n.bob, ann, [...sent, lost, after])
      assert.equal(bobHist.find(m => m.id === after.id)?.seq, moved.seq, 'Bob holds it under its new number')
      await drained(n.bob)
      // the relay takes a notice only from the device that signed it, for the envelope's author alone, signed right
      const real = (await n.bob.messenger.slotTaken([after.envelope])).find(e => e.id === lost.id)!
      assert.equal(real.taken?.refused, after.id, 'Bob\'s notice names the message he refused there')
      const forger = await newIdentity()
      const deposit = async (to: string, e: Envelope): Promise<string> => await n.bob.relay.deposit([to], e).then(() => 'kept', (err) => remoteCode(err) ?? 'none')
      assert.equal(await deposit(bob, real), 'ERR_INVALID_ENVELOPE', 'only to its author')
      assert.equal(await deposit(ann, { ...real, taken: { ...real.taken!, sig: real.taken!.sig.replace(/^./, c => c === 'A' ? 'B' : 'A') } }), 'ERR_BAD_SIGNATURE')
      assert.equal(await deposit(ann, signSlotTaken(forger, real)), 'ERR_INVALID_ENVELOPE', 'signed by another device than the depositor')
      await n.bob.stop()
      await up('ann')
      const finalAnn = await has(n.ann, bob, [...sent, lost, after])
      assert.deepEqual(finalAnn.filter(m => m.state === 'failed').map(m => m.text), [], 'nothing failed at Ann')
      assert.deepEqual(bobHist.filter(m => m.state === 'failed').map(m => m.text), [], 'nothing failed at Bob')
      sameSlots({ ann: finalAnn, bob: bobHist })

      // notices as mail (what a hostile relay could hand over): typed refusals, nothing changes, the node keeps running
      const take = async (e: Envelope): Promise<string> => {
        try {
          return await (await n.ann.messenger.acceptMail(e, bob)).durable
        } catch (err) { return toParleyError(err).code }
      }
      // a relay signs a notice in Bob's name: the signature is Bob's or nothing
      const forged = signSlotTaken(forger, real, after.id)
      assert.equal(await take({ ...forged, taken: { ...forged.taken!, by: bob } }), 'ERR_BAD_SIGNATURE')
      // Bob's notice moved onto another envelope
      const other = finalAnn.find(m => m.id === sent[0]!.id)!.envelope
      assert.equal(await take({ ...other, taken: real.taken }), 'ERR_BAD_SIGNATURE')
      // signed by a device that is no recipient of it (it cannot hold it)
      assert.equal(await take(signSlotTaken(forger, real)), 'ERR_NOT_A_RECIPIENT')
      // about a message this device did not write
      const theirs = sealEnvelope(forger, { id: newMessageId(), conv: real.conv, seq: 1, hlc: real.hlc, recipients: [ann], body: { text: 'x' } })
      assert.equal(await take(signSlotTaken(forger, theirs)), 'ERR_INVALID_ENVELOPE')
      // Bob's real notice again (a relay replaying it): nothing moves
      assert.equal(await take(real), 'duplicate')
      const now = await n.ann.messenger.history(bob)
      assert.equal(now.find(m => m.id === after.id)?.seq, moved.seq, 'a replayed notice moves nothing')
      assert.equal(now.length, finalAnn.length)
      const next = await n.ann.messenger.sendMessage(bob, 'still here')
      assert.ok(next.seq > moved.seq, 'Ann sends on above the moved message')
    } finally {
      for (const x of Object.values(n)) await x.stop()
      await relay.stop()
      await removeDir(dir)
    }
  })

  it('across two offices (federation: relay to relay mail only): the notice travels back through both relays, the message moves, the lost one comes back', async () => {
    const dir = await tmpDir('parley-slotnotice-fed-')
    const relays: RelayServer[] = []
    const office = async (name: string): Promise<RelayServer> => {
      const r = new RelayServer({
        dataDir: join(dir, name),
        listen: ['/ip4/127.0.0.1/tcp/0'],
        federation: { allowed: true, name, tickMs: 100, retryMinMs: 100, retryMaxMs: 400, directoryRefreshMs: 60_000 },
        admin: { port: null }
      }, createLogger(name, (process.env.PARLEY_LOG as 'debug' | undefined) ?? 'error'))
      await r.start()
      relays.push(r)
      return r
    }
    const a = await office('officeA')
    const b = await office('officeB')
    await b.federation.add((await a.federation.invite()).token)
    const annDir = join(dir, 'ann')
    const at = (name: string, relay: RelayServer, invite?: string): ParleyNode => loopbackNode(join(dir, name), {
      name, relay: relay.addresses()[0], ...(invite !== undefined ? { invite } : {}), relayClient: { mailboxPollMs: 300 }, messenger: { depositAfterMs: 100 }
    })
    const n: Record<'ann' | 'bob', ParleyNode> = { ann: at('ann', a, (await a.mailbox.createInvite()).token), bob: at('bob', b, (await b.mailbox.createInvite()).token) }
    const admitted = async (x: ParleyNode): Promise<void> => { await until(() => x.relay.status().admitted === true, `${x.messenger.name} admitted`, 20_000) }
    try {
      for (const x of [n.ann, n.bob]) { await x.start(); await admitted(x); await x.relay.publish({ listed: true, name: x.messenger.name }) }
      await a.federation.refreshDirectories(); await b.federation.refreshDirectories()
      for (const x of [n.ann, n.bob]) assert.equal((await x.relay.offices('')).length, 1, 'the other office\'s person is listed')
      const ann = n.ann.peerId
      const bob = n.bob.peerId
      const sent = [await n.ann.messenger.sendMessage(bob, 'ann 0')]
      await has(n.bob, ann, sent)
      await n.ann.messenger.waitForState(sent[0]!.id, 'delivered', within())
      await n.ann.stop()
      await cp(annDir, join(dir, 'backup'), { recursive: true })
      n.ann = at('ann', a)
      await n.ann.start(); await admitted(n.ann)
      const lost = await n.ann.messenger.sendMessage(bob, 'ann 1')
      await has(n.bob, ann, [...sent, lost])
      await n.ann.stop()
      await rm(annDir, { recursive: true })
      await cp(join(dir, 'backup'), annDir, { recursive: true })
      n.ann = at('ann', a)
      await n.ann.start(); await admitted(n.ann)
      const after = await n.ann.messenger.sendMessage(bob, 'after the restore')
      assert.equal(after.seq, lost.seq, 'the number Bob holds "ann 1" under is given out again')
      // Bob refuses it (mail from office A), gives "ann 1" back through relay B and relay A; Ann moves her message
      const annHist = await has(n.ann, bob, [...sent, lost])
      assert.equal(annHist.find(m => m.id === lost.id)?.seq, lost.seq, '"ann 1" back under its own number')
      const bobHist = await has(n.bob, ann, [...sent, lost, after])
      const moved = bobHist.find(m => m.id === after.id)!
      assert.ok(moved.seq > lost.seq, `Bob holds the moved copy (${moved.seq} > ${lost.seq})`)
      const finalAnn = await has(n.ann, bob, [...sent, lost, after])
      assert.equal(finalAnn.find(m => m.id === after.id)?.seq, moved.seq)
      for (const h of [finalAnn, bobHist]) assert.deepEqual(h.filter(m => m.state === 'failed').map(m => m.text), [], 'nothing failed')
      sameSlots({ ann: finalAnn, bob: bobHist })
      assert.ok(!n.ann.host.isConnected(bob), 'no direct connection: everything went through the relays')
    } finally {
      for (const x of Object.values(n)) await x.stop()
      for (const r of relays) await r.stop()
      await removeDir(dir)
    }
  })
})
