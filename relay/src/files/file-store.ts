/**
 * The relay's file store: encrypted chunks of files for recipients that were
 * offline when they were sent (store-and-forward). It never sees a content
 * key: it checks each chunk against the SHA-256 the uploader announced, keeps
 * it in DATA/files/<file id>/<index> (written to a temporary file, fsynced,
 * renamed) and serves it only to the file's recipients and its uploader.
 * Limits of their own, apart from the mailbox's: a per-user quota (the bytes
 * of the files a user has here), a largest file, and a shorter time to live.
 */
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { ParleyError } from '../../../core/errors.js'
import { CHUNK_HASH_BYTES, FILE_ID, MAX_CHUNKS, MAX_CHUNK_BYTES, MIN_CHUNK_BYTES, chunkCount } from '../../../core/protocol/file-manifest.js'
import { CHUNK_TAG_BYTES, chunkMatches } from '../../../core/protocol/file-chunks.js'
import { encodeBitmap } from '../../../core/protocol/file-wire.js'
import { Checker, PEER_ID } from '../../../core/protocol/validate.js'
import type { Logger } from '../../../core/util/log.js'

export interface FileLimits {
  /** bytes of files one user may have at the relay at once. @default 2 GiB */
  quotaBytes: number
  /** a file is deleted this long after it was offered. @default 3 days (the mailbox keeps mail 30) */
  ttlMs: number
  /** the largest file the relay keeps. @default 1 GiB */
  maxFileBytes: number
}

export const DEFAULT_FILE_LIMITS: FileLimits = { quotaBytes: 2 * 1024 ** 3, ttlMs: 3 * 24 * 3600 * 1000, maxFileBytes: 1024 ** 3 }

export interface FileOffer { size: number, chunkSize: number, hashes: string, recipients: string[] }

interface Meta extends FileOffer { v: 1, id: string, uploader: string, offeredAt: number, expiresAt: number }

interface Entry { meta: Meta, hashes: Uint8Array, count: number, held: Set<number> }

const offerCheck = new Checker('ERR_INVALID_ARGUMENT', 'file offer')

export function parseFileOffer (v: unknown): FileOffer {
  const o = offerCheck.obj(v)
  const size = offerCheck.int(o, 'size', { min: 0, max: MAX_CHUNKS * MAX_CHUNK_BYTES })
  const chunkSize = offerCheck.int(o, 'chunkSize', { min: MIN_CHUNK_BYTES, max: MAX_CHUNK_BYTES })
  const n = chunkCount(size, chunkSize)
  if (n > MAX_CHUNKS) offerCheck.fail('too many chunks')
  const hashes = offerCheck.str(o, 'hashes', { max: Math.ceil(MAX_CHUNKS * CHUNK_HASH_BYTES * 4 / 3), pattern: /^[A-Za-z0-9_-]+$/ })
  if (Buffer.from(hashes, 'base64url').byteLength !== n * CHUNK_HASH_BYTES) offerCheck.fail('hashes do not match the chunk count')
  const recipients = offerCheck.arr(o, 'recipients', { min: 1, max: 1000 }).map(r => offerCheck.str({ r }, 'r', { max: 60, pattern: PEER_ID }))
  return { size, chunkSize, hashes, recipients }
}

export class RelayFileStore {
  private readonly files = new Map<string, Entry>()
  private timer?: NodeJS.Timeout

  constructor (private readonly dir: string, public limits: FileLimits, private readonly log: Logger) {}

  async start (sweepIntervalMs: number): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    for (const id of await readdir(this.dir)) {
      if (!FILE_ID.test(id)) continue
      try {
        const meta = JSON.parse(await readFile(join(this.dir, id, 'meta.json'), 'utf8')) as Meta
        const e = this.entry(meta)
        for (const name of await readdir(join(this.dir, id))) if (/^\d+$/.test(name)) e.held.add(Number(name))
        this.files.set(id, e)
      } catch {
        // an offer cut short before its meta was written holds nothing anyone can ask for
        await rm(join(this.dir, id), { recursive: true, force: true })
      }
    }
    await this.sweep()
    this.timer = setInterval(() => { void this.sweep() }, sweepIntervalMs)
    this.timer.unref()
  }

  stop (): void { clearInterval(this.timer) }

  private entry (meta: Meta): Entry {
    return { meta, hashes: new Uint8Array(Buffer.from(meta.hashes, 'base64url')), count: chunkCount(meta.size, meta.chunkSize), held: new Set() }
  }

  /** bytes of the files `uploader` has here */
  usage (uploader: string): number {
    let b = 0
    for (const e of this.files.values()) if (e.meta.uploader === uploader) b += e.meta.size
    return b
  }

  /** files and bytes per uploader, in one pass (the console's users list: usage against the per-user quota) */
  usageByUploader (): Map<string, { files: number, bytes: number }> {
    const by = new Map<string, { files: number, bytes: number }>()
    for (const e of this.files.values()) {
      const u = by.get(e.meta.uploader) ?? { files: 0, bytes: 0 }
      by.set(e.meta.uploader, { files: u.files + 1, bytes: u.bytes + e.meta.size })
    }
    return by
  }

  totals (): { files: number, bytes: number } {
    let bytes = 0
    for (const e of this.files.values()) bytes += e.meta.size
    return { files: this.files.size, bytes }
  }

  /** Keeps room for a file; the same offer again (a resumed upload) is accepted as it is. */
  async offer (uploader: string, id: string, offer: FileOffer): Promise<void> {
    const have = this.files.get(id)
    if (have !== undefined) {
      if (have.meta.uploader !== uploader || have.meta.hashes !== offer.hashes) throw new ParleyError('ERR_ID_CONFLICT', 'another file has this id here')
      return
    }
    const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(n < 10 * 1024 * 1024 ? 1 : 0)} MiB`
    if (offer.size > this.limits.maxFileBytes) {
      const what = `the relay keeps files of at most ${mib(this.limits.maxFileBytes)} for offline colleagues`
      throw new ParleyError('ERR_FILE_TOO_LARGE', `${what}; this one is ${mib(offer.size)}`)
    }
    const used = this.usage(uploader)
    if (used + offer.size > this.limits.quotaBytes) {
      const what = `the relay keeps at most ${mib(this.limits.quotaBytes)} of your files for offline colleagues`
      throw new ParleyError('ERR_FILE_QUOTA_EXCEEDED', `${what}; ${mib(used)} are in use and this file is ${mib(offer.size)}`)
    }
    const now = Date.now()
    const meta: Meta = { v: 1, id, uploader, ...offer, offeredAt: now, expiresAt: now + this.limits.ttlMs }
    await mkdir(join(this.dir, id), { recursive: true, mode: 0o700 })
    await this.writeDurably(join(this.dir, id, 'meta.json'), Buffer.from(JSON.stringify(meta)))
    this.files.set(id, this.entry(meta))
  }

  private allowed (e: Entry, peer: string): boolean { return e.meta.uploader === peer || e.meta.recipients.includes(peer) }

  private need (id: string, peer: string): Entry {
    const e = this.files.get(id)
    if (e === undefined || !this.allowed(e, peer)) throw new ParleyError('ERR_NOT_FOUND', 'the relay has no such file for you')
    return e
  }

  have (id: string, peer: string): string {
    const e = this.need(id, peer)
    return encodeBitmap(i => e.held.has(i), e.count)
  }

  /** Stores chunk `i` once its SHA-256 matches the one offered; answered only after it is on disk. */
  async put (id: string, peer: string, i: number, sealed: Uint8Array): Promise<void> {
    const e = this.need(id, peer)
    if (e.meta.uploader !== peer) throw new ParleyError('ERR_NOT_FOUND', 'only the uploader adds chunks')
    if (!Number.isInteger(i) || i < 0 || i >= e.count) throw new ParleyError('ERR_INVALID_ARGUMENT', 'no such chunk')
    if (e.held.has(i)) return
    const want = Math.max(0, Math.min(e.meta.chunkSize, e.meta.size - i * e.meta.chunkSize)) + CHUNK_TAG_BYTES
    if (sealed.byteLength !== want || !await chunkMatches(sealed, e.hashes.subarray(i * CHUNK_HASH_BYTES, (i + 1) * CHUNK_HASH_BYTES))) {
      throw new ParleyError('ERR_CHUNK_REJECTED', `chunk ${i} does not match the hash offered`)
    }
    await this.writeDurably(join(this.dir, id, String(i)), sealed)
    e.held.add(i)
  }

  async get (id: string, peer: string, i: number): Promise<Uint8Array> {
    const e = this.need(id, peer)
    if (!e.held.has(i)) throw new ParleyError('ERR_NOT_FOUND', 'the relay does not have that chunk')
    return new Uint8Array(await readFile(join(this.dir, id, String(i))))
  }

  private async writeDurably (path: string, data: Uint8Array): Promise<void> {
    const tmp = `${path}.tmp`
    const fh = await open(tmp, 'w', 0o600)
    try { await fh.writeFile(data); await fh.datasync() } finally { await fh.close() }
    await rename(tmp, path)
  }

  /** Deletes files past their time to live. */
  async sweep (now = Date.now()): Promise<number> {
    let n = 0
    for (const [id, e] of this.files) {
      if (e.meta.expiresAt > now) continue
      this.files.delete(id)
      await rm(join(this.dir, id), { recursive: true, force: true })
        .catch((err) => { this.log.warn('could not delete an expired file', { id, err: String(err) }) })
      n++
    }
    return n
  }
}
