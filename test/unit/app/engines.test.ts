/**
 * "No engine warnings on a supported Node version": every installed package's `engines.node` range holds for
 * the oldest Node that package.json's `engines` allows (npm prints EBADENGINE otherwise), whatever Node runs
 * the test. semver is npm's own range parser (installed with the tree as a dependency of several packages).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { readFileSync, readdirSync, existsSync } from 'node:fs'
import { join } from 'node:path'

const require = createRequire(import.meta.url)
const semver = require('semver') as { minVersion: (r: string) => { version: string } | null, satisfies: (v: string, r: string) => boolean }
const ROOT = new URL('../../../', import.meta.url).pathname

/** name@version and engines.node of every package under node_modules (nested ones too) */
function packages (dir: string, out: Array<{ id: string, node: string }> = []): Array<{ id: string, node: string }> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue
    const p = join(dir, e.name)
    if (e.name.startsWith('@')) { packages(p, out); continue }
    const file = join(p, 'package.json')
    if (existsSync(file)) {
      const j = JSON.parse(readFileSync(file, 'utf8')) as { name?: string, version?: string, engines?: { node?: unknown } }
      if (typeof j.engines?.node === 'string') out.push({ id: `${j.name ?? e.name}@${j.version ?? '?'}`, node: j.engines.node })
    }
    if (existsSync(join(p, 'node_modules'))) packages(join(p, 'node_modules'), out)
  }
  return out
}

describe('Node engines', () => {
  it('the oldest Node package.json allows satisfies every installed package (no EBADENGINE)', () => {
    const ours = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node
    const floor = semver.minVersion(ours)?.version as string
    assert.ok(semver.satisfies(process.version, ours), `this Node (${process.version}) is in the supported range ${ours}`)
    const all = packages(join(ROOT, 'node_modules'))
    assert.ok(all.length > 50, 'the installed tree was read')
    // electron (optional, and its binary is not downloaded here) declares none; anything else must accept the floor
    const refusing = all.filter(p => !semver.satisfies(floor, p.node)).map(p => `${p.id} wants ${p.node}`)
    assert.deepEqual(refusing, [], `Node ${floor} (the floor of ${ours}) is refused by`)
  })

  // optional ones (electron 45 and its installer want 22.12) are skipped by npm, silently, on an older Node: the UI opens in the browser
  it('the floor is what the runtime needs, not what a developer tool or an optional package needs (package-lock)', () => {
    const ours = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node
    const floor = semver.minVersion(ours)?.version as string
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as
      { packages: Record<string, { dev?: boolean, optional?: boolean, engines?: { node?: string } | string[] }> }
    const runtime = Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && p.dev !== true && p.optional !== true && !Array.isArray(p.engines) && typeof p.engines?.node === 'string')
      .map(([path, p]) => ({ path, min: semver.minVersion((p.engines as { node: string }).node)?.version ?? '0.0.0' }))
    assert.ok(runtime.length > 20, 'the runtime tree was read')
    const needs = runtime.reduce((m, p) => semver.satisfies(p.min, `>${m}`) ? p.min : m, '0.0.0')
    const why = runtime.filter(p => p.min === needs).map(p => p.path.replace(/^.*node_modules\//, ''))
    assert.equal(floor, needs, `the runtime needs Node ${needs} (${why.join(', ')}); package.json allows from ${floor}`)
  })
})
