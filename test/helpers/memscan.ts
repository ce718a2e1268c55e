/**
 * Does a running process's memory hold a string? Reads every writable
 * anonymous mapping (the heaps) of /proc/PID/mem (root, or the same user with ptrace allowed) and
 * looks for its UTF-8 and UTF-16LE bytes (V8 keeps strings in either). For
 * "the relay never holds plaintext" checks: the caller proves the scan works
 * with a string the process does hold (its peer ID).
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs'

const CHUNK = 16 * 1024 * 1024

/** For each of `needles`: does process `pid`'s memory hold it? (one pass over the memory) */
export function memoryHolds (pid: number, needles: string[]): boolean[] {
  const found = needles.map(() => false)
  const patterns = needles.map(n => [Buffer.from(n, 'utf8'), Buffer.from(n, 'utf16le')])
  const overlap = Math.max(...patterns.flat().map(p => p.length))
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter(Boolean)
  const fd = openSync(`/proc/${pid}/mem`, 'r')
  try {
    for (const line of maps) {
      const [range, perms, , , , path] = line.split(/\s+/)
      // the heap (V8's and malloc's): readable, writable, not backed by a file (code and libraries hold no message)
      if (perms?.[0] !== 'r' || perms[1] !== 'w' || (path !== undefined && path !== '' && path !== '[heap]' && !path.startsWith('[anon'))) continue
      const [from, to] = range!.split('-').map(h => parseInt(h, 16)) as [number, number]
      const buf = Buffer.alloc(CHUNK + overlap)
      for (let at = from; at < to; at += CHUNK) {
        const len = Math.min(CHUNK + overlap, to - at)
        let n = 0
        try { n = readSync(fd, buf, 0, len, at) } catch { break }
        const view = buf.subarray(0, n)
        patterns.forEach((ps, i) => { if (!found[i]! && ps.some(p => view.includes(p))) found[i] = true })
        if (found.every(Boolean)) return found
      }
    }
    return found
  } finally {
    closeSync(fd)
  }
}
