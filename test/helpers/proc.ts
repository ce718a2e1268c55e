/**
 * Parley node processes for multi-process tests: spawned (optionally inside a
 * network namespace), logs kept in a file, API reached over the Unix socket in
 * the data dir (which works across namespaces), events collected from the
 * WebSocket stream with the test process's clock.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import { ApiClient } from '../../node/src/cli/client.js'
import type { ApiEvent } from '../../node/src/api/contract.js'

const ROOT = new URL('../../', import.meta.url).pathname
export const PARLEY_BIN = join(ROOT, 'bin/parley.js')

export interface ProcInit {
  dataDir: string
  name: string
  netns?: string
  args?: string[]
  logFile: string
}

export interface SeenEvent { at: number, event: ApiEvent }

export class NodeProc {
  child?: ChildProcess
  api?: ApiClient
  readonly events: SeenEvent[] = []
  private ws?: ReturnType<ApiClient['events']>
  private log?: WriteStream
  startedAt = 0
  readyAt = 0

  constructor (readonly init: ProcInit) {}

  async start (timeoutMs = 30_000): Promise<void> {
    const { dataDir, name, netns, args = [], logFile } = this.init
    const cmd = [process.execPath, PARLEY_BIN, 'start', '--data', dataDir, '--name', name, '--api-port', '0', ...args]
    const full = netns !== undefined ? ['ip', 'netns', 'exec', netns, ...cmd] : cmd
    this.log = createWriteStream(logFile, { flags: 'a' })
    this.startedAt = Date.now()
    const child = spawn(full[0] as string, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PARLEY_LOG: process.env.PARLEY_LOG ?? 'info' } })
    this.child = child
    child.stderr?.pipe(this.log, { end: false })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`${name} not ready after ${timeoutMs} ms; see ${logFile}`)) }, timeoutMs)
      let buf = ''
      child.stdout?.on('data', (d: Buffer) => {
        this.log?.write(d)
        buf += d.toString()
        if (buf.includes('\nready\n')) { clearTimeout(timer); resolve() }
      })
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited with ${String(code)} before ready; see ${logFile}`)) })
    })
    this.readyAt = Date.now()
    this.api = await ApiClient.open(dataDir)
    await this.watch()
  }

  private async watch (): Promise<void> {
    const ws = this.api!.events()
    this.ws = ws
    await new Promise<void>((resolve, reject) => { ws.once('open', () => { resolve() }); ws.once('error', reject) })
    ws.on('message', (data) => { this.events.push({ at: Date.now(), event: JSON.parse(String(data)) as ApiEvent }) })
    ws.on('error', () => {})
  }

  get pid (): number | undefined { return this.child?.pid }

  /** kill -9: no chance to flush or say goodbye. */
  async kill9 (): Promise<void> {
    const child = this.child
    if (child === undefined || child.exitCode !== null) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
    this.ws?.terminate()
    this.child = undefined
  }

  async stop (): Promise<void> {
    const child = this.child
    this.ws?.terminate()
    if (child === undefined || child.exitCode !== null) { this.log?.end(); return }
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGTERM')
    const t = setTimeout(() => { child.kill('SIGKILL') }, 5000)
    await exited
    clearTimeout(t)
    this.child = undefined
    this.log?.end()
  }

  logText (): string {
    try { return readFileSync(this.init.logFile, 'utf8') } catch { return '' }
  }
}
