// Loaded into the node under test by bench:office (node --expose-gc --import this file): on SIGUSR2 it
// runs a full garbage collection and writes process.memoryUsage() to /tmp/parley-heap-<pid>.json, so the
// bench can count what each known peer costs in live heap, apart from V8's high-water marks in RSS; and the
// worst event-loop delay since the previous probe (lagMaxMs: is the node keeping up with its packets?).
import { writeFileSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
const lag = monitorEventLoopDelay({ resolution: 10 })
lag.enable()
process.on('SIGUSR2', () => {
  const lagMaxMs = Math.round(lag.max / 1e6)
  lag.reset()
  globalThis.gc?.()
  globalThis.gc?.()
  writeFileSync(`/tmp/parley-heap-${process.pid}.json`, JSON.stringify({ at: Date.now(), lagMaxMs, ...process.memoryUsage() }))
})
