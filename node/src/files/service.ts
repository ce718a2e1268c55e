/**
 * File transfer: a subsystem of its own beside the messenger. Sending reads
 * the file once to hash its encrypted chunks, keeps a durable transfer record
 * and sends the manifest as an ordinary sealed message (so it goes wherever
 * a message goes: LAN, relay circuit, mailbox, group fan-out, sync). A
 * receiver that stores such a message starts fetching the chunks over
 * FILE_PROTOCOL from whoever may have them (the author, any other recipient
 * of the envelope, the relay's file store), checks each chunk's hash before
 * decrypting and writing it, and records it as verified only once it is
 * fsynced: a kill -9 on either side resumes from the verified chunks. The file
 * appears under its (safe) name only after the last chunk: until then it is a
 * `.part`.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises'
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path'
import { ParleyError, RemoteError } from '../../../core/errors.js'
import {
  DEFAULT_MAX_FILE_BYTES, MAX_FORMAT_FILE_BYTES, chunkCount, chunkHash, chunkLength, chunkSizeFor, safeFileName, safeRelativeDir,
  type FileManifest
} from '../../../core/protocol/file-manifest.js'
import { importContentKey } from '../../../core/protocol/file-chunks.js'
import { ChunkCrypto, type ChunkKeys } from './chunk-crypto.js'
import { FILE_PROTOCOL, FileWire, decodeBitmap, encodeBitmap, type FileAnswer, type FileRequest } from '../../../core/protocol/file-wire.js'
import { b64 } from '../../../core/protocol/validate.js'
import { TypedEventEmitter } from '../../../core/util/events.js'
import type { Logger } from '../../../core/util/log.js'
import type { PeerHost } from '../host/types.js'
import type { StoredMessage } from '../store/types.js'
import type { Messenger } from '../messaging/messenger.js'
import type { RelayClient } from '../messaging/relay-client.js'
import { TransferStates } from './transfer-state.js'
import type { TransferRecord, TransferView } from './types.js'

export interface FileServiceInit {
  /** where received files go. @default ~/Downloads/Parley */
  downloads?: string
  /** the largest file sent or accepted. @default 4 GiB (the format carries 16 GiB) */
  maxFileBytes?: number
  /** encrypted bytes asked for at once from one source. @default 8 MiB */
  windowBytes?: number
  /** how often waiting transfers look for a source, and relay copies are made. @default 2000 */
  tickMs?: number
}

export interface FileServiceComponents {
  host: PeerHost
  messenger: Pick<Messenger, 'peerId' | 'sendMessage' | 'group' | 'addEventListener' | 'removeEventListener'>
  relay?: Pick<RelayClient, 'canDeposit'>
  log: Logger
  /** DATA/files: transfer states, uploads from the UI, settings */
  dir: string
}

export interface FileServiceEvents {
  transferChanged: CustomEvent<TransferView>
}

/** per path given (not for the files inside a folder): the name, type and thumbnail the UI gives */
export interface SendFileOptions { thumbs?: Array<FileManifest['thumb'] | undefined>, names?: string[], types?: string[] }

export const DEFAULT_WINDOW_BYTES = 8 * 1024 * 1024
/** a group member holding a file passes it on to members that come online while its author is away, this long after it arrived */
const PASS_ON_MS = 7 * 24 * 3600 * 1000
export const DEFAULT_FILE_TICK_MS = 2000
/**
 * a partial file's state is recorded (fsync of the file, then of the state) after this many written
 * bytes, or this long, whichever comes first: a group commit in the background. Chunks written but not
 * recorded when the process dies are not lost: at the next start they are hash-checked on disk (recover).
 */
const FLUSH_BYTES = 16 * 1024 * 1024
const FLUSH_MS = 1000
/** a disk slower than the network: the fetch waits for the flush beyond this */
const MAX_UNRECORDED_BYTES = 48 * 1024 * 1024
const EVENT_MS = 250
/** a file being served stays open this long after its last request */
const READER_IDLE_MS = 10_000

export const defaultDownloads = (home: string): string => join(home, 'Downloads', 'Parley')

interface Live {
  rec: TransferRecord
  ctx?: ChunkKeys
  hashes: Uint8Array
  count: number
  /** in: verified and recorded; out: unused */
  verified: Set<number>
  /** in: written, not yet fsynced and recorded */
  written: Set<number>
  /** in: being fetched */
  inflight: Set<number>
  /** in: sources that gave a bad copy of a chunk */
  bad: Map<string, Set<number>>
  fh?: FileHandle
  opening?: Promise<FileHandle>
  /** serving: the file chunks are read from, kept open while it is asked for (closed when idle) */
  rfh?: { path: string, fh: Promise<FileHandle>, used: number }
  flushing?: Promise<void>
  flushAgain?: boolean
  lastFlush: number
  /** out: chunk bytes sent per recipient (this run) */
  served: Map<string, Set<number>>
  wires: Set<FileWire>
  samples: Array<[number, number]>
  lastEvent: number
  eventTimer?: NodeJS.Timeout
  loop?: Promise<void>
  /** aborted by pause, cancel and stop: a stream still being opened (to a peer gone quiet) gives up at once */
  halt?: AbortController
  wake?: () => void
  note?: string
  /** in, loaded from disk: look for chunks written but not recorded before the fetch goes on */
  recover?: boolean
}

const bitmapOf = (s: Set<number>, n: number): string => encodeBitmap(i => s.has(i), n)
const setOf = (bitmap: string, n: number): Set<number> => {
  const has = decodeBitmap(bitmap, n)
  const out = new Set<number>()
  for (let i = 0; i < n; i++) if (has(i)) out.add(i)
  return out
}

export class FileService extends TypedEventEmitter<FileServiceEvents> {
  private readonly states: TransferStates
  private readonly live = new Map<string, Live>()
  private running = false
  private timer?: NodeJS.Timeout
  private uploading = false
  downloads: string
  readonly maxFileBytes: number
  private readonly windowBytes: number
  private readonly tickMs: number
  private readonly crypto = new ChunkCrypto()

  constructor (private readonly c: FileServiceComponents, init: FileServiceInit = {}) {
    super()
    this.states = new TransferStates(join(c.dir, 'transfers'), c.log)
    this.downloads = resolve(init.downloads ?? defaultDownloads(process.env.HOME ?? '.'))
    this.maxFileBytes = init.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES
    if (!Number.isSafeInteger(this.maxFileBytes) || this.maxFileBytes < 1 || this.maxFileBytes > MAX_FORMAT_FILE_BYTES) {
      throw new ParleyError('ERR_INVALID_ARGUMENT', `the file size limit must be 1 … ${MAX_FORMAT_FILE_BYTES} bytes`)
    }
    this.windowBytes = init.windowBytes ?? DEFAULT_WINDOW_BYTES
    this.tickMs = init.tickMs ?? DEFAULT_FILE_TICK_MS
  }

  /** Registers the protocol (before the host listens) and loads the transfers. */
  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    await this.c.host.handle(FILE_PROTOCOL, (stream, remote) => {
      const wire: FileWire = new FileWire(stream, async (req, payload) => await this.serve(remote, req, payload), this.c.log)
      void wire
    })
    for (const rec of await this.states.loadAll()) await this.adopt(rec)
    this.c.messenger.addEventListener('messageStored', this.onStored)
    this.c.host.addEventListener('peerConnected', this.onConnected)
    this.c.host.addEventListener('presenceChanged', this.onPresence)
    this.timer = setInterval(() => { this.tick() }, this.tickMs)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    clearInterval(this.timer)
    this.c.messenger.removeEventListener('messageStored', this.onStored)
    this.c.host.removeEventListener('peerConnected', this.onConnected)
    this.c.host.removeEventListener('presenceChanged', this.onPresence)
    for (const t of this.live.values()) this.halt(t, new ParleyError('ERR_STREAM_CLOSED', 'stopping'))
    await Promise.all([...this.live.values()].map(async t => { await t.loop?.catch(() => {}) }))
    for (const t of this.live.values()) {
      clearTimeout(t.eventTimer)
      await this.flush(t).catch(() => {})
      await t.fh?.close().catch(() => {})
      t.fh = undefined
      await this.closeReader(t)
    }
    this.live.clear()
    await this.crypto.close()
  }

  /** Stops a transfer's fetching now: its streams, a stream being opened, its wait for a source. */
  private halt (t: Live, err: ParleyError): void {
    for (const w of t.wires) w.abort(err)
    t.halt?.abort(err)
    t.wake?.()
  }

  private key (direction: string, fileId: string): string { return `${direction}-${fileId}` }

  private async adopt (rec: TransferRecord): Promise<Live> {
    const m = rec.manifest
    const count = chunkCount(m.size, m.chunkSize)
    const t: Live = {
      rec,
      hashes: new Uint8Array(Buffer.from(m.hashes, 'base64url')),
      count,
      verified: setOf(rec.verified, count),
      written: new Set(),
      inflight: new Set(),
      bad: new Map(),
      lastFlush: Date.now(),
      served: new Map(),
      wires: new Set(),
      samples: [],
      lastEvent: 0
    }
    // its own 32-byte buffer (Buffer.from would be a view into the shared 8 KiB pool, cloned whole into each worker message)
    const raw = new Uint8Array(Buffer.from(m.key, 'base64url'))
    t.ctx = { key: await importContentKey(raw), raw, fileId: m.id, count }
    this.live.set(this.key(rec.direction, m.id), t)
    if (rec.direction === 'in' && rec.partPath !== undefined && (rec.state === 'active' || rec.state === 'paused')) t.recover = true
    if (rec.direction === 'in' && rec.state === 'active') this.runLoop(t)
    return t
  }

  // ---- sending ---------------------------------------------------------------

  /**
   * Sends files (a folder: every file in it, with its place inside) to a peer
   * ID or a group conversation id. Each file becomes one message carrying its
   * manifest. Returns the transfers.
   */
  async send (to: string, paths: string[], opts: SendFileOptions = {}): Promise<TransferView[]> {
    if (paths.length === 0) throw new ParleyError('ERR_INVALID_ARGUMENT', 'give at least one file')
    const files: Array<{ path: string, dir?: string, index: number }> = []
    for (const [index, p] of paths.entries()) {
      const abs = resolve(p)
      const st = await stat(abs).catch((err: NodeJS.ErrnoException) => {
        throw new ParleyError(err.code === 'ENOENT' ? 'ERR_NOT_FOUND' : 'ERR_INVALID_ARGUMENT', `cannot read ${p}: ${err.code ?? err.message}`)
      })
      if (st.isDirectory()) {
        for (const f of await walk(abs)) {
          const rel = relative(dirname(abs), dirname(f)).split(sep).join('/')
          files.push({ path: f, dir: rel, index })
        }
      } else if (st.isFile()) {
        files.push({ path: abs, index })
      } else {
        throw new ParleyError('ERR_INVALID_ARGUMENT', `${p} is not a file or a folder`)
      }
    }
    if (files.length > 10_000) throw new ParleyError('ERR_INVALID_ARGUMENT', `a folder of ${files.length} files is more than 10000`)
    // every size checked before anything is sent
    for (const f of files) {
      const size = (await stat(f.path)).size
      if (size > this.maxFileBytes) {
        throw new ParleyError('ERR_FILE_TOO_LARGE', `${basename(f.path)} is ${size} bytes; files may be at most ${this.maxFileBytes} bytes`)
      }
    }
    const views: TransferView[] = []
    for (const f of files) {
      const name = (f.dir === undefined ? opts.names?.[f.index] : undefined) ?? basename(f.path)
      const thumb = f.dir === undefined ? opts.thumbs?.[f.index] : undefined
      const type = (f.dir === undefined ? opts.types?.[f.index] : undefined) ?? guessType(name)
      views.push(await this.sendOne(to, f.path, name, type, f.dir, thumb))
    }
    return views
  }

  private async sendOne (to: string, path: string, name: string, type: string, dir: string | undefined, thumb?: FileManifest['thumb']): Promise<TransferView> {
    const fileId = b64(randomBytes(16))
    const rawKey = randomBytes(32)
    const fh = await open(path, 'r')
    let size: number
    let hashes: Buffer
    try {
      size = (await fh.stat()).size
      const chunkSize = chunkSizeFor(size)
      const count = chunkCount(size, chunkSize)
      const ctx: ChunkKeys = { key: await importContentKey(rawKey), raw: rawKey, fileId, count }
      hashes = Buffer.alloc(count * 32)
      // read (thread pool), encrypt and hash (chunk workers) a few chunks at a time
      const PAR = 4
      for (let base = 0; base < count; base += PAR) {
        await Promise.all(Array.from({ length: Math.min(PAR, count - base) }, async (_, k) => {
          const i = base + k
          const plain = await readChunk(fh, { size, chunkSize }, i)
          Buffer.from((await this.crypto.seal(ctx, i, plain, true)).hash).copy(hashes, i * 32)
        }))
      }
      const manifest: FileManifest = {
        v: 1, id: fileId, name, size, type, chunkSize, hashes: hashes.toString('base64url'), key: rawKey.toString('base64url'),
        ...(dir !== undefined && dir !== '' ? { dir } : {}), ...(thumb !== undefined ? { thumb } : {})
      }
      const recipients = this.recipientsOf(to)
      const rec: TransferRecord = {
        v: 1, direction: 'out', fileId, msgId: '', conv: '', author: this.c.messenger.peerId, recipients, manifest, path,
        state: 'active', verified: '', done: [], rejected: 0, createdAt: Date.now()
      }
      // the record first: once the message is out, recipients ask for chunks at once
      await this.states.save(rec)
      const t = await this.adopt(rec)
      const msg = await this.c.messenger.sendMessage(to, name === '' ? 'file' : name, { file: manifest })
      rec.msgId = msg.id
      rec.conv = msg.conv
      // the devices it was sealed to: every device of each recipient account (not our own other devices)
      const self = this.c.messenger.peerId
      rec.recipients = [...new Set(msg.envelope.keys.map(k => k.to))]
        .filter(d => d !== self && (msg.recipientAccounts === undefined || msg.recipientAccounts[d] !== undefined))
      if (msg.recipientAccounts !== undefined) rec.accounts = Object.fromEntries(rec.recipients.map(d => [d, msg.recipientAccounts?.[d] ?? d]))
      await this.states.save(rec)
      this.changed(t, true)
      if (recipients.some(r => !this.c.host.isOnline(r))) void this.uploadAll()
      return this.view(t)
    } finally {
      await fh.close()
    }
  }

  private recipientsOf (to: string): string[] {
    if (to.startsWith('g:')) {
      const g = this.c.messenger.group(to)
      if (g === null) throw new ParleyError('ERR_NOT_FOUND', 'group not known yet')
      return g.members.filter(m => m !== this.c.messenger.peerId)
    }
    return [to]
  }

  // ---- serving chunks --------------------------------------------------------

  /** Who may ask for this file: its author and the envelope's recipients. */
  private allowed (t: Live, remote: string): boolean {
    return remote === t.rec.author || t.rec.recipients.includes(remote)
  }

  private findServed (f: string, remote: string): Live | undefined {
    for (const dir of ['out', 'in']) {
      const t = this.live.get(this.key(dir, f))
      if (t !== undefined && t.rec.state !== 'cancelled' && t.rec.state !== 'failed' && this.allowed(t, remote)) return t
    }
    return undefined
  }

  private async serve (remote: string, req: FileRequest, _payload: Uint8Array): Promise<FileAnswer> {
    const t = this.findServed(req.f, remote)
    if (t === undefined) throw new ParleyError('ERR_NOT_FOUND', 'no such file here')
    const rec = t.rec
    switch (req.op) {
      case 'have': {
        if (rec.direction === 'out') return { body: { have: encodeBitmap(() => true, t.count) } }
        return { body: { have: bitmapOf(t.verified, t.count) } }
      }
      case 'get': {
        const i = req.i ?? -1
        if (i < 0 || i >= t.count) throw new ParleyError('ERR_INVALID_ARGUMENT', 'no such chunk')
        if (rec.direction === 'in' && !t.verified.has(i)) throw new ParleyError('ERR_NOT_FOUND', 'this device does not have that chunk yet')
        const plain = await readChunk(await this.reader(t), rec.manifest, i)
        const bytes = plain.byteLength
        const { sealed } = await this.crypto.seal(t.ctx as ChunkKeys, i, plain)
        if (rec.direction === 'out') {
          let s = t.served.get(remote)
          if (s === undefined) { s = new Set(); t.served.set(remote, s) }
          s.add(i)
          this.sample(t, bytes)
          this.changed(t)
        }
        return { payload: sealed }
      }
      case 'done': {
        if (rec.direction === 'out' && !rec.done.includes(remote) && rec.recipients.includes(remote)) {
          rec.done.push(remote)
          if (peopleDone(rec).done === peopleDone(rec).total) { rec.state = 'complete'; rec.completedAt = Date.now() }
          await this.states.save(rec)
          this.changed(t, true)
        }
        return {}
      }
      default: throw new ParleyError('ERR_INVALID_ARGUMENT', `${req.op} is for relays`)
    }
  }

  /**
   * The file chunks are served from, opened once for all the requests of a transfer (not once per
   * chunk); closed after READER_IDLE_MS without a request, and reopened when the path changes (a
   * received file renamed from its `.part`).
   */
  private async reader (t: Live): Promise<FileHandle> {
    const rec = t.rec
    const path = rec.direction === 'out' || rec.state === 'complete' ? rec.path : rec.partPath ?? rec.path
    if (t.rfh !== undefined && t.rfh.path !== path) await this.closeReader(t)
    // stopping: no handle is opened that stop() would not close
    if (!this.running) throw new ParleyError('ERR_STREAM_CLOSED', 'stopping')
    if (t.rfh === undefined) {
      const fh = open(path, 'r').catch((err: NodeJS.ErrnoException) => {
        throw new ParleyError('ERR_NOT_FOUND', `the file is no longer there (${err.code ?? 'error'})`)
      })
      t.rfh = { path, fh, used: Date.now() }
      fh.catch(() => { if (t.rfh?.fh === fh) t.rfh = undefined })
    }
    t.rfh.used = Date.now()
    return await t.rfh.fh
  }

  private async closeReader (t: Live): Promise<void> {
    const r = t.rfh
    t.rfh = undefined
    if (r !== undefined) await (await r.fh.catch(() => undefined))?.close().catch(() => {})
  }

  // ---- receiving -------------------------------------------------------------

  private readonly onStored = (evt: CustomEvent<StoredMessage>): void => {
    const m = evt.detail
    if (m.file === undefined || m.outgoing) return
    void this.incoming(m).catch((err) => { this.c.log.warn('could not start a file transfer', { msg: m.id, err: String(err) }) })
  }

  private async incoming (m: StoredMessage): Promise<void> {
    const manifest = m.file as FileManifest
    if (this.live.has(this.key('in', manifest.id))) return
    const self = this.c.messenger.peerId
    const recipients = [...new Set(m.envelope.keys.map(k => k.to))].filter(p => p !== self && p !== m.author)
    const rec: TransferRecord = {
      v: 1, direction: 'in', fileId: manifest.id, msgId: m.id, conv: m.conv, author: m.author, recipients, manifest,
      path: '', state: 'active', verified: '', done: [], rejected: 0, createdAt: Date.now()
    }
    if (manifest.size > this.maxFileBytes) {
      rec.state = 'failed'
      rec.error = 'ERR_FILE_TOO_LARGE'
    } else {
      const dir = join(this.downloads, ...safeRelativeDir(manifest.dir))
      const name = safeFileName(manifest.name)
      rec.path = join(dir, name)
      rec.partPath = join(dir, `${name}.${manifest.id.slice(0, 8)}.part`)
      if (!inside(this.downloads, rec.partPath)) throw new ParleyError('ERR_INVALID_ARGUMENT', 'file name escapes the downloads folder')
    }
    await this.states.save(rec)
    const t = await this.adopt(rec)
    this.changed(t, true)
  }

  private readonly onConnected = (): void => {
    for (const t of this.live.values()) t.wake?.()
  }

  /**
   * A group member came online while the author of a file we hold is away: connect to it, so the
   * connection's sync gives it the file message (members do not connect without something to send)
   * and it can fetch the chunks from us.
   */
  private readonly onPresence = (evt: CustomEvent<{ peerId: string, online: boolean }>): void => {
    const { peerId, online } = evt.detail
    if (!online || this.c.host.isConnected(peerId)) return
    const now = Date.now()
    const holds = [...this.live.values()].some(t => t.rec.direction === 'in' && t.rec.state === 'complete' && t.rec.conv.startsWith('g:') &&
      t.rec.recipients.includes(peerId) && !this.c.host.isOnline(t.rec.author) && now - (t.rec.completedAt ?? 0) < PASS_ON_MS)
    if (holds) void this.c.host.dial(peerId, { signal: AbortSignal.timeout(10_000) }).catch(() => {})
  }

  private runLoop (t: Live): void {
    if (t.loop !== undefined) return
    t.halt = new AbortController()
    t.loop = this.fetchLoop(t).catch((err) => {
      this.c.log.warn('file transfer stopped', { file: t.rec.fileId, err: String(err) })
    }).finally(() => { t.loop = undefined })
  }

  private async fetchLoop (t: Live): Promise<void> {
    let backoff = 250
    if (t.recover === true) {
      t.recover = false
      await this.recoverWritten(t).catch((err) => { this.c.log.warn('could not check a partial file', { file: t.rec.fileId, err: String(err) }) })
    }
    while (this.running && t.rec.state === 'active') {
      if (t.verified.size + t.written.size >= t.count) { await this.finish(t); return }
      const progressed = await this.fetchRound(t)
      if (t.verified.size + t.written.size >= t.count) continue
      if (progressed) { backoff = 250; continue }
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, backoff)
        t.wake = () => { clearTimeout(timer); t.wake = undefined; resolve() }
      })
      t.wake = undefined
      backoff = Math.min(backoff * 2, 5000)
    }
  }

  /** The peers that may have the file now: the author first, then the other recipients, the relay last. */
  private sources (t: Live): string[] {
    const host = this.c.host
    const peers = [t.rec.author, ...t.rec.recipients].filter(p => p !== this.c.messenger.peerId && host.isOnline(p))
    const relay = host.relayPeerId
    if (relay !== null && this.c.relay?.canDeposit === true) peers.push(relay)
    return peers
  }

  private async fetchRound (t: Live): Promise<boolean> {
    const sources = this.sources(t)
    if (sources.length === 0) { this.note(t, 'waiting for the sender or another member to come online'); return false }
    let any = false
    for (const peer of sources) {
      if (t.rec.state !== 'active' || !this.running) return any
      try {
        if (await this.fetchFrom(t, peer) > 0) any = true
      } catch (err) {
        this.c.log.debug('file source failed', { file: t.rec.fileId, peer, err: String(err) })
      }
      if (t.verified.size + t.written.size >= t.count) return true
    }
    if (!any) this.note(t, 'no source online has the missing chunks yet')
    return any
  }

  private async openWire (peer: string, halt?: AbortSignal): Promise<FileWire> {
    const timeout = AbortSignal.timeout(15_000)
    const signal = halt === undefined ? timeout : AbortSignal.any([timeout, halt])
    const stream = await this.c.host.openStream(peer, FILE_PROTOCOL, { signal })
    return new FileWire(stream, undefined, this.c.log)
  }

  /** Fetches what `peer` has of the missing chunks, `window` at a time. Returns the chunks stored. */
  private async fetchFrom (t: Live, peer: string): Promise<number> {
    const wire = await this.openWire(peer, t.halt?.signal)
    t.wires.add(wire)
    try {
      const have = decodeBitmap(((await wire.call('have', t.rec.fileId)).body as { have?: unknown } | undefined)?.have, t.count)
      const bad = t.bad.get(peer)
      const todo: number[] = []
      for (let i = 0; i < t.count; i++) {
        if (have(i) && !t.verified.has(i) && !t.written.has(i) && !t.inflight.has(i) && bad?.has(i) !== true) todo.push(i)
      }
      if (todo.length === 0) return 0
      this.note(t, undefined)
      const window = Math.max(2, Math.floor(this.windowBytes / t.rec.manifest.chunkSize))
      let stored = 0
      let failure: unknown
      const worker = async (): Promise<void> => {
        while (todo.length > 0 && failure === undefined && t.rec.state === 'active' && this.running) {
          const i = todo.shift() as number
          t.inflight.add(i)
          try {
            const a = await wire.call('get', t.rec.fileId, { i })
            if (await this.accept(t, peer, i, a.payload ?? new Uint8Array(0))) stored++
          } catch (err) {
            failure ??= err
          } finally {
            t.inflight.delete(i)
          }
        }
      }
      await Promise.all(Array.from({ length: Math.min(window, todo.length) }, worker))
      if (failure !== undefined && stored === 0) throw failure
      return stored
    } finally {
      t.wires.delete(wire)
      void wire.close()
    }
  }

  /**
   * After a restart: the chunks of the partial file not recorded as verified whose bytes on disk are
   * the sender's (their encryption hashes to the manifest's hash) were written before the process
   * died; they are fsynced and recorded instead of fetched again. Holes (all zeros) are skipped.
   */
  private async recoverWritten (t: Live): Promise<void> {
    const m = t.rec.manifest
    const fh = await open(t.rec.partPath as string, 'r').catch(() => undefined)
    if (fh === undefined) return
    const found: number[] = []
    try {
      if ((await fh.stat()).size !== m.size) return
      const zero = Buffer.alloc(m.chunkSize)
      for (let i = 0; i < t.count && this.running; i++) {
        // cancelled, paused or stopping meanwhile: the scan stops at once (a paused one is scanned again on resume)
        if (t.rec.state !== 'active' || t.halt?.signal.aborted === true) { t.recover = t.rec.state === 'paused'; return }
        if (t.verified.has(i)) continue
        const plain = await readChunk(fh, m, i) as Buffer
        if (plain.byteLength === 0 || plain.equals(zero.subarray(0, plain.byteLength))) continue
        const { hash } = await this.crypto.seal(t.ctx as ChunkKeys, i, plain, true)
        if (Buffer.from(hash).equals(chunkHash(t.hashes, i))) found.push(i)
      }
      if (found.length === 0) return
      await fh.datasync()
    } finally { await fh.close() }
    if (t.rec.state !== 'active' && t.rec.state !== 'paused') return
    for (const i of found) t.verified.add(i)
    t.rec.verified = bitmapOf(t.verified, t.count)
    await this.states.save(t.rec)
    this.c.log.info('partial file: chunks written before a restart kept', { file: t.rec.fileId, chunks: found.length })
    this.changed(t, true)
  }

  /** Checks a chunk (hash, then decryption) and writes it; false (counted, to be fetched elsewhere) if it is not the sender's. */
  private async accept (t: Live, peer: string, i: number, sealed: Uint8Array): Promise<boolean> {
    // hash, then decryption, in a chunk worker (`sealed` goes to it)
    let plain = await this.crypto.open(t.ctx as ChunkKeys, i, sealed, chunkHash(t.hashes, i))
    if (plain !== undefined && plain.byteLength !== chunkLength(t.rec.manifest, i)) plain = undefined
    if (plain === undefined) {
      t.rec.rejected++
      let bad = t.bad.get(peer)
      if (bad === undefined) { bad = new Set(); t.bad.set(peer, bad) }
      bad.add(i)
      this.c.log.warn('rejected a file chunk that does not match its hash', { file: t.rec.fileId, chunk: i, from: peer })
      this.changed(t, true)
      return false
    }
    if (t.rec.state !== 'active') return false
    const fh = await this.partHandle(t)
    await fh.write(plain, 0, plain.byteLength, i * t.rec.manifest.chunkSize)
    t.written.add(i)
    this.sample(t, plain.byteLength)
    this.changed(t)
    const unrecorded = t.written.size * t.rec.manifest.chunkSize
    if (unrecorded >= FLUSH_BYTES || Date.now() - t.lastFlush >= FLUSH_MS) this.kickFlush(t)
    // a disk slower than the network: wait for it rather than leave more and more unrecorded
    if (unrecorded >= MAX_UNRECORDED_BYTES) await t.flushing
    return true
  }

  /**
   * Records written chunks in the background, one flush after the other (as a group commit): the
   * fetch goes on while the disk syncs, and what is unrecorded at a crash is what arrived during one sync.
   */
  private kickFlush (t: Live): void {
    if (t.flushing !== undefined) { t.flushAgain = true; return }
    t.flushing = (async () => {
      do {
        t.flushAgain = false
        await this.flushOnce(t)
      } while (t.flushAgain && t.written.size > 0)
    })().catch((err) => { this.c.log.warn('could not record file progress', { file: t.rec.fileId, err: String(err) }) })
      .finally(() => { t.flushing = undefined })
  }

  private async partHandle (t: Live): Promise<FileHandle> {
    if (t.fh !== undefined) return t.fh
    t.opening ??= (async () => {
      const part = t.rec.partPath as string
      await mkdir(dirname(part), { recursive: true })
      const fh = await open(part, 'a+').then(async h => { await h.close(); return await open(part, 'r+') })
      if ((await fh.stat()).size !== t.rec.manifest.size) await fh.truncate(t.rec.manifest.size)
      t.fh = fh
      return fh
    })().finally(() => { t.opening = undefined })
    return await t.opening
  }

  /** fsyncs the partial file, then records its newly written chunks as verified. */
  private async flush (t: Live): Promise<void> {
    while (t.flushing !== undefined) await t.flushing
    await this.flushOnce(t)
  }

  private async flushOnce (t: Live): Promise<void> {
    if (t.written.size === 0 || t.fh === undefined) return
    const batch = [...t.written]
    await t.fh.datasync()
    for (const i of batch) { t.written.delete(i); t.verified.add(i) }
    t.rec.verified = bitmapOf(t.verified, t.count)
    t.lastFlush = Date.now()
    await this.states.save(t.rec)
  }

  /** Every chunk verified: the partial file becomes the file, under a name not taken yet. */
  private async finish (t: Live): Promise<void> {
    while (t.inflight.size > 0) await new Promise(resolve => setTimeout(resolve, 10))
    await this.flush(t)
    if (t.verified.size < t.count || t.rec.state !== 'active') return
    const rec = t.rec
    await t.fh?.close()
    t.fh = undefined
    const part = rec.partPath as string
    if (rec.manifest.size === 0) await mkdir(dirname(part), { recursive: true }).then(async () => { await (await open(part, 'a')).close() })
    const final = await freeName(rec.path)
    await rename(part, final)
    rec.path = final
    rec.state = 'complete'
    rec.completedAt = Date.now()
    await this.states.save(rec)
    this.changed(t, true)
    this.c.log.info('file received', { file: rec.fileId, bytes: rec.manifest.size })
    void this.tellDone(t)
  }

  private async tellDone (t: Live): Promise<void> {
    if (!this.c.host.isOnline(t.rec.author)) return
    try {
      const wire = await this.openWire(t.rec.author)
      try { await wire.call('done', t.rec.fileId, { timeoutMs: 5000 }) } finally { void wire.close() }
    } catch { /* best effort: the sender's view only */ }
  }

  // ---- relay copies (offline recipients) -------------------------------------

  private tick (): void {
    const now = Date.now()
    for (const t of this.live.values()) {
      t.wake?.()
      if (t.rfh !== undefined && now - t.rfh.used > READER_IDLE_MS) void this.closeReader(t)
    }
    void this.uploadAll()
  }

  /** Copies outgoing files to the relay's file store while some recipient is offline. */
  private async uploadAll (): Promise<void> {
    if (this.uploading || !this.running) return
    const relay = this.c.host.relayPeerId
    if (relay === null || this.c.relay?.canDeposit !== true) return
    this.uploading = true
    try {
      for (const t of this.live.values()) {
        const r = t.rec
        if (r.direction !== 'out' || r.state !== 'active' || r.msgId === '' || r.relay?.state === 'uploaded' || r.relay?.state === 'refused') continue
        if (!r.recipients.some(p => !r.done.includes(p) && !this.c.host.isOnline(p))) continue
        await this.upload(t, relay).catch((err) => { this.c.log.info('relay file copy interrupted', { file: r.fileId, err: String(err) }) })
      }
    } finally {
      this.uploading = false
    }
  }

  private async upload (t: Live, relay: string): Promise<void> {
    const r = t.rec
    const m = r.manifest
    const wire = await this.openWire(relay)
    try {
      if (r.relay === undefined) { r.relay = { state: 'uploading' }; this.changed(t, true) }
      try {
        await wire.call('offer', m.id, { body: { size: m.size, chunkSize: m.chunkSize, hashes: m.hashes, recipients: r.recipients } })
      } catch (err) {
        if (err instanceof RemoteError) {
          r.relay = { state: 'refused', code: err.remoteCode, message: err.message.replace(/^[A-Z_]+: /, '') }
          await this.states.save(r)
          this.changed(t, true)
          return
        }
        throw err
      }
      const have = decodeBitmap(((await wire.call('have', m.id)).body as { have?: unknown } | undefined)?.have, t.count)
      const todo = Array.from({ length: t.count }, (_, i) => i).filter(i => !have(i))
      const fh = await open(r.path, 'r')
      try {
        const worker = async (): Promise<void> => {
          while (todo.length > 0) {
            const i = todo.shift() as number
            const { sealed } = await this.crypto.seal(t.ctx as ChunkKeys, i, await readChunk(fh, m, i))
            await wire.call('put', m.id, { i, payload: sealed })
          }
        }
        await Promise.all(Array.from({ length: 4 }, worker))
      } finally { await fh.close() }
      r.relay = { state: 'uploaded' }
      await this.states.save(r)
      this.changed(t, true)
    } finally {
      void wire.close()
    }
  }

  // ---- the user's commands and views ----------------------------------------

  private find (id: string): Live {
    const t = this.live.get(id)
    if (t === undefined) throw new ParleyError('ERR_NOT_FOUND', `no transfer ${id}`)
    return t
  }

  /** A transfer by its id, or by its message id. */
  private findRef (ref: string): Live {
    for (const t of this.live.values()) if (t.rec.msgId === ref) return t
    return this.find(ref)
  }

  async pause (ref: string): Promise<TransferView> {
    const t = this.findRef(ref)
    if (t.rec.state !== 'active') throw new ParleyError('ERR_INVALID_ARGUMENT', `the transfer is ${t.rec.state}`)
    t.rec.state = 'paused'
    this.halt(t, new ParleyError('ERR_ABORTED', 'paused'))
    await t.loop?.catch(() => {})
    await this.flush(t)
    await this.states.save(t.rec)
    this.changed(t, true)
    return this.view(t)
  }

  async resume (ref: string): Promise<TransferView> {
    const t = this.findRef(ref)
    if (t.rec.state !== 'paused') throw new ParleyError('ERR_INVALID_ARGUMENT', `the transfer is ${t.rec.state}`)
    t.rec.state = 'active'
    t.bad.clear()
    await this.states.save(t.rec)
    if (t.rec.direction === 'in') this.runLoop(t)
    this.changed(t, true)
    return this.view(t)
  }

  async cancel (ref: string): Promise<TransferView> {
    const t = this.findRef(ref)
    if (t.rec.state === 'complete' || t.rec.state === 'cancelled') throw new ParleyError('ERR_INVALID_ARGUMENT', `the transfer is ${t.rec.state}`)
    t.rec.state = 'cancelled'
    this.halt(t, new ParleyError('ERR_ABORTED', 'cancelled'))
    await t.loop?.catch(() => {})
    await t.flushing
    await t.fh?.close().catch(() => {})
    t.fh = undefined
    await this.closeReader(t)
    if (t.rec.partPath !== undefined) await rm(t.rec.partPath, { force: true })
    t.verified.clear()
    t.written.clear()
    t.rec.verified = ''
    await this.states.save(t.rec)
    this.changed(t, true)
    return this.view(t)
  }

  list (): TransferView[] {
    return [...this.live.values()].sort((a, b) => b.rec.createdAt - a.rec.createdAt).map(t => this.view(t))
  }

  get (ref: string): TransferView { return this.view(this.findRef(ref)) }

  /** The path of a received file, for opening it (only once complete). */
  completedPath (ref: string): string {
    const t = this.findRef(ref)
    if (t.rec.direction !== 'in' || t.rec.state !== 'complete') throw new ParleyError('ERR_NOT_FOUND', 'the file is not complete yet')
    return t.rec.path
  }

  private note (t: Live, note: string | undefined): void {
    if (t.note === note) return
    t.note = note
    // waiting: nothing moves now, whatever moved in the last seconds
    if (note !== undefined) t.samples.length = 0
    this.changed(t, true)
  }

  private sample (t: Live, bytes: number): void {
    const now = Date.now()
    t.samples.push([now, bytes])
    while (t.samples.length > 0 && now - (t.samples[0] as [number, number])[0] > 3000) t.samples.shift()
  }

  private view (t: Live): TransferView {
    const r = t.rec
    const m = r.manifest
    const bytesOf = (s: Set<number>): number => { let b = 0; for (const i of s) b += chunkLength(m, i); return b }
    let bytes: number
    if (r.direction === 'in') bytes = r.state === 'complete' ? m.size : bytesOf(t.verified) + bytesOf(t.written)
    else {
      // per person: the device furthest on
      const perDevice = new Map(r.recipients.map(p => [p, r.done.includes(p) || r.state === 'complete' ? m.size : bytesOf(t.served.get(p) ?? new Set())]))
      const best = new Map<string, number>()
      for (const [d, b] of perDevice) { const a = r.accounts?.[d] ?? d; best.set(a, Math.max(best.get(a) ?? 0, b)) }
      const per = [...best.values()]
      bytes = per.length === 0 ? m.size : Math.round(per.reduce((a, b) => a + b, 0) / per.length)
    }
    const now = Date.now()
    const recent = t.samples.filter(([at]) => now - at <= 3000)
    const span = recent.length > 1 ? Math.max(250, now - (recent[0] as [number, number])[0]) : 0
    const speed = span > 0 && r.state === 'active' ? Math.round(recent.reduce((a, [, b]) => a + b, 0) * 1000 / span) : 0
    const left = m.size - bytes
    const peer = r.conv.startsWith('g:') ? r.conv : (r.direction === 'in' ? r.author : r.recipients[0] ?? '')
    return {
      id: this.key(r.direction, r.fileId),
      direction: r.direction,
      msgId: r.msgId,
      conv: r.conv,
      peer,
      name: r.direction === 'in' && r.path !== '' ? basename(r.path) : m.name,
      size: m.size,
      type: m.type,
      state: r.state,
      bytes,
      speed,
      etaS: speed > 0 ? Math.ceil(left / speed) : null,
      path: r.direction === 'in' && r.state === 'complete' ? r.path : null,
      ...(r.relay !== undefined ? { relay: r.relay } : {}),
      ...(t.note !== undefined && r.state === 'active' ? { note: t.note } : {}),
      ...(r.error !== undefined ? { error: r.error } : {}),
      rejected: r.rejected,
      ...(r.direction === 'out' ? { recipientsDone: peopleDone(r).done, recipientsTotal: peopleDone(r).total } : {})
    }
  }

  /** Emits the transfer's view: at once for a state change, else at most every EVENT_MS. */
  private changed (t: Live, now = false): void {
    if (now || Date.now() - t.lastEvent >= EVENT_MS) {
      clearTimeout(t.eventTimer)
      t.eventTimer = undefined
      t.lastEvent = Date.now()
      this.emit('transferChanged', this.view(t))
      return
    }
    if (t.eventTimer !== undefined) return
    t.eventTimer = setTimeout(() => { t.eventTimer = undefined; this.changed(t, true) }, EVENT_MS - (Date.now() - t.lastEvent))
    t.eventTimer.unref()
  }

  /** A file the UI uploaded (dropped, pasted, picked): kept in DATA/files/outgoing until sent. */
  async stagingPath (name: string): Promise<string> {
    const dir = join(this.c.dir, 'outgoing', b64(randomBytes(9)))
    await mkdir(dir, { recursive: true, mode: 0o700 })
    return join(dir, safeFileName(name))
  }
}

/** How many recipient accounts have the whole file (one of their devices said so), of how many. */
function peopleDone (r: TransferRecord): { done: number, total: number } {
  const accountOf = (d: string): string => r.accounts?.[d] ?? d
  const all = new Set(r.recipients.map(accountOf))
  const done = new Set(r.done.filter(d => r.recipients.includes(d)).map(accountOf))
  return { done: done.size, total: all.size }
}

async function readChunk (fh: FileHandle, m: Pick<FileManifest, 'size' | 'chunkSize'>, i: number): Promise<Uint8Array> {
  const len = chunkLength(m, i)
  const buf = Buffer.allocUnsafe(len)
  let off = 0
  while (off < len) {
    const { bytesRead } = await fh.read(buf, off, len - off, i * m.chunkSize + off)
    if (bytesRead === 0) throw new ParleyError('ERR_FILE_CHANGED', 'the file is shorter than when it was sent')
    off += bytesRead
  }
  return buf
}

async function walk (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await walk(p))
    else if (e.isFile()) out.push(p)
  }
  return out.sort()
}

/** `path`, or `name (1).ext`, `name (2).ext` … if taken. */
async function freeName (path: string): Promise<string> {
  const ext = extname(path)
  const stem = path.slice(0, path.length - ext.length)
  for (let n = 0; n < 1000; n++) {
    const p = n === 0 ? path : `${stem} (${n})${ext}`
    const taken = await stat(p).then(() => true, () => false)
    if (!taken) return p
  }
  return `${stem} (${Date.now()})${ext}`
}

const inside = (root: string, p: string): boolean => {
  const rel = relative(root, resolve(p))
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep) && !/^[a-zA-Z]:/.test(rel)
}

const TYPES: Record<string, string> = {
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp', '.pdf': 'application/pdf',
  '.txt': 'text/plain', '.zip': 'application/zip', '.docx': 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  '.xlsx': 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', '.mp4': 'video/mp4'
}
export const guessType = (name: string): string => TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream'

