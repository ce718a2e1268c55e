/**
 * The file manifest: what a file message carries inside its sealed envelope
 * body (name, size, type, chunk size, every chunk's hash, the content key and
 * an optional thumbnail), and the rules a receiver applies to it: bounds on
 * every field and a safe local name for whatever name the sender chose.
 * The chunks themselves travel on FILE_PROTOCOL (file-wire.ts), encrypted
 * with the content key (file-chunks.ts).
 */
import { ParleyError } from '../errors.js'
import { B64URL, Checker } from './validate.js'

/** a file id: 16 random bytes, base64url (like a message id) */
export const FILE_ID = /^[A-Za-z0-9_-]{22}$/
/** SHA-256 */
export const CHUNK_HASH_BYTES = 32
/** chunks of a file: at most this many, so every hash fits in one envelope (1024 × 32 bytes = 43 700 base64url characters) */
export const MAX_CHUNKS = 1024
/** the smallest chunk (and the chunk of every file up to 1 GiB). @default 1 MiB */
export const MIN_CHUNK_BYTES = 1024 * 1024
/** the largest chunk: with MAX_CHUNKS, the largest file the format carries (16 GiB). @default 16 MiB */
export const MAX_CHUNK_BYTES = 16 * 1024 * 1024
export const MAX_FORMAT_FILE_BYTES = MAX_CHUNKS * MAX_CHUNK_BYTES
/** the default limit of what a node sends and accepts (configurable up to the format's 16 GiB). @default 4 GiB */
export const DEFAULT_MAX_FILE_BYTES = 4 * 1024 ** 3
/** a thumbnail (a small JPEG or PNG made by the sender), base64url. @default 24 000 characters (~18 KB) */
export const MAX_THUMB_CHARS = 24_000
/** the name as the sender gave it; the receiver makes its own safe one (safeFileName) */
export const MAX_SENT_NAME_CHARS = 1024
/** a relative path inside a folder that was sent (dir/sub), before it is made safe */
export const MAX_SENT_DIR_CHARS = 4096
export const MAX_MIME_CHARS = 127

export interface FileManifest {
  v: 1
  /** random id of this file; chunks are asked for by it */
  id: string
  /** the sender's name for it (never used as it is: see safeFileName) */
  name: string
  /** folder sent: the file's folder inside it, '/'-separated (made safe part by part) */
  dir?: string
  size: number
  /** media type as the sender saw it (shown; never decides how the file is opened) */
  type: string
  /** bytes of plaintext per chunk; the last chunk holds the rest */
  chunkSize: number
  /** SHA-256 of each encrypted chunk, concatenated, base64url */
  hashes: string
  /** AES-256-GCM content key, base64url (32 bytes) */
  key: string
  /** an image's thumbnail, made by the sender: `data:image/jpeg;base64,…` is built from these two */
  thumb?: { type: 'image/jpeg' | 'image/png' | 'image/webp', data: string, w: number, h: number }
}

/** The chunk size for a file of `size` bytes: 1 MiB, doubled until the file fits in MAX_CHUNKS chunks. */
export function chunkSizeFor (size: number): number {
  let c = MIN_CHUNK_BYTES
  while (c * MAX_CHUNKS < size && c < MAX_CHUNK_BYTES) c *= 2
  if (c * MAX_CHUNKS < size) throw new ParleyError('ERR_FILE_TOO_LARGE', `a file may be at most ${MAX_FORMAT_FILE_BYTES} bytes`)
  return c
}

export const chunkCount = (size: number, chunkSize: number): number => Math.max(1, Math.ceil(size / chunkSize))
/** plaintext bytes of chunk `i` */
export const chunkLength = (m: Pick<FileManifest, 'size' | 'chunkSize'>, i: number): number => Math.max(0, Math.min(m.chunkSize, m.size - i * m.chunkSize))

/** The hash of chunk `i`, out of the manifest's concatenated hashes. */
export function chunkHash (hashes: Uint8Array, i: number): Uint8Array {
  return hashes.subarray(i * CHUNK_HASH_BYTES, (i + 1) * CHUNK_HASH_BYTES)
}

const B64_KEY = /^[A-Za-z0-9_-]{43}$/

/** Checks a manifest from the network: every field bounded, the hashes matching the chunk count. */
export function parseFileManifest (value: unknown, maxFileBytes = MAX_FORMAT_FILE_BYTES): FileManifest {
  const c = new Checker('ERR_INVALID_ENVELOPE', 'file')
  const o = c.obj(value, 'file')
  c.literal(o, 'v', [1])
  const size = c.int(o, 'size', { min: 0, max: maxFileBytes })
  const chunkSize = c.int(o, 'chunkSize', { min: MIN_CHUNK_BYTES, max: MAX_CHUNK_BYTES })
  if ((chunkSize & (chunkSize - 1)) !== 0) c.fail('chunkSize must be a power of two')
  const n = chunkCount(size, chunkSize)
  if (n > MAX_CHUNKS) c.fail(`more than ${MAX_CHUNKS} chunks`)
  const hashes = c.str(o, 'hashes', { min: 1, max: Math.ceil(MAX_CHUNKS * CHUNK_HASH_BYTES * 4 / 3), pattern: B64URL })
  if (Buffer.from(hashes, 'base64url').byteLength !== n * CHUNK_HASH_BYTES) c.fail(`hashes must hold ${n} SHA-256 hashes`)
  const m: FileManifest = {
    v: 1,
    id: c.str(o, 'id', { max: 22, pattern: FILE_ID }),
    name: c.str(o, 'name', { min: 0, max: MAX_SENT_NAME_CHARS }),
    size,
    type: c.str(o, 'type', { min: 0, max: MAX_MIME_CHARS }),
    chunkSize,
    hashes,
    key: c.str(o, 'key', { max: 43, pattern: B64_KEY })
  }
  if (o.dir !== undefined) m.dir = c.str(o, 'dir', { min: 0, max: MAX_SENT_DIR_CHARS })
  if (o.thumb !== undefined) {
    const t = c.obj(o.thumb, 'thumb')
    m.thumb = {
      type: c.literal(t, 'type', ['image/jpeg', 'image/png', 'image/webp']),
      data: c.str(t, 'data', { max: MAX_THUMB_CHARS, pattern: /^[A-Za-z0-9+/_=-]*$/ }),
      w: c.int(t, 'w', { min: 1, max: 1024 }),
      h: c.int(t, 'h', { min: 1, max: 1024 })
    }
  }
  return m
}

// ---- safe names on receipt ------------------------------------------------

/** the longest name we write, in UTF-8 bytes (most file systems allow 255; room for " (999)" and ".part") */
export const MAX_SAFE_NAME_BYTES = 200
/** names Windows reserves for devices, with any extension (CON.txt is CON too) */
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$/i
// C0, DEL, C1, the bidi overrides and isolates, zero-width and BOM, line/paragraph separators
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g
/** reserved on Windows (and '/' everywhere); a name with them is still kept readable */
const SEPARATORS_AND_RESERVED = /[/\\:*?"<>|]/g

/** Cuts `s` to at most `max` UTF-8 bytes without splitting a character. */
function cutBytes (s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s
  let out = ''
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > max) break
    out += ch
  }
  return out
}

/**
 * A name we may create in the downloads folder, whatever the sender wrote:
 * never a path (separators replaced, so `../x` and `/etc/passwd` stay inside),
 * no control or direction characters, not `.`/`..` or hidden, no Windows
 * device name (CON, NUL, COM1, …), no trailing dot or space (Windows drops
 * them), at most MAX_SAFE_NAME_BYTES bytes with the extension kept. An empty
 * result becomes `file`.
 */
export function safeFileName (sent: string): string {
  let name = sent.normalize('NFC').replace(UNSAFE_CHARS, '').replace(SEPARATORS_AND_RESERVED, '_').trim()
  // no hidden files and no "." / "..": leading dots go
  name = name.replace(/^\.+/, '')
  // Windows drops trailing dots and spaces (so "CON." would be CON)
  name = name.replace(/[. ]+$/, '')
  if (name === '') name = 'file'
  if (WINDOWS_RESERVED.test(name)) name = `_${name}`
  if (Buffer.byteLength(name) > MAX_SAFE_NAME_BYTES) {
    const dot = name.lastIndexOf('.')
    const ext = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : ''
    name = cutBytes(name.slice(0, name.length - ext.length), MAX_SAFE_NAME_BYTES - Buffer.byteLength(ext)).replace(/[. ]+$/, '') + ext
    if (name === ext) name = 'file' + ext
  }
  return name
}

/** A sent folder path made safe part by part ('' for none); empty parts, '.' and '..' are dropped. At most 16 levels. */
export function safeRelativeDir (dir: string | undefined): string[] {
  if (dir === undefined) return []
  return dir.split(/[/\\]+/).filter(p => p !== '' && p !== '.' && p !== '..').slice(0, 16).map(safeFileName)
}
