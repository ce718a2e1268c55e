// Loaded into the node under test by bench:office (node --expose-gc --import this file): on SIGUSR2 it
// runs a full garbage collection and writes process.memoryUsage() to /tmp/parley-heap-<pid>.json, so the
// bench can count what each known peer costs in live heap, apart from V8's high-water marks in RSS.
import { writeFileSync } from 'node:fs'
process.on('SIGUSR2', () => {
  globalThis.gc?.()
  globalThis.gc?.()
  writeFileSync(`/tmp/parley-heap-${process.pid}.json`, JSON.stringify({ at: Date.now(), ...process.memoryUsage() }))
})
