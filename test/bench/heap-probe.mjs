// Loaded into the node under test by bench:office (node --expose-gc --import this file): on SIGUSR2 it
// runs a full garbage collection and writes process.memoryUsage() (taken after it) to
// /tmp/parley-heap-<pid>.json, so the bench can count what each known peer costs in live heap, apart from
// V8's high-water marks in RSS; the RSS before the collection (rssBeforeGc), V8's committed size per heap
// space (spaces: new space grows with the allocation rate, not with what is kept) and the worst
// event-loop delay since the previous probe (lagMaxMs: is the node keeping up with its packets?).
import { writeFileSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { getHeapSpaceStatistics } from 'node:v8'
const lag = monitorEventLoopDelay({ resolution: 10 })
lag.enable()
process.on('SIGUSR2', () => {
  const lagMaxMs = Math.round(lag.max / 1e6)
  lag.reset()
  const rssBeforeGc = process.memoryUsage.rss()
  globalThis.gc?.()
  globalThis.gc?.()
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map(s => [s.space_name, { size: s.space_size, used: s.space_used_size }]))
  writeFileSync(`/tmp/parley-heap-${process.pid}.json`, JSON.stringify({ at: Date.now(), lagMaxMs, rssBeforeGc, spaces, ...process.memoryUsage() }))
})
