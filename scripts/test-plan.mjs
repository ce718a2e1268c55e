// The order of the suite's files for scripts/test.sh, which runs two files at a time.
//
// "Heavy" files (network namespaces with fixed names, Chromium, PostgreSQL: whatever goes through
// test/helpers/netns, browser or postgres) must run one at a time; scripts/test-lock.mjs makes each
// wait for the others. Light files (unit and loopback tests on port 0) run in the other slot, beside
// the heavy one of the moment. This script orders the list so that the runner (which starts the next
// file in list order whenever a slot frees) keeps one heavy file running all the time and fills the
// other slot with light ones, from each file's time in the last run (node_modules/.cache, written by
// scripts/test-times.mjs), else scripts/test-times.txt (a committed snapshot), else a guess.
//
//   node scripts/test-plan.mjs HEAVY_LIST_OUT < files  →  the ordered files on stdout
import { readFileSync, writeFileSync } from 'node:fs'

const heavyPattern = /helpers\/(netns|browser|postgres)\.js|NetnsLan|\/usr\/bin\/chromium/
// unit files whose assertions count packets per round of real timers (RFC 6762 suppression): beside a heavy
// file on a loaded 2-core machine their timers lag and a round's suppression is missed, so they take the lock
const timerSensitive = new Set(['test/unit/host/mdns-office.test.ts', 'test/unit/host/mdns.test.ts'])
const isHeavy = (file) => timerSensitive.has(file) || heavyPattern.test(readFileSync(file, 'utf8'))
const files = readFileSync(0, 'utf8').split('\n').filter(f => f !== '')
const times = new Map()
for (const path of ['scripts/test-times.txt', 'node_modules/.cache/parley-test-times.txt']) {
  let text = ''
  try { text = readFileSync(path, 'utf8') } catch { continue }
  for (const line of text.split('\n')) {
    const m = /^\s*([\d.]+) s {2}(\S+)$/.exec(line)
    if (m !== null) times.set(m[2], Number(m[1]))
  }
}
const heavy = []
const light = []
for (const file of files) {
  const h = isHeavy(file)
  const item = { file, s: (times.get(file) ?? (h ? 30 : 3)) + 0.5 } // + start-up
  ;(h ? heavy : light).push(item)
}
const bySlowest = (a, b) => b.s - a.s || (a.file < b.file ? -1 : 1)
heavy.sort(bySlowest)
light.sort(bySlowest)

// simulate the runner: two slots; the next list entry goes to the slot that frees first
const order = []
const slots = [0, 0]
let lockFree = 0
while (heavy.length > 0 || light.length > 0) {
  const i = slots[0] <= slots[1] ? 0 : 1
  const now = slots[i]
  let pick
  if (heavy.length > 0 && (lockFree <= now + 1 || light.length === 0)) {
    pick = heavy.shift()
    const start = Math.max(now, lockFree)
    lockFree = start + pick.s
    slots[i] = lockFree
  } else {
    // the longest light file that ends before the lock frees, else the shortest one
    const gap = lockFree - now
    let k = light.findIndex(f => f.s <= gap)
    if (k < 0) k = light.length - 1
    pick = light.splice(k, 1)[0]
    slots[i] = now + pick.s
  }
  order.push(pick.file)
}
writeFileSync(process.argv[2], files.filter(isHeavy).join('\n') + '\n')
process.stdout.write(order.join('\n') + '\n')
process.stderr.write(`parley: test plan: ${files.length} files, about ${Math.round(Math.max(...slots))} s with two at a time\n`)
