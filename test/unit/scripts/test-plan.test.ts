/**
 * The suite runs two files at a time (scripts/test.sh): scripts/test-lock.mjs must keep the heavy files
 * (fixed namespace names, Chromium, PostgreSQL) from ever running together, and scripts/test-plan.mjs
 * must put every file in the list exactly once, with the heavy ones named in its heavy list.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { removeDir, tmpDir } from '../../helpers/nodes.js'

const lock = join(process.cwd(), 'scripts/test-lock.mjs')

/** a stand-in for a test file: notes when it runs, in a shared log */
const body = (log: string, ms: number): string =>
  `import { appendFileSync } from 'node:fs'\n` +
  `appendFileSync(${JSON.stringify(log)}, 'start ' + process.argv[1] + ' ' + Date.now() + '\\n')\n` +
  `await new Promise(r => setTimeout(r, ${ms}))\n` +
  `appendFileSync(${JSON.stringify(log)}, 'end ' + process.argv[1] + ' ' + Date.now() + '\\n')\n`

test('heavy files never run at the same time; light ones run beside them', async () => {
  const dir = await tmpDir('parley-test-lock-')
  try {
    const log = join(dir, 'log')
    const files = ['h1', 'h2', 'h3', 'l1'].map(n => join(dir, `${n}.mjs`))
    for (const f of files) await writeFile(f, body(log, 400))
    const list = join(dir, 'heavy.txt')
    await writeFile(list, files.slice(0, 3).map(f => relative(process.cwd(), f)).join('\n') + '\n')
    // the siblings of one test runner: same parent, so the same lock
    const runner = `const { spawn } = require('node:child_process');\n` +
      `const kids = ${JSON.stringify(files)}.map(f => spawn(process.execPath, ['--import', ${JSON.stringify(lock)}, f], { stdio: 'inherit' }));\n` +
      'let left = kids.length; for (const k of kids) k.on("exit", () => { if (--left === 0) process.exit(0) })\n'
    const child = spawn(process.execPath, ['-e', runner], { env: { ...process.env, PARLEY_HEAVY_TESTS: list }, stdio: 'inherit' })
    await new Promise<void>((resolve, reject) => { child.on('exit', code => { code === 0 ? resolve() : reject(new Error(`exit ${String(code)}`)) }) })
    const rows = (await readFile(log, 'utf8')).trim().split('\n').map(l => l.split(' '))
    const span = (f: string): [number, number] => [Number(rows.find(r => r[0] === 'start' && r[1] === f)?.[2]), Number(rows.find(r => r[0] === 'end' && r[1] === f)?.[2])]
    const heavy = files.slice(0, 3).map(span).sort((x, y) => x[0] - y[0])
    for (const [s, e] of heavy) assert.ok(e > s, 'each heavy file ran')
    for (let i = 1; i < heavy.length; i++) assert.ok(heavy[i]![0] >= heavy[i - 1]![1], `heavy file ${i} started only after the one before ended: ${JSON.stringify(heavy)}`)
    const [ls, le] = span(files[3]!)
    assert.ok(ls < heavy[0]![1] && le <= heavy[2]![1], 'the light file ran beside a heavy one, not after them')
  } finally { await removeDir(dir) }
})

test('the plan lists every file once and names the heavy ones', async () => {
  const dir = await tmpDir('parley-test-plan-')
  try {
    await mkdir(join(dir, 'test'), { recursive: true })
    const heavy = ['test/a-lan.test.ts', 'test/b-ui.test.ts']
    const light = ['test/c.test.ts', 'test/d.test.ts', 'test/e.test.ts']
    await writeFile(join(dir, heavy[0]!), "import { NetnsLan } from './helpers/netns.js'\n")
    await writeFile(join(dir, heavy[1]!), "import { launchChromium } from './helpers/browser.js'\n")
    for (const f of light) await writeFile(join(dir, f), "import { test } from 'node:test'\n")
    const out = spawnSync(process.execPath, [join(process.cwd(), 'scripts/test-plan.mjs'), 'heavy.txt'], { cwd: dir, input: [...light, ...heavy].join('\n') + '\n', encoding: 'utf8' })
    assert.equal(out.status, 0, out.stderr)
    const order = out.stdout.trim().split('\n')
    assert.deepEqual([...order].sort(), [...heavy, ...light].sort(), 'every file once')
    assert.deepEqual((await readFile(join(dir, 'heavy.txt'), 'utf8')).trim().split('\n').sort(), heavy)
    assert.ok(heavy.includes(order[0]!), 'a heavy file first, so that light ones fill the other slot')
  } finally { await removeDir(dir) }
})
