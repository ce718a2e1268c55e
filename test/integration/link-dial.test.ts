/**
 * `parley link CODE` typed before discovery found the other device (the last
 * full suite's lan-accounts failure: "no valid addresses"): the new device
 * keeps dialling for a few seconds, and links once the addresses come; with
 * no way to reach the other device it fails after the bounded wait, in
 * words (ERR_PEER_UNREACHABLE), with nothing left pending.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { connect, loopbackNode, removeDir, tmpDir } from '../helpers/nodes.js'
import { ParleyError } from '../../core/errors.js'

describe('linking while discovery runs', () => {
  it('the dial is tried again until the other device is found, then the link completes; unreachable: a clear error after the wait', async () => {
    const dir = await tmpDir('parley-linkdial-')
    const desktop = loopbackNode(join(dir, 'desktop'), { name: 'desktop' })
    const laptop = loopbackNode(join(dir, 'laptop'), { name: 'laptop', messenger: { linkDialWaitMs: 20_000 } })
    const lonely = loopbackNode(join(dir, 'lonely'), { name: 'lonely', messenger: { linkDialWaitMs: 600 } })
    try {
      for (const n of [desktop, laptop, lonely]) await n.start()
      const { code } = desktop.messenger.linking.createCode()
      // the laptop knows no address of the desktop yet: the first dials fail ("no valid addresses")
      const joining = laptop.messenger.linking.join(code, 'laptop')
      await new Promise(resolve => setTimeout(resolve, 300))
      // discovery finds it (here: a dial from the desktop gives the laptop its addresses)
      await connect(desktop, laptop)
      const s = await joining
      assert.equal(s.account, desktop.peerId)
      assert.ok(s.devices.includes(laptop.peerId))
      // never found: a clear error once the bounded wait is over, and no link pending
      const other = desktop.messenger.linking.createCode()
      const start = Date.now()
      await assert.rejects(lonely.messenger.linking.join(other.code), (e: unknown) => {
        assert.ok(e instanceof ParleyError)
        assert.equal(e.code, 'ERR_PEER_UNREACHABLE')
        assert.match(e.message, /could not reach your other device within 0\.6 s .*is it running/)
        return true
      })
      assert.ok(Date.now() - start < 10_000, 'bounded')
      assert.equal(lonely.messenger.linking.pendingLink, undefined, 'nothing pending: nothing was asked')
    } finally {
      for (const n of [desktop, laptop, lonely]) await n.stop()
      await removeDir(dir)
    }
  })
})
