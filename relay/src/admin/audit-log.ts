/**
 * The admin audit log: who did what when, one JSON line per action in
 * `DATA/audit.log` (mode 0600), opened for appending only and synced per
 * entry, so an action the console reported done is on disk. Nothing rewrites
 * or truncates it; rotate it with logrotate's `copytruncate` if it grows.
 */
import { open, type FileHandle } from 'node:fs/promises'
import type { AuditEntry } from '../../../core/protocol/admin-api.js'
import { SerialQueue } from '../../../core/util/abort.js'

export type { AuditEntry }

/** how much of the end of the file `recent()` reads. @default 1 MiB */
const TAIL_BYTES = 1024 * 1024

export class AuditLog {
  private file?: FileHandle
  private readonly queue = new SerialQueue()

  constructor (private readonly path: string) {}

  async start (): Promise<void> {
    this.file ??= await open(this.path, 'a', 0o600)
  }

  async stop (): Promise<void> {
    const f = this.file
    this.file = undefined
    await this.queue.run(async () => { await f?.close() })
  }

  /** Appends one entry and syncs it. */
  async append (entry: Omit<AuditEntry, 't'>): Promise<AuditEntry> {
    const full: AuditEntry = { t: new Date().toISOString(), ...entry }
    await this.queue.run(async () => {
      const f = this.file
      if (f === undefined) return
      await f.write(JSON.stringify(full) + '\n')
      await f.datasync()
    })
    return full
  }

  /** The last `limit` entries, newest first. */
  async recent (limit = 200): Promise<AuditEntry[]> {
    const f = await open(this.path, 'r')
    try {
      const { size } = await f.stat()
      const from = Math.max(0, size - TAIL_BYTES)
      const buf = Buffer.alloc(size - from)
      await f.read(buf, 0, buf.length, from)
      const lines = buf.toString('utf8').split('\n')
      // a cut first line (from the middle of the file) is not an entry
      if (from > 0) lines.shift()
      const entries: AuditEntry[] = []
      for (const l of lines.reverse()) {
        if (l === '') continue
        try { entries.push(JSON.parse(l) as AuditEntry) } catch { continue }
        if (entries.length >= limit) break
      }
      return entries
    } finally {
      await f.close()
    }
  }
}
