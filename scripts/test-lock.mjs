// Preloaded (--import) into every test file's process by scripts/test.sh. A file named in the list
// $PARLEY_HEAVY_TESTS points to (see scripts/test-plan.mjs) waits here, before its first test, until
// no other heavy file of this run is running: they use fixed namespace names, Chromium, PostgreSQL.
// The lock is an abstract Unix socket (Linux) named after the test runner's pid: the kernel frees it
// when the holder exits, however it exits (kill -9 included), so a lock is never left stale.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { relative } from 'node:path'

const list = process.env.PARLEY_HEAVY_TESTS
const me = process.argv[1]
if (list !== undefined && list !== '' && me !== undefined) {
  const heavy = new Set(readFileSync(list, 'utf8').split('\n').filter(f => f !== ''))
  if (heavy.has(relative(process.cwd(), me))) {
    const name = `\0parley-test-heavy-${process.ppid}`
    for (;;) {
      const held = await new Promise(resolve => {
        const server = createServer()
        server.once('error', () => { resolve(false) })
        server.listen({ path: name }, () => { server.unref(); resolve(true) })
      })
      if (held) break
      await new Promise(resolve => setTimeout(resolve, 200))
    }
  }
}
