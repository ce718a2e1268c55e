// Builds every web app under app/ into dist/<name>/ (git-ignored), for `npm start` and `npm test`, then the
// node and relay programs into dist/bin/ (scripts/programs.mjs).
//
// An app is a folder app/<name>/ with src/main.tsx (bundled by esbuild, with the CSS it imports, into
// main.js and main.css) and public/ (copied as is: index.html, icons). So app/ui/ becomes dist/ui/ and a
// new app/console/ becomes dist/console/ with no change here. A build is skipped while every output is
// newer than every input: the inputs are the app's own files, this script, and every file the last
// bundle read (esbuild's metafile, kept as dist/<name>/.inputs.json), so app/shared/ and the API
// contract count too.
//
//   node scripts/build.mjs [--force] [--quiet] [name ...]
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildPrograms } from './programs.mjs'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const DIST = join(ROOT, 'dist')
const APPS = join(ROOT, 'app')
const INPUTS_FILE = '.inputs.json'
const SELF = fileURLToPath(import.meta.url)

/** The apps to build: folders of app/ with a src/main.tsx. */
export function listApps () {
  return readdirSync(APPS, { withFileTypes: true })
    .filter(d => d.isDirectory() && existsSync(join(APPS, d.name, 'src', 'main.tsx')))
    .map(d => d.name)
    .sort()
}

/** newest modification time (ms) of the files under `path`, or of `path` itself; 0 when missing */
function newest (path) {
  if (!existsSync(path)) return Infinity // a file the last build read is gone: rebuild
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  let max = st.mtimeMs
  for (const e of readdirSync(path)) max = Math.max(max, newest(join(path, e)))
  return max
}

/** oldest modification time of the files under `path` (0 when there is none) */
function oldest (path) {
  if (!existsSync(path)) return 0
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  const entries = readdirSync(path).filter(e => e !== INPUTS_FILE)
  if (entries.length === 0) return 0
  return Math.min(...entries.map(e => oldest(join(path, e))))
}

/** True when dist/<name>/ is missing or older than anything it was built from. */
export function isStale (name) {
  const out = join(DIST, name)
  const record = join(out, INPUTS_FILE)
  if (!existsSync(record)) return true
  let inputs
  try { inputs = JSON.parse(readFileSync(record, 'utf8')) } catch { return true }
  if (!Array.isArray(inputs)) return true
  const built = oldest(out)
  const sources = [join(APPS, name), SELF, ...inputs.map(f => join(ROOT, f))]
  return sources.some(s => newest(s) >= built)
}

/**
 * Builds one app; returns false when it was fresh and skipped.
 * @param {string} name folder under app/
 * @param {{ force?: boolean }} [options]
 */
export async function buildApp (name, { force = false } = {}) {
  if (!force && !isStale(name)) return false
  const { build } = await import('esbuild')
  const src = join(APPS, name)
  const out = join(DIST, name)
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out, { recursive: true })
  const result = await build({
    entryPoints: [join(src, 'src', 'main.tsx')],
    outdir: out,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'silent',
    legalComments: 'linked'
  })
  if (existsSync(join(src, 'public'))) cpSync(join(src, 'public'), out, { recursive: true })
  const inputs = Object.keys(result.metafile.inputs).map(f => relative(ROOT, join(ROOT, f)))
  writeFileSync(join(out, INPUTS_FILE), JSON.stringify(inputs) + '\n')
  return true
}

/** Builds every app that is stale (all with `force`). */
export async function buildAll ({ force = false, names = listApps(), log = () => {} } = {}) {
  for (const name of names) {
    const t0 = Date.now()
    if (await buildApp(name, { force })) log(`parley: built the ${name} app in ${Date.now() - t0} ms (dist/${name}/)\n`)
  }
}

if (process.argv[1] === SELF) {
  const args = process.argv.slice(2)
  const names = args.filter(a => !a.startsWith('--'))
  const quiet = args.includes('--quiet')
  const log = quiet ? () => {} : (l) => process.stderr.write(l)
  const force = args.includes('--force')
  // the web apps, then (unless only some apps were named) the node and relay programs (scripts/programs.mjs)
  buildAll({ force, names: names.length > 0 ? names : listApps(), log })
    .then(async () => { if (names.length === 0) await buildPrograms({ force, log }) })
    .catch((err) => {
      // esbuild's errors name the file and line; show them as they are
      const lines = err.errors?.map(e => `${e.location?.file ?? ''}:${e.location?.line ?? ''}: ${e.text}`) ?? [err.message]
      process.stderr.write(`parley: the build failed:\n  ${lines.join('\n  ')}\n`)
      process.exit(1)
    })
}
