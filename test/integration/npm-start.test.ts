/**
 * `npm start` from a terminal, as a person runs it: only lines for people on
 * the terminal (the JSON log goes to DATA/parley.log), and Ctrl-C or a
 * SIGTERM to the npm process stops every process it started.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'

const ROOT = new URL('../../', import.meta.url).pathname

/** true while any process of the group `pgid` is alive */
const groupAlive = (pgid: number): boolean => {
  try { process.kill(-pgid, 0); return true } catch { return false }
}

async function npmStart (dataDir: string): Promise<{ child: ChildProcess, url: string, out: () => string, err: () => string }> {
  // its own process group, like a terminal's foreground job
  const child = spawn('npm', ['start', '--', '--data', dataDir, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', '0'], {
    cwd: ROOT, env: { ...process.env, PARLEY_NO_ELECTRON: '1', PARLEY_LOG: 'debug' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true
  })
  let out = ''
  let err = ''
  child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => { reject(new Error(`no UI address printed: ${out} ${err}`)) }, 60_000)
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /open Parley in your browser: (\S+)/.exec(out)
      if (m !== null && out.includes('ready\n')) { clearTimeout(t); resolve(m[1] as string) }
    })
  })
  return { child, url, out: () => out, err: () => err }
}

describe('npm start from a terminal', () => {
  for (const [how, signal, toGroup] of [['SIGTERM to the npm process', 'SIGTERM', false], ['Ctrl-C (SIGINT to the whole job)', 'SIGINT', true]] as const) {
    it(`prints only lines for people, and ${how} stops everything it started`, async () => {
      const dir = await tmpDir('parley-npmstart-')
      const data = join(dir, 'd')
      const { child, url, out, err } = await npmStart(data)
      const pgid = child.pid as number
      try {
        const port = new URL(url).port
        assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200)
        // nothing structured on the terminal, even at debug level: that goes to the log file
        for (const line of [...out().split('\n'), ...err().split('\n')]) assert.doesNotMatch(line, /^\s*\{/, `a JSON line on the terminal: ${line}`)
        const logged = (await readFile(join(data, 'parley.log'), 'utf8')).trim().split('\n')
        assert.ok(logged.length > 0 && logged.every(l => typeof (JSON.parse(l) as { msg?: unknown }).msg === 'string'), 'JSON lines in DATA/parley.log')
        assert.doesNotMatch(err(), /EBADENGINE/)
        // the node runs with the launchers' V8 flags (scripts/programs.mjs NODE_FLAGS: young generation capped)
        const group = execFileSync('ps', ['-e', '-o', 'pgid=,args='], { encoding: 'utf8' }).split('\n').filter(l => l.trim().startsWith(`${pgid} `))
        assert.ok(group.some(l => / --max-semi-space-size=2 \S*bin\/parley\.js start /.test(l)), `the node's command line: ${group.join(' | ')}`)
        if (toGroup) process.kill(-pgid, signal); else process.kill(pgid, signal)
        await until(() => !groupAlive(pgid), 'every process of npm start gone', 20_000, 100)
        await assert.rejects(fetch(`http://127.0.0.1:${port}/`), 'the port is free again')
        assert.ok((await readFile(join(data, 'parley.log'), 'utf8')).includes('"msg":"stopping"'), 'the node stopped cleanly')
      } finally {
        try { process.kill(-pgid, 'SIGKILL') } catch { /* the group is gone */ }
        await removeDir(dir)
      }
    })
  }
})
