/**
 * dialWithRetry (node/src/messaging/dial-retry.ts): `parley link CODE` keeps
 * dialling while discovery runs, bounded, with one clear error after.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { dialWithRetry } from '../../../node/src/messaging/dial-retry.js'
import { ParleyError } from '../../../core/errors.js'

const noAddrs = (): Error => new Error('The dial request has no valid addresses')

describe('dialWithRetry', () => {
  it('tries again until the dial succeeds (the addresses came meanwhile)', async () => {
    let calls = 0
    const got = await dialWithRetry(async () => { if (++calls < 3) throw noAddrs(); return 'channel' }, { what: 'your other device', waitMs: 5000, retryMs: 20 })
    assert.equal(got, 'channel')
    assert.equal(calls, 3)
  })

  it('gives up after the wait with ERR_PEER_UNREACHABLE naming the tries and the last error', async () => {
    let calls = 0
    const start = Date.now()
    await assert.rejects(dialWithRetry(async () => { calls++; throw noAddrs() }, { what: 'your other device', waitMs: 300, retryMs: 50 }), (err: unknown) => {
      assert.ok(err instanceof ParleyError)
      assert.equal(err.code, 'ERR_PEER_UNREACHABLE')
      assert.match(err.message, /could not reach your other device within 0.3 s \(\d+ tries; last: .*no valid addresses\)/)
      return true
    })
    const took = Date.now() - start
    assert.ok(calls >= 2, `tried more than once (${calls})`)
    assert.ok(took >= 200 && took < 10_000, `bounded by the wait (${took} ms)`)
  })

  it('each try gets a signal bounded by the time left; an abort stops at once', async () => {
    const signals: AbortSignal[] = []
    const ctl = new AbortController()
    const p = dialWithRetry(async (o) => {
      signals.push(o.signal!)
      if (signals.length === 2) ctl.abort(new Error('the user gave up'))
      throw noAddrs()
    }, { what: 'x', waitMs: 10_000, retryMs: 10 }, { signal: ctl.signal })
    await assert.rejects(p, /the user gave up/)
    assert.equal(signals.length, 2)
    assert.ok(signals.every(s => s instanceof AbortSignal))
  })
})
