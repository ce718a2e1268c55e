/**
 * A mailbox flood at a real relay (in process, on loopback): one admitted
 * sender fills its share of a colleague's mailbox and is refused beyond it,
 * visibly (state and reason through the API and the CLI); another sender's
 * mail to the same colleague still gets through; the relay's stats name the
 * flooder. Nothing is lost: the refused messages wait and go directly.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { PARLEY_BIN, RELAY_BIN } from '../helpers/proc.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { ApiClient } from '../../node/src/cli/client.js'
import { createLogger } from '../../core/util/log.js'
import type { MessageView } from '../../node/src/api/contract.js'
import type { ParleyNode } from '../../node/src/parley-node.js'

const SHARE = 10
const FLOOD = 14

function cli (bin: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [bin, ...args], (err, stdout, stderr) => { if (err !== null) reject(new Error(`${err.message}\n${stderr}`)); else resolve(stdout) })
  })
}

describe('mailbox flood', () => {
  let dir: string
  let relay: RelayServer
  let relayAddr: string
  let invite: string
  const nodes: ParleyNode[] = []
  let victimId: string

  const start = async (name: string): Promise<ParleyNode> => {
    const n = loopbackNode(join(dir, name), { name, relay: relayAddr, invite, messenger: { depositAfterMs: 100 }, relayClient: { mailboxPollMs: 300 } })
    await n.start()
    nodes.push(n)
    await until(() => n.relay.status().admitted === true, `${name} admitted`, 20_000)
    return n
  }

  before(async () => {
    dir = await tmpDir('parley-flood-')
    relay = new RelayServer({ dataDir: join(dir, 'relay'), listen: ['/ip4/127.0.0.1/tcp/0'], mailbox: { quotaMessages: 4 * SHARE, senderShare: 0.25 } }, createLogger('relay', 'error'))
    await relay.start()
    relayAddr = relay.addresses()[0] as string
    invite = (await relay.mailbox.createInvite({ maxUses: 3 })).token
    // the victim gets an account, then goes away
    const victim = await start('Victim')
    victimId = victim.peerId
    await victim.stop()
    nodes.splice(nodes.indexOf(victim), 1)
  })
  after(async () => {
    for (const n of nodes) await n.stop()
    await relay?.stop()
    await removeDir(dir)
  })

  it('the flooder fills its share and sees the refusal; the other sender gets through; stats name the flooder', async () => {
    const flooder = await start('Flooder')
    const honest = await start('Honest')
    const flood: MessageView[] = []
    for (let i = 0; i < FLOOD; i++) flood.push(await flooder.messenger.sendMessage(victimId, `flood ${i}`))
    const api = await ApiClient.open(join(dir, 'Flooder'))
    const views = await until(async () => {
      const h = await api.call<MessageView[]>('GET', `/conversations/${victimId}/messages`)
      const sent = h.filter(m => m.state === 'sent').length
      const refused = h.filter(m => m.state === 'queued' && m.relayRefusal === 'ERR_SENDER_SHARE_FULL').length
      return sent === SHARE && refused === FLOOD - SHARE ? h : undefined
    }, 'the share filled and the rest refused with ERR_SENDER_SHARE_FULL', 30_000, 100)
    // the first messages (by order) are at the relay, the last ones wait
    assert.deepEqual(views.map(m => m.state), [...Array(SHARE).fill('sent'), ...Array(FLOOD - SHARE).fill('queued')])

    // another sender to the same person still gets through
    const mine: MessageView[] = []
    for (let i = 0; i < 3; i++) mine.push(await honest.messenger.sendMessage(victimId, `honest ${i}`))
    for (const m of mine) await honest.messenger.waitForState(m.id, 'sent', { signal: AbortSignal.timeout(20_000) })
    assert.ok((await honest.messenger.history(victimId)).every(m => (m as { relayRefusal?: string }).relayRefusal === undefined))

    // the CLI says it in words
    const history = await cli(PARLEY_BIN, ['history', victimId, '--data', join(dir, 'Flooder')])
    assert.equal(history.split('\n').filter(l => l.includes('[queued: your share of their relay mailbox is full]')).length, FLOOD - SHARE, history)

    // the relay's stats name the flooding sender first
    const stats = await relay.stats()
    const top = stats.senders[0]
    assert.equal(top?.sender, flooder.peerId)
    assert.equal(top?.recipient, victimId)
    assert.equal(top?.messages, SHARE)
    assert.equal(top?.shareUsed, 1)
    assert.ok((top?.refused ?? 0) >= FLOOD - SHARE)
    assert.equal(stats.senders.find(s => s.sender === honest.peerId)?.refused, 0)
    const text = await cli(RELAY_BIN, ['stats', '--data', join(dir, 'relay')])
    assert.match(text, new RegExp(`${flooder.peerId} -> ${victimId}: ${SHARE} messages, \\d+ bytes, 100 % of the share, \\d+ refused \\(share full\\)`))
  })

  it('when the victim returns, nothing is lost: the honest mail, the flood at the relay and the refused rest arrive', async () => {
    const victim = await start('Victim')
    await until(async () => {
      const texts = new Set((await victim.messenger.history(nodes[0]!.peerId)).map(m => m.text))
      const honest = new Set((await victim.messenger.history(nodes[1]!.peerId)).map(m => m.text))
      return texts.size === FLOOD && honest.size === 3
    }, 'all mail, from the relay and directly', 60_000, 200)
    const flooder = nodes[0]!
    const h = await flooder.messenger.history(victimId)
    await until(async () => (await flooder.messenger.history(victimId)).every(m => m.state === 'delivered' || m.state === 'read'), 'every flood message delivered', 30_000, 200)
    assert.equal(h.length, FLOOD)
  })
})
