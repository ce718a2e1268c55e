/**
 * Files through the relay, in process on loopback (the nodes know no
 * addresses of each other, so they meet only through the relay): a file for
 * an offline recipient is kept at the relay as encrypted chunks (no plaintext
 * in its data dir), the per-user file quota refuses clearly, a chunk damaged
 * at the relay is rejected and fetched again from the sender, over the relay
 * circuit; a route change in the middle of a transfer (relay circuit → a
 * direct connection, the circuit closed) goes on from the chunks it has.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { filesContaining, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { TransferView } from '../../node/src/files/types.js'
import type { Libp2p } from 'libp2p'
import { peerIdFromString } from '@libp2p/peer-id'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const MiB = 1024 * 1024

describe('files through the relay', () => {
  let dir: string
  let relay: RelayServer
  let relayAddr: string
  let invite: string | undefined
  const nodes: Record<string, ParleyNode> = {}

  const start = async (name: string): Promise<ParleyNode> => {
    const n = loopbackNode(join(dir, name), {
      name, relay: relayAddr, invite, messenger: { depositAfterMs: 100 }, relayClient: { mailboxPollMs: 300 },
      files: { downloads: join(dir, `${name}-dl`), tickMs: 300 }
    })
    await n.start()
    nodes[name] = n
    await until(() => n.relay.status().admitted === true, `${name} admitted`, 15_000)
    return n
  }
  const stop = async (name: string): Promise<void> => { await nodes[name]?.stop(); delete nodes[name] }

  before(async () => {
    dir = await tmpDir('parley-files-relay-')
    relay = new RelayServer({
      dataDir: join(dir, 'relay'), listen: ['/ip4/127.0.0.1/tcp/0'], files: { quotaBytes: 3 * MiB }
    }, createLogger('relay', 'error'))
    await relay.start()
    relayAddr = relay.addresses()[0] as string
    invite = (await relay.mailbox.createInvite({ maxUses: 2 })).token
  })
  after(async () => {
    for (const n of Object.values(nodes)) await n.stop()
    await relay?.stop()
    await removeDir(dir)
  })

  it('an offline recipient gets the file from the relay; quota refused clearly; a damaged chunk is fetched again from the sender', async () => {
    const ana = await start('Ana')
    const ben = await start('Ben')
    const benId = ben.peerId
    await stop('Ben')
    invite = undefined
    await until(() => !ana.host.isOnline(benId), 'Ben offline for Ana', 15_000)

    const canary = `CANARY-${randomBytes(8).toString('hex')}-`
    const data = Buffer.concat(Array.from({ length: 2 * MiB / 64 }, () => Buffer.from(canary.padEnd(64, '#'))))
    const first = join(dir, 'report.txt')
    await writeFile(first, data)
    const [one] = await ana.files.send(benId, [first])
    await until(() => ana.files.get(one!.id).relay?.state === 'uploaded', 'copied to the relay', 20_000)

    // a second 2 MiB file would pass the 3 MiB per-user quota: refused, with the numbers
    const other = randomBytes(2 * MiB)
    await writeFile(join(dir, 'second.bin'), other)
    const [two] = await ana.files.send(benId, [join(dir, 'second.bin')])
    const refused = await until(() => { const v = ana.files.get(two!.id); return v.relay?.state === 'refused' ? v : undefined }, 'quota refusal', 20_000)
    assert.equal(refused.relay?.code, 'ERR_FILE_QUOTA_EXCEEDED')
    assert.match(refused.relay?.message ?? '', /at most 3\.0 MiB of your files .*2\.0 MiB are in use/)

    // ciphertext only at the relay
    assert.deepEqual(await filesContaining(join(dir, 'relay'), canary), [])
    assert.deepEqual(await filesContaining(join(dir, 'relay'), canary.slice(0, 24)), [])

    // damage chunk 1 of the first file at the relay, with the sender gone
    const fileDir = join(dir, 'relay', 'files', (await readdir(join(dir, 'relay', 'files')))[0] as string)
    const chunk = await readFile(join(fileDir, '1'))
    chunk[100] = (chunk[100] as number) ^ 0xff
    await writeFile(join(fileDir, '1'), chunk)
    await stop('Ana')

    const ben2 = await start('Ben')
    const inOne = (): TransferView | undefined => ben2.files.list().find(t => t.msgId === one!.msgId)
    // the good chunk is kept, the damaged one is not
    const waiting = await until(() => { const v = inOne(); return v !== undefined && v.rejected >= 1 && v.bytes === MiB ? v : undefined }, 'damaged chunk rejected', 60_000)
    await new Promise(resolve => setTimeout(resolve, 500))
    assert.equal(inOne()?.bytes, MiB)
    assert.notEqual(inOne()?.state, 'complete')
    assert.ok(waiting.rejected >= 1)

    // the sender comes back: the missing chunk (and the file the relay refused) come from it, over the relay circuit
    await start('Ana')
    const done = await until(() => { const v = inOne(); return v?.state === 'complete' ? v : undefined }, 'first file complete', 30_000)
    assert.equal(sha(await readFile(done.path as string)), sha(data))
    const second = await until(() => { const v = ben2.files.list().find(t => t.msgId === two!.msgId); return v?.state === 'complete' ? v : undefined }, 'second file complete', 30_000)
    assert.equal(sha(await readFile(second.path as string)), sha(other))
    assert.equal(ben2.host.reach(nodes.Ana!.peerId), 'relay')
  })
  it('route change mid-transfer: from the relay circuit to a direct connection, the circuit closed; goes on from its chunks', async () => {
    const ana = nodes.Ana as ParleyNode
    const ben = nodes.Ben as ParleyNode
    assert.equal(ben.host.reach(ana.peerId), 'relay')
    const data = randomBytes(48 * MiB + 11)
    const src = join(dir, 'route.bin')
    await writeFile(src, data)
    const [sent] = await ana.files.send(ben.peerId, [src])
    const view = (): TransferView | undefined => ben.files.list().find(t => t.msgId === sent!.msgId)
    const at = await until(() => { const v = view(); return v !== undefined && v.bytes > 0 ? v : undefined }, 'first chunks over the circuit', 30_000, 5)
    // the colleague walks into the office: a direct connection, and the circuit goes
    const direct = ana.host.addresses().find(a => a.includes('/127.0.0.1/') && !a.includes('/p2p-circuit'))
    assert.ok(direct !== undefined)
    await ben.host.dial(direct)
    const libp2p = (ben.host as unknown as { node: Libp2p }).node
    for (const c of libp2p.getConnections(peerIdFromString(ana.peerId))) {
      if (c.remoteAddr.toString().includes('/p2p-circuit')) c.abort(new Error('route change'))
    }
    assert.equal(ben.host.reach(ana.peerId), 'lan')
    const switched = view()?.bytes ?? 0
    assert.ok(switched >= at.bytes)
    assert.ok(switched < data.byteLength, 'the route changed before the end (the rest came over the direct connection)')
    const done = await until(() => { const v = view(); return v?.state === 'complete' ? v : undefined }, 'complete over the direct connection', 60_000)
    console.error(`# route change at ${(switched * 100 / data.byteLength).toFixed(0)} %`)
    assert.equal(sha(await readFile(done.path as string)), sha(data))
    assert.equal(done.rejected, 0)
  })
})
