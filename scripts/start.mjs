// `npm start`: installs what is missing, builds the UI when stale, then runs the desktop app where
// Electron is installed, or else the node, whose UI opens in the browser at the printed address.
//
// One process does it all (package.json runs it alone), so a signal sent to `npm start` reaches
// it, and it stops what it started: SIGINT (Ctrl-C), SIGTERM and SIGHUP are passed on to the app,
// which stops cleanly; if it is still there after STOP_GRACE_MS it is killed.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'

const root = new URL('..', import.meta.url).pathname
const args = process.argv.slice(2)
const STOP_GRACE_MS = 10_000
const PARENT_CHECK_MS = 250

const deps = spawnSync(process.execPath, [root + 'scripts/ensure-deps.mjs'], { stdio: 'inherit' })
if (deps.status !== 0) process.exit(deps.status ?? 1)
const { buildAll } = await import('./build.mjs')
const { NODE_FLAGS } = await import('./programs.mjs')
try {
  await buildAll({ log: (line) => { process.stderr.write(line) } })
} catch (err) {
  process.stderr.write(`parley: the UI could not be built: ${err.message}\n`)
  process.exit(1)
}

let electron = null
try {
  // the electron package exports the binary's path, and throws when the binary was not downloaded
  const path = createRequire(import.meta.url)('electron')
  if (typeof path === 'string' && existsSync(path)) electron = path
} catch {}

const useElectron = electron !== null && process.env.PARLEY_NO_ELECTRON !== '1'
if (!useElectron && process.env.PARLEY_NO_ELECTRON !== '1') process.stderr.write('parley: Electron is not installed here; serving the UI in your browser instead\n')
const child = useElectron
  ? spawn(electron, [root + 'app/electron/main.mjs', ...args], { stdio: 'inherit' })
  : spawn(process.execPath, [...NODE_FLAGS, root + 'bin/parley.js', 'start', ...args], { stdio: 'inherit' })

let stopping = false
const stop = (sig) => {
  if (stopping) return
  stopping = true
  // Ctrl-C in a terminal reaches the child too (same process group): passing it on again does no harm
  child.kill(sig)
  setTimeout(() => { child.kill('SIGKILL') }, STOP_GRACE_MS).unref()
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stop(sig) })
process.on('SIGHUP', () => { stop('SIGTERM') })
// npm passes a SIGTERM on to the shell that runs this script, not to us: when that shell (our parent) is
// gone, we were meant to stop too
const parent = process.ppid
setInterval(() => { if (process.ppid !== parent) stop('SIGTERM') }, PARENT_CHECK_MS).unref()
child.on('exit', (code, signal) => { process.exit(code ?? (signal !== null ? 1 : 0)) })
