/**
 * `npm start` without Electron: the node runs and prints the address of its
 * UI; the page is served there; SIGTERM stops it cleanly.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { readdir } from 'node:fs/promises'
import { removeDir, tmpDir } from '../helpers/nodes.js'

const START = new URL('../../scripts/start.mjs', import.meta.url).pathname
const CLI = new URL('../../bin/parley.js', import.meta.url).pathname

describe('npm start (browser fallback)', () => {
  it('prints the UI address, serves the UI there, stops on SIGTERM', async () => {
    const dir = await tmpDir('parley-start-')
    // --no-mdns: this runs in the root namespace, where no multicast may leave the machine
    // its own process group: start.mjs runs `parley start` as a child, and a failing test must kill both
    const child = spawn(process.execPath, [START, '--data', join(dir, 'd'), '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', '0'], { env: { ...process.env, PARLEY_NO_ELECTRON: '1' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = ''
        const t = setTimeout(() => { reject(new Error(`no UI address printed: ${out}`)) }, 30_000)
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString()
          const m = /open Parley in your browser: (\S+)/.exec(out)
          if (m !== null) { clearTimeout(t); resolve(m[1] as string) }
        })
      })
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/#token=[0-9a-f]{64}$/)
      const page = await fetch(url.split('#')[0] as string)
      assert.equal(page.status, 200)
      assert.match(await page.text(), /<title>Parley<\/title>/)
      const exited = new Promise<number | null>(resolve => child.once('exit', resolve))
      child.kill('SIGTERM')
      assert.equal(await Promise.race([exited, new Promise(resolve => setTimeout(() => { resolve('still running after 20 s') }, 20_000).unref())]), 0)
    } finally {
      try { process.kill(-(child.pid as number), 'SIGKILL') } catch { /* the group is gone */ }
      await removeDir(dir)
    }
  })

  it('a data dir too long for the API socket is refused with a clear message, leaving no socket elsewhere', async () => {
    const dir = await tmpDir('parley-long-')
    const long = join(dir, 'd'.repeat(110))
    try {
      const child = spawn(process.execPath, [CLI, 'start', '--data', long, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
      let err = ''
      child.stderr.on('data', (d: Buffer) => { err += d.toString() })
      const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
      assert.equal(code, 2, err)
      assert.match(err, /too long for the API socket/)
      assert.ok(!(await readdir(dir)).some(f => f.endsWith('.sock') || f.startsWith('api')), 'no socket left in the parent directory')
    } finally {
      await removeDir(dir)
    }
  })
})
