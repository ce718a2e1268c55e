/**
 * The relay's liveness pings (relay/src/liveness.ts, issue 15): every connection is pinged once per
 * interval, spread over it in slices, never more than `parallel` at once; a failed ping closes it.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Liveness } from '../../../relay/src/liveness.js'

const init = { intervalMs: 10_000, timeoutMs: 1000, parallel: 4, tickMs: 1000 }
const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve)) }

describe('relay liveness', () => {
  it('pings every connection once per interval, one slice per tick, at most `parallel` at once', async () => {
    const conns = Array.from({ length: 30 }, (_, i) => i)
    const pinged: number[] = []
    let inFlight = 0
    let most = 0
    const l = new Liveness<number>({
      connections: () => conns,
      ping: async (c) => { pinged.push(c); inFlight++; most = Math.max(most, inFlight); await settle(); inFlight-- },
      dead: () => { assert.fail('no ping failed') }
    }, init)
    for (let t = 0; t < 10; t++) {
      l.tick(10_000 + t * 1000)
      assert.ok(pinged.length <= (t + 1) * 3, `tick ${t}: ${pinged.length} pinged, a slice is 3`)
      await settle(); await settle()
    }
    assert.deepEqual([...pinged].sort((a, b) => a - b), conns, 'each connection once in the interval')
    assert.ok(most <= 4, `at most 4 in flight, saw ${most}`)
    l.tick(20_000)
    assert.equal(pinged.length, 33, 'the next round starts after the interval')
  })

  it('closes a connection whose ping fails, and only that one', async () => {
    const dead: number[] = []
    const l = new Liveness<number>({
      connections: () => [1, 2, 3],
      ping: async (c) => { if (c === 2) throw new Error('timed out') },
      dead: (c, err) => { dead.push(c); assert.equal(err.message, 'timed out') }
    }, { ...init, intervalMs: 1000 })
    l.tick(1000)
    await settle()
    assert.deepEqual(dead, [2])
  })
})
