// Installs npm dependencies when node_modules is missing or was installed from
// another package-lock.json (its hash is kept in node_modules), so `npm start`
// and `npm test` work as the first commands on a fresh checkout.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { execSync } from 'node:child_process'

const root = new URL('..', import.meta.url).pathname
const lock = root + 'package-lock.json'
const stamp = root + 'node_modules/.parley-lock-hash'
const want = existsSync(lock) ? createHash('sha256').update(readFileSync(lock)).digest('hex') : 'no-lock'
const have = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : null
if (have !== want || !existsSync(root + 'node_modules/.package-lock.json')) {
  process.stderr.write('parley: installing dependencies (npm ci)...\n')
  // tests never need Electron's binary (the UI is tested in Chromium), and it cannot be downloaded everywhere;
  // `npm start` lets it try, and falls back to the browser UI when it is missing
  const env = process.argv.includes('--for-tests') ? { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' } : process.env
  execSync('npm ci --no-audit --no-fund', { cwd: root, stdio: 'inherit', env })
  writeFileSync(stamp, want + '\n')
}
