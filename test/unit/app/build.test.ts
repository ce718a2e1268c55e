import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, statSync, utimesSync } from 'node:fs'
import { join } from 'node:path'

const ROOT = new URL('../../../', import.meta.url).pathname
const build = (...args: string[]): string => execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), ...args, 'ui'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

describe('scripts/build.mjs', () => {
  it('bundles the UI into dist/ui, skips while fresh, rebuilds when any input (shared code too) is newer', () => {
    build()
    const js = join(ROOT, 'dist/ui/main.js')
    for (const f of ['index.html', 'main.js', 'main.css', 'icon.svg']) assert.ok(existsSync(join(ROOT, 'dist/ui', f)), f)
    assert.match(readFileSync(join(ROOT, 'dist/ui/index.html'), 'utf8'), /src="main\.js"/)
    const built = statSync(js).mtimeMs
    build()
    assert.equal(statSync(js).mtimeMs, built, 'fresh: not rebuilt')
    // an input read by the bundle (recorded from esbuild's metafile), touched after the build
    const inputs = JSON.parse(readFileSync(join(ROOT, 'dist/ui/.inputs.json'), 'utf8')) as string[]
    const input = join(ROOT, inputs.find(f => f.endsWith('.css')) ?? '')
    const later = new Date(built + 2000)
    utimesSync(input, later, later)
    build()
    assert.ok(statSync(js).mtimeMs > built, 'stale: rebuilt')
  })
})
