// `npm start`: the desktop app where Electron is installed; otherwise the same
// UI served by the node at the printed http://127.0.0.1 address.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'

const root = new URL('..', import.meta.url).pathname
const args = process.argv.slice(2)
let electron = null
try {
  // the electron package exports the binary's path, and throws when the binary was not downloaded
  const path = createRequire(import.meta.url)('electron')
  if (typeof path === 'string' && existsSync(path)) electron = path
} catch {}

const child = electron !== null && process.env.PARLEY_NO_ELECTRON !== '1'
  ? spawn(electron, [root + 'app/electron/main.mjs', ...args], { stdio: 'inherit' })
  : spawn(process.execPath, [root + 'bin/parley.js', 'start', ...args], { stdio: 'inherit' })
if (electron === null) process.stderr.write('parley: Electron is not installed here; serving the UI in your browser instead\n')
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { child.kill(sig) })
child.on('exit', (code) => { process.exit(code ?? 0) })
