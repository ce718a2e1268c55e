import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_MAX_CLOCK_DRIFT_MS, HybridClock, MAX_HLC_COUNTER, compareHlc, hlcKey } from '../../../node/src/clock/hlc.js'
import type { Hlc } from '../../../core/protocol/envelope.js'

/** A wall clock the test moves by hand. */
function fakeNow (start: number): { now: () => number, set: (t: number) => void } {
  let t = start
  return { now: () => t, set: (v) => { t = v } }
}

const assertIncreasing = (stamps: Hlc[]): void => {
  for (let i = 1; i < stamps.length; i++) {
    assert.ok(compareHlc(stamps[i] as Hlc, stamps[i - 1] as Hlc) > 0, `stamp ${i} ${JSON.stringify(stamps[i])} <= ${JSON.stringify(stamps[i - 1])}`)
  }
}

describe('HybridClock', () => {
  it('uses the wall clock when it moves forward', () => {
    const wall = fakeNow(1000)
    const clock = new HybridClock(wall.now)
    assert.deepEqual(clock.tick(), { w: 1000, c: 0 })
    wall.set(1005)
    assert.deepEqual(clock.tick(), { w: 1005, c: 0 })
  })

  it('counts up when the wall clock stands still', () => {
    const clock = new HybridClock(() => 1000)
    assert.deepEqual([clock.tick(), clock.tick(), clock.tick()], [{ w: 1000, c: 0 }, { w: 1000, c: 1 }, { w: 1000, c: 2 }])
  })

  it('ticks strictly increase even when the wall clock goes backwards', () => {
    const wall = fakeNow(10_000)
    const clock = new HybridClock(wall.now)
    const stamps: Hlc[] = []
    for (const t of [10_000, 9_000, 9_500, 10_000, 10_001, 5, 10_001, 20_000]) {
      wall.set(t)
      stamps.push(clock.tick())
    }
    assertIncreasing(stamps)
    assert.deepEqual(stamps[1], { w: 10_000, c: 1 })
    assert.deepEqual(stamps[4], { w: 10_001, c: 0 })
    assert.deepEqual(stamps[7], { w: 20_000, c: 0 })
  })

  it('resumes after a persisted timestamp even if the wall clock is behind it', () => {
    const clock = new HybridClock(() => 100, { w: 500, c: 7 })
    assert.deepEqual(clock.tick(), { w: 500, c: 8 })
  })

  it('returns copies: mutating a result does not move the clock', () => {
    const clock = new HybridClock(() => 100)
    const a = clock.tick()
    a.w = 1e12
    clock.current().w = 1e12
    assert.deepEqual(clock.tick(), { w: 100, c: 1 })
  })

  it('observing a future remote timestamp moves the clock past it', () => {
    const clock = new HybridClock(() => 1000)
    clock.tick()
    clock.observe({ w: 5000, c: 3 })
    assert.deepEqual(clock.current(), { w: 5000, c: 3 })
    assert.deepEqual(clock.tick(), { w: 5000, c: 4 })
  })

  it('observing an older remote timestamp changes nothing', () => {
    const clock = new HybridClock(() => 1000)
    clock.tick()
    clock.observe({ w: 999, c: 50 })
    assert.deepEqual(clock.tick(), { w: 1000, c: 1 })
  })

  it('ignores a remote timestamp beyond the maximum drift', () => {
    const clock = new HybridClock(() => 1000, { w: 0, c: 0 }, 60_000)
    clock.observe({ w: 1000 + 60_001, c: 0 })
    assert.deepEqual(clock.current(), { w: 0, c: 0 })
    assert.deepEqual(clock.tick(), { w: 1000, c: 0 })
    clock.observe({ w: 1000 + 60_000, c: 0 })
    assert.deepEqual(clock.current(), { w: 61_000, c: 0 })
  })

  it('never produces a counter beyond the wire limit: it rolls into the next millisecond', () => {
    const clock = new HybridClock(() => 1000, { w: 1000, c: MAX_HLC_COUNTER - 1 })
    const a = clock.tick()
    const b = clock.tick()
    assert.deepEqual(a, { w: 1000, c: MAX_HLC_COUNTER })
    assert.deepEqual(b, { w: 1001, c: 0 })
    assertIncreasing([a, b, clock.tick()])
  })

  it('a remote timestamp with a counter at the limit cannot push ours past it', () => {
    const clock = new HybridClock(() => 1000)
    clock.observe({ w: 2000, c: MAX_HLC_COUNTER })
    const t = clock.tick()
    assert.ok(compareHlc(t, { w: 2000, c: MAX_HLC_COUNTER }) > 0)
    assert.ok(t.c <= MAX_HLC_COUNTER)
    assert.deepEqual(t, { w: 2001, c: 1 })
  })

  it('defaults the maximum drift to one day', () => {
    assert.equal(DEFAULT_MAX_CLOCK_DRIFT_MS, 86_400_000)
    const clock = new HybridClock(() => 0)
    clock.observe({ w: DEFAULT_MAX_CLOCK_DRIFT_MS + 1, c: 0 })
    assert.deepEqual(clock.current(), { w: 0, c: 0 })
  })
})

describe('compareHlc', () => {
  it('orders by w, then by c', () => {
    assert.ok(compareHlc({ w: 1, c: 9 }, { w: 2, c: 0 }) < 0)
    assert.ok(compareHlc({ w: 2, c: 1 }, { w: 2, c: 0 }) > 0)
    assert.equal(compareHlc({ w: 2, c: 1 }, { w: 2, c: 1 }), 0)
  })
})

describe('hlcKey', () => {
  it('is fixed-width in w and c', () => {
    assert.equal(hlcKey({ w: 12, c: 3 }, 'id'), '0000000000000012.0000000003.id')
  })

  it('sorts lexicographically in (w, c, id) order', () => {
    const stamps: Array<[Hlc, string]> = [
      [{ w: 9, c: 0 }, 'b'],
      [{ w: 10, c: 0 }, 'a'],
      [{ w: 10, c: 2 }, 'a'],
      [{ w: 10, c: 10 }, 'a'],
      [{ w: 10, c: 10 }, 'b'],
      [{ w: 100, c: 0 }, 'A'],
      [{ w: 1_700_000_000_000, c: 0 }, 'a'],
      [{ w: 2 ** 50, c: 2 ** 31 }, 'a']
    ]
    const keys = stamps.map(([h, id]) => hlcKey(h, id))
    const shuffled = [...keys].reverse()
    shuffled.push(shuffled.shift() as string)
    assert.deepEqual(shuffled.sort(), keys)
    // and bytewise too (LevelDB compares bytes, not UTF-16 units)
    assert.deepEqual([...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))), keys)
  })
})
