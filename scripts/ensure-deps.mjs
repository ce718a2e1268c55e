// Installs npm dependencies when node_modules is missing or older than the lock file,
// so `npm start` and `npm test` work as the first commands on a fresh checkout.
import { existsSync, statSync } from 'node:fs'
import { execSync } from 'node:child_process'

const root = new URL('..', import.meta.url).pathname
const marker = root + 'node_modules/.package-lock.json'
const lock = root + 'package-lock.json'
const stale = !existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs + 1000)
if (stale) {
  process.stderr.write('parley: installing dependencies (npm ci)...\n')
  // tests never need Electron's binary (the UI is tested in Chromium), and it cannot be downloaded everywhere;
  // `npm start` lets it try, and falls back to the browser UI when it is missing
  const env = process.argv.includes('--for-tests') ? { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' } : process.env
  execSync('npm ci --no-audit --no-fund', { cwd: root, stdio: 'inherit', env })
}
