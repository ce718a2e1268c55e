import { test } from 'node:test'
import assert from 'node:assert/strict'
import { inSlidingWindow } from '../../../../core/util/windows.js'

const later = async <T>(v: T, ms: number): Promise<T> => await new Promise(resolve => setTimeout(() => { resolve(v) }, ms))

test('a sliding window keeps `size` calls in flight and starts the next as soon as one settles', async () => {
  let inFlight = 0
  let most = 0
  const started: number[] = []
  const done: string[][] = []
  await inSlidingWindow([0, 1, 2, 3, 4, 5, 6, 7], 3, async (i) => {
    started.push(i)
    inFlight++
    most = Math.max(most, inFlight)
    // the first call is slow: the window slides past it instead of waiting for the whole window
    await later(null, i === 0 ? 60 : 5)
    inFlight--
    return `m${i}`
  }, async (ids) => { done.push(ids) })
  assert.equal(most, 3)
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6, 7])
  // nothing is handed over before the slow first one: the prefix is in order, every id once
  assert.deepEqual(done.flat(), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7'])
  assert.equal(done[0]?.[0], 'm0')
})

test('the first failure stops new calls; the prefix before it is handed over, later successes are not', async () => {
  const started: number[] = []
  const done: string[] = []
  await assert.rejects(inSlidingWindow([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 2, async (i) => {
    started.push(i)
    await later(null, 2)
    if (i === 3) throw new Error('boom')
    return i === 1 ? null : `m${i}`
  }, async (ids) => { done.push(...ids) }), /boom/)
  assert.deepEqual(done, ['m0', 'm2'])
  assert.ok(started.length <= 5, `no call started long after the failure: ${started.join(',')}`)
})

test('a failure of `done` is thrown once the calls in flight settled', async () => {
  await assert.rejects(inSlidingWindow([1, 2, 3], 3, async (i) => `m${i}`, async () => { throw new Error('store failed') }), /store failed/)
})

test('a failure of `done` stops new calls instead of sending the whole list', async () => {
  let calls = 0
  const items = Array.from({ length: 200 }, (_, i) => i)
  await assert.rejects(inSlidingWindow(items, 4, async (i) => {
    calls++
    await later(null, 1)
    return `m${i}`
  }, async () => { throw new Error('store failed') }), /store failed/)
  assert.ok(calls <= 12, `calls after the first failed done: ${calls} of ${items.length}`)
})
