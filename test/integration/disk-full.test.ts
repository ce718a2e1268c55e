/**
 * Disk full, end to end: Ann's data dir is on a small tmpfs this test mounts
 * (root only; CI is root). Fill it, send both ways, free it, send, kill -9 and
 * restart Ann: every message the API accepted (201) is in the history of both
 * sides, none failed, and Ann's sequence numbers never went backwards.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { NodeProc } from '../helpers/proc.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import { ParleyError } from '../../core/errors.js'
import type { IdentityView, MessageView } from '../../node/src/api/contract.js'
import { sameSlots } from '../helpers/slots.js'

const TMPFS_MIB = 24
const CLI = new URL('../../bin/parley.js', import.meta.url).pathname
const cli = (args: string[]): { status: number | null, stdout: string, stderr: string } =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PARLEY_LOG: 'error' } })

/** Fills the file system holding `file` until it refuses more (dd stops at ENOSPC). */
function fill (file: string): void {
  try { execFileSync('dd', ['if=/dev/zero', `of=${file}`, 'bs=64k'], { stdio: 'pipe' }) } catch { /* ENOSPC ends dd */ }
}

describe('disk full (tmpfs)', () => {
  it('fill, send, free, send, restart: every 201 is in both histories, none failed', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and must run as root (CI does)')
    const dir = await tmpDir('parley-diskfull-')
    const mnt = join(dir, 'mnt')
    await mkdir(mnt)
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_MIB}m`, 'tmpfs', mnt])
    const args = ['--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--announce-loopback']
    const ann = new NodeProc({ dataDir: join(mnt, 'ann'), name: 'Ann', logFile: join(dir, 'ann.log'), args })
    const bob = new NodeProc({ dataDir: join(dir, 'bob'), name: 'Bob', logFile: join(dir, 'bob.log'), args })
    let ok = false
    try {
      await Promise.all([ann.start(), bob.start()])
      const annId = (await ann.api!.call<IdentityView>('GET', '/identity')).peerId
      const bobMe = await bob.api!.call<IdentityView>('GET', '/identity')
      const bobAddr = bobMe.addresses.find(a => a.includes('/127.0.0.1/')) as string
      const link = async (): Promise<void> => {
        await ann.api!.call('POST', '/peers/dial', { addr: bobAddr })
        await until(async () => (await bob.api!.call<Array<{ peerId: string, online: boolean }>>('GET', '/peers')).some(p => p.peerId === annId && p.online), 'Ann and Bob connected', 20_000, 100)
      }
      await link()

      const accepted: Array<{ from: NodeProc, id: string, text: string }> = []
      const refused: string[] = []
      const send = async (from: NodeProc, to: string, text: string): Promise<void> => {
        try {
          const m = await from.api!.call<MessageView>('POST', '/messages', { to, text })
          accepted.push({ from, id: m.id, text })
        } catch (err) {
          if (!(err instanceof ParleyError)) throw err
          refused.push(err.code)
        }
      }
      for (let i = 0; i < 3; i++) { await send(ann, bobMe.peerId, `before ${i}`); await send(bob, annId, `bob before ${i}`) }

      fill(join(mnt, 'filler'))
      // some small writes may still fit in the last page of the log; a few more cannot
      for (let i = 0; i < 12; i++) { await send(ann, bobMe.peerId, `while full ${i} ${'x'.repeat(2000)}`); await send(bob, annId, `bob while full ${i}`) }
      assert.ok(refused.length > 0, 'some sends were refused while the disk was full')
      assert.deepEqual([...new Set(refused)], ['ERR_DISK_FULL'])
      // the node kept running and still answers
      assert.equal((await ann.api!.call<{ peerId: string }>('GET', '/status')).peerId, annId)
      // the CLI says it in words, with the exit code scripts test (the UI's words: test/unit/app/store-health.test.ts)
      const bySend = cli(['send', '--data', join(mnt, 'ann'), bobMe.peerId, 'from the CLI while full'])
      assert.equal(bySend.status, 1, bySend.stdout + bySend.stderr)
      assert.match(bySend.stderr, /^parley: ERR_DISK_FULL: the disk holding Parley's data is full, so nothing new can be saved\. Free some space on it; Parley carries on by itself once there is room\n$/)

      await rm(join(mnt, 'filler'))
      const before = refused.length
      for (let i = 0; i < 5; i++) { await send(ann, bobMe.peerId, `after ${i}`); await send(bob, annId, `bob after ${i}`) }
      assert.equal(refused.length, before, 'every send after space was freed is accepted at once')

      await ann.kill9()
      await ann.start()
      await link()

      const history = async (n: NodeProc, peer: string): Promise<MessageView[]> => await n.api!.call<MessageView[]>('GET', `/conversations/${peer}/messages?limit=100000`)
      await until(async () => {
        const [a, b] = [await history(ann, bobMe.peerId), await history(bob, annId)]
        const has = (h: MessageView[], id: string): boolean => h.some(m => m.id === id)
        return accepted.every(s => has(a, s.id) && has(b, s.id))
      }, 'every accepted message in both histories', 60_000, 200)
      const histories: Record<string, MessageView[]> = {}
      for (const [n, peer] of [[ann, bobMe.peerId], [bob, annId]] as const) {
        const h = await history(n, peer)
        const failed = h.filter(m => m.state === 'failed')
        assert.deepEqual(failed.map(m => `${m.text.slice(0, 20)}: ${m.error ?? ''}`), [], 'no message failed')
        for (const s of accepted) assert.equal(h.find(m => m.id === s.id)?.text, s.text)
        histories[n === ann ? 'ann' : 'bob'] = h
      }
      // no slot reused, across the two nodes: every (conversation, author, seq) one id, every id one number
      sameSlots(histories)
      // Ann's outgoing messages all reach delivered (Bob stored them): nothing stuck queued
      await until(async () => (await history(ann, bobMe.peerId)).filter(m => m.outgoing).every(m => m.state === 'delivered' || m.state === 'read'), 'Ann\'s messages delivered', 30_000, 200)

      // a node started on a full disk says so in words (its first writes: the key file, the store) and exits 1
      fill(join(mnt, 'filler'))
      const fresh = cli(['start', '--data', join(mnt, 'carol'), ...args, '--api-port', '0'])
      assert.equal(fresh.status, 1, fresh.stdout + fresh.stderr)
      assert.match(fresh.stderr, /parley: ERR_DISK_FULL: the disk holding Parley's data \(.*carol\) is full, so Parley cannot start\. Free some space on it, then start Parley again/)
      await rm(join(mnt, 'filler'))
      ok = true
    } finally {
      await Promise.all([ann.stop(), bob.stop()])
      try { execFileSync('umount', ['-l', mnt], { stdio: 'pipe' }) } catch { /* not mounted */ }
      if (ok) await removeDir(dir)
      else console.error(`disk-full test logs kept in ${dir}`)
    }
  })
})
