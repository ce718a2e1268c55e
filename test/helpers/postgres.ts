/**
 * A real PostgreSQL server for one test file (Debian's `postgresql`): initdb
 * into a temp dir, listening only on a Unix socket in that dir (no TCP port,
 * so no test lock is needed), started and stopped by PID, the dir deleted
 * afterwards. As root (CI), initdb and the server run as the `postgres` OS
 * user, which PostgreSQL requires; otherwise as the current user.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { chown, mkdtemp, readdir, rm } from 'node:fs/promises'
import { existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

/** The newest /usr/lib/postgresql/N/bin holding initdb and postgres (scripts/system-deps.sh installs it). */
export async function postgresBinDir (): Promise<string> {
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? (await readdir(root)).filter(v => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : []
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin')
  throw new Error('PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/system-deps.sh as root, or apt-get install postgresql')
}

function osUser (): { uid: number, gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find(l => l.startsWith('postgres:'))
  if (line === undefined) throw new Error('running as root, but there is no `postgres` OS user to run PostgreSQL as (apt-get install postgresql creates it)')
  const [, , uid, gid] = line.split(':')
  return { uid: Number(uid), gid: Number(gid) }
}

export interface PgServerOptions {
  /** fsync off makes tests faster; the benchmark and the restart test keep it on. @default true */
  fsync?: boolean
  maxConnections?: number
}

export class PgServer {
  private child?: ChildProcess
  private constructor (readonly dir: string, private readonly bin: string, private readonly user: { uid: number, gid: number } | undefined,
    private readonly opts: PgServerOptions) {}

  /** initdb into a fresh temp dir and start; the server listens on `${dir}/.s.PGSQL.5432` only. */
  static async start (opts: PgServerOptions = {}): Promise<PgServer> {
    const bin = await postgresBinDir()
    const user = osUser()
    // short: a Unix socket path is limited to 107 bytes
    const dir = await mkdtemp(join(tmpdir(), 'ppg-'))
    if (user !== undefined) await chown(dir, user.uid, user.gid)
    const server = new PgServer(dir, bin, user, opts)
    try {
      execFileSync(join(bin, 'initdb'), ['-D', server.dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--locale=C'],
        { stdio: 'pipe', ...(user ?? {}) })
      await server.startServer()
    } catch (err) {
      await server.destroy()
      throw err
    }
    return server
  }

  get dataDir (): string { return join(this.dir, 'data') }
  get pid (): number | undefined { return this.child?.pid }

  /** A connection string for database `db` over the socket. */
  url (db = 'postgres'): string { return `postgres://postgres@/${db}?host=${encodeURIComponent(this.dir)}` }

  async createDatabase (name: string): Promise<string> {
    const c = new pg.Client({ connectionString: this.url() })
    await c.connect()
    try { await c.query(`CREATE DATABASE "${name}"`) } finally { await c.end() }
    return this.url(name)
  }

  private async startServer (): Promise<void> {
    const args = ['-D', this.dataDir, '-k', this.dir, '-c', 'listen_addresses=', '-c', `fsync=${this.opts.fsync === false ? 'off' : 'on'}`,
      '-c', `max_connections=${this.opts.maxConnections ?? 100}`, '-c', 'shared_buffers=16MB', '-c', 'log_min_messages=warning']
    const child = spawn(join(this.bin, 'postgres'), args, { stdio: ['ignore', 'ignore', 'pipe'], ...(this.user ?? {}) })
    this.child = child
    let log = ''
    child.stderr?.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-4000) })
    const deadline = Date.now() + 30_000
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`postgres exited at start: ${log}`)
      try {
        const c = new pg.Client({ connectionString: this.url() })
        await c.connect()
        await c.end()
        return
      } catch (err) {
        if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`postgres not ready after 30 s: ${(err as Error).message} ${log}`) }
        await new Promise(resolve => setTimeout(resolve, 50))
      }
    }
  }

  /**
   * Stops the server by PID: 'fast' (SIGINT: clients are disconnected, a clean
   * shutdown) or 'immediate' (SIGQUIT: like a crash; recovery from the WAL at the next start).
   */
  async stop (mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    const child = this.child
    this.child = undefined
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT')
    const t = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
    await exited
    clearTimeout(t)
  }

  /** Stops and starts again over the same data (clients see their connections drop). */
  async restart (mode: 'fast' | 'immediate' = 'fast', downMs = 0): Promise<void> {
    await this.stop(mode)
    if (downMs > 0) await new Promise(resolve => setTimeout(resolve, downMs))
    await this.startServer()
  }

  /** Stops the server and deletes its dir. */
  async destroy (): Promise<void> {
    await this.stop('immediate')
    await rm(this.dir, { recursive: true, force: true })
  }
}
