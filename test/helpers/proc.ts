/**
 * Parley node processes for multi-process tests: spawned (optionally inside a
 * network namespace), logs kept in a file, API reached over the Unix socket in
 * the data dir (which works across namespaces), events collected from the
 * WebSocket stream with the test process's clock.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import { ApiClient } from '../../node/src/cli/client.js'
import type { ApiEvent } from '../../node/src/api/contract.js'
import { NODE_FLAGS } from '../../scripts/programs.mjs'

const ROOT = new URL('../../', import.meta.url).pathname
export const PARLEY_BIN = join(ROOT, 'bin/parley.js')
export const RELAY_BIN = join(ROOT, 'bin/parley-relay.js')

/** Spawns `cmd` (inside `netns` if given), logs to `log`, resolves once it prints "ready". */
export async function spawnReady (cmd: string[], netns: string | undefined, log: WriteStream, what: string, timeoutMs: number): Promise<ChildProcess> {
  const full = netns !== undefined ? ['ip', 'netns', 'exec', netns, ...cmd] : cmd
  const child = spawn(full[0] as string, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PARLEY_LOG: process.env.PARLEY_LOG ?? 'info' } })
  child.stderr?.pipe(log, { end: false })
  // not ready in time (or failed): the caller never gets the child, so it is killed here
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${what} not ready after ${timeoutMs} ms; see ${String(log.path)}`)) }, timeoutMs)
    let buf = ''
    child.stdout?.on('data', (d: Buffer) => {
      log.write(d)
      buf += d.toString()
      if (('\n' + buf).includes('\nready\n')) { clearTimeout(timer); resolve() }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited with ${String(code)} before ready; see ${String(log.path)}`)) })
  }).catch((err) => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    throw err
  })
  return child
}

/** Stops a child: SIGTERM (or `signal`), then SIGKILL after 5 s. */
export async function stopChild (child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill(signal)
  const t = setTimeout(() => { child.kill('SIGKILL') }, 5000)
  await exited
  clearTimeout(t)
}

export class RelayProc {
  child?: ChildProcess
  private log?: WriteStream
  constructor (readonly init: { dataDir: string, netns?: string, args?: string[], logFile: string, nodeArgs?: string[] }) {}

  async start (timeoutMs = 30_000): Promise<void> {
    this.log ??= createWriteStream(this.init.logFile, { flags: 'a' })
    // the admin listener on a free port unless a test names one (the CLI's default, 4102, is a fixed port)
    const args = this.init.args ?? []
    const admin = args.includes('--admin-port') ? [] : ['--admin-port', '0']
    this.child = await spawnReady([process.execPath, ...(this.init.nodeArgs ?? []), RELAY_BIN, 'start', '--data', this.init.dataDir, ...admin, ...args], this.init.netns, this.log, 'relay', timeoutMs)
  }

  async kill9 (): Promise<void> { await stopChild(this.child, 'SIGKILL'); this.child = undefined }
  async stop (): Promise<void> { await stopChild(this.child); this.child = undefined; this.log?.end(); this.log = undefined }

  /** Runs `parley-relay <args> --data DIR` (the admin socket works across namespaces). */
  admin (...args: string[]): string {
    return execFileSync(process.execPath, [RELAY_BIN, ...args, '--data', this.init.dataDir], { encoding: 'utf8' }).trim()
  }

  logText (): string {
    try { return readFileSync(this.init.logFile, 'utf8') } catch { return '' }
  }
}

export interface ProcInit {
  dataDir: string
  name: string
  netns?: string
  args?: string[]
  logFile: string
  /** options for node itself, before the script (a benchmark's --expose-gc, --import of a probe) */
  nodeArgs?: string[]
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
    const { dataDir, name, netns, args = [], logFile, nodeArgs = [] } = this.init
    // the V8 flags the launchers give the node (scripts/programs.mjs); BENCH_V8_DEFAULTS=1 leaves V8's defaults, to compare
    const flags = process.env.BENCH_V8_DEFAULTS === '1' ? [] : NODE_FLAGS
    const cmd = [process.execPath, ...flags, ...nodeArgs, PARLEY_BIN, 'start', '--data', dataDir, '--name', name, '--api-port', '0', '--log-format', 'json', ...args]
    this.log ??= createWriteStream(logFile, { flags: 'a' })
    this.startedAt = Date.now()
    this.child = await spawnReady(cmd, netns, this.log, name, timeoutMs)
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
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
    this.ws?.terminate()
    this.child = undefined
  }

  async stop (): Promise<void> {
    this.ws?.terminate()
    await stopChild(this.child)
    this.child = undefined
    this.log?.end()
    this.log = undefined
  }

  logText (): string {
    try { return readFileSync(this.init.logFile, 'utf8') } catch { return '' }
  }
}

/** CPU time a process used so far, in clock ticks (1/100 s on Linux): user + system, from /proc. */
export function cpuTicks (pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return Number(f[11]) + Number(f[12])
}

/** Resident memory of a process, KiB, from /proc. */
export function rssKiB (pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)
}
