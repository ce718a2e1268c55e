// The node and relay programs as compiled JavaScript: esbuild bundles each CLI (our TypeScript only;
// npm packages stay imports of node_modules) into dist/bin/, so a start loads plain JavaScript instead of
// compiling TypeScript through tsx at run time (~0.8 s of a ~1 s start before).
//
// The launchers bin/parley.js and bin/parley-relay.js run dist/bin/<program>.js when it is fresh (newer
// than every source file it was built from, read from the build's metafile) and fall back to tsx
// otherwise, so a source edit without a rebuild never runs stale code. `npm start`, `npm test` and
// `npm run build` (scripts/build.mjs) rebuild what is stale.
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const BIN_DIST = join(ROOT, 'dist', 'bin')
const SELF = fileURLToPath(import.meta.url)

/** program name → its TypeScript entry. `polyfill` is loaded first by each launcher (before any libp2p module). */
export const PROGRAMS = {
  polyfill: 'core/polyfill.ts',
  parley: 'node/src/cli/main.ts',
  'parley-relay': 'relay/src/cli.ts'
}

/**
 * V8 flags for the long-running node (`npm start`, the Electron shell; the tests' and benches' nodes):
 * the young generation ("new space") capped at two 2 MiB semi-spaces. V8's default lets it grow to
 * two 16 MiB semi-spaces during an allocation burst (taking in an office of 500 at start) and never
 * gives the memory back: +28 MiB of RSS for good. Allowed in NODE_OPTIONS too (Node 20, 22, 24), for
 * running `parley start` by hand. docs/PERFORMANCE.md (issue 18) has the figures.
 */
export const NODE_FLAGS = ['--max-semi-space-size=2']

const INPUTS = join(BIN_DIST, '.inputs.json')

/**
 * True when the programs in dist/bin/ are missing or older than a file they were built from (or than
 * this script, package.json or tsconfig.json). Cheap enough for every start: one stat per source file.
 */
export function programsAreStale () {
  let built
  let inputs
  try {
    built = Math.min(...Object.keys(PROGRAMS).map(name => statSync(join(BIN_DIST, `${name}.js`)).mtimeMs))
    inputs = JSON.parse(readFileSync(INPUTS, 'utf8'))
  } catch { return true }
  if (!Array.isArray(inputs)) return true
  for (const f of [...inputs, relative(ROOT, SELF), 'package.json', 'tsconfig.json']) {
    try { if (statSync(join(ROOT, f)).mtimeMs >= built) return true } catch { return true }
  }
  return false
}

/** Builds the programs when stale (always with `force`); returns false when they were fresh. */
export async function buildPrograms ({ force = false, log = () => {} } = {}) {
  if (!force && !programsAreStale()) return false
  const t0 = Date.now()
  const { build } = await import('esbuild')
  const tmp = `${BIN_DIST}.${process.pid}.tmp`
  rmSync(tmp, { recursive: true, force: true })
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: Object.entries(PROGRAMS).map(([out, entry]) => ({ in: join(ROOT, entry), out })),
    outdir: tmp,
    bundle: true,
    // code split at dynamic imports: a command loads only what it uses (`parley --help` no libp2p)
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    // npm packages are loaded from node_modules as they are (native addons, JSON data, their own files)
    packages: 'external',
    format: 'esm',
    platform: 'node',
    target: 'node20.10',
    sourcemap: 'linked',
    sourcesContent: false,
    metafile: true,
    logLevel: 'silent'
  })
  writeFileSync(join(tmp, '.inputs.json'), JSON.stringify(Object.keys(result.metafile.inputs)) + '\n')
  // swapped in whole: a launcher never mixes chunks of two builds
  rmSync(BIN_DIST, { recursive: true, force: true })
  mkdirSync(join(BIN_DIST, '..'), { recursive: true })
  renameSync(tmp, BIN_DIST)
  log(`parley: built the node and relay programs in ${Date.now() - t0} ms (dist/bin/)\n`)
  return true
}

/**
 * For the launchers: runs the compiled program when it is fresh, else the TypeScript through tsx.
 * PARLEY_TSX=1 always takes tsx.
 */
export async function launch (name) {
  const compiled = process.env.PARLEY_TSX !== '1' && !programsAreStale()
  if (compiled) {
    // stack traces name the TypeScript files and lines (dist/bin/*.map)
    process.setSourceMapsEnabled(true)
    await import(join(BIN_DIST, 'polyfill.js'))
    await import(join(BIN_DIST, `${name}.js`))
    return
  }
  const { register } = await import('tsx/esm/api')
  register()
  await import(join(ROOT, PROGRAMS[name]))
}

if (process.argv[1] === SELF) {
  buildPrograms({ force: process.argv.includes('--force'), log: (l) => process.stderr.write(l) }).catch((err) => {
    const lines = err.errors?.map(e => `${e.location?.file ?? ''}:${e.location?.line ?? ''}: ${e.text}`) ?? [err.message]
    process.stderr.write(`parley: the program build failed:\n  ${lines.join('\n  ')}\n`)
    process.exit(1)
  })
}
