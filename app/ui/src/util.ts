/** Small pure helpers of the views. */

export const isGroup = (id: string | null | undefined): id is `g:${string}` => typeof id === 'string' && id.startsWith('g:')

/** "12D3KooWAbcd…xyz123": a peer nobody named yet */
export const shortId = (peerId: string): string => `${peerId.slice(0, 8)}…${peerId.slice(-6)}`

/** one or two letters for an avatar: initials of a Latin name, the first character of a Chinese one */
export function initials (name: string): string {
  const words = name.trim().split(/\s+/).filter(w => w !== '')
  if (words.length === 0) return '?'
  const first = [...(words[0] as string)][0] ?? '?'
  if (/\p{Script=Han}/u.test(first)) return first
  const second = words.length > 1 ? [...(words[words.length - 1] as string)][0] ?? '' : ''
  return (first + second).toLocaleUpperCase()
}

/** one of AVATAR_COLOURS classes, stable for an id */
export const AVATAR_COLOURS = 8
export function colourOf (id: string): number {
  let h = 0
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0
  return h % AVATAR_COLOURS
}

export type Piece =
  | { kind: 'text', text: string } | { kind: 'link', text: string, href: string }
  | { kind: 'mention', text: string, me: boolean } | { kind: 'mark', text: string }

const LINK = /\bhttps?:\/\/[^\s<>"'）)】」。，；：！？、]+[^\s<>"'）)】」.,;:!?，。；：！？、]/giu

/** Splits a message into text, http(s) links, and the marked search `needle` (case-insensitive). */
export function pieces (text: string, needle = ''): Piece[] {
  const out: Piece[] = []
  let at = 0
  for (const m of text.matchAll(LINK)) {
    const start = m.index ?? 0
    if (start > at) out.push(...marked(text.slice(at, start), needle))
    let href: string | null = null
    try { href = new URL(m[0]).href } catch {}
    out.push(href === null ? { kind: 'text', text: m[0] } : { kind: 'link', text: m[0], href })
    at = start + m[0].length
  }
  if (at < text.length) out.push(...marked(text.slice(at), needle))
  return out
}

function marked (text: string, needle: string): Piece[] {
  if (needle === '') return [{ kind: 'text', text }]
  const out: Piece[] = []
  const low = text.toLocaleLowerCase()
  const n = needle.toLocaleLowerCase()
  let at = 0
  for (let i = low.indexOf(n); i >= 0; i = low.indexOf(n, at)) {
    if (i > at) out.push({ kind: 'text', text: text.slice(at, i) })
    out.push({ kind: 'mark', text: text.slice(i, i + n.length) })
    at = i + n.length
  }
  if (at < text.length) out.push({ kind: 'text', text: text.slice(at) })
  return out
}

/** a mention ends where the name does: no letter, digit or combining mark follows (the composer puts a space after it) */
const MENTION_END = '(?![\\p{L}\\p{N}\\p{M}])'
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** Marks "@Name" for each of `names` (longest first) in text pieces; `mine` is the reader's own name. */
export function mentions (list: Piece[], names: string[], mine: string): Piece[] {
  const sorted = [...new Set(names.filter(n => n !== ''))].sort((a, b) => b.length - a.length)
  if (sorted.length === 0) return list
  const re = new RegExp(`@(?:${sorted.map(escapeRe).join('|')})${MENTION_END}`, 'gu')
  return list.flatMap((p): Piece[] => {
    if (p.kind !== 'text') return [p]
    const out: Piece[] = []
    let at = 0
    for (const m of p.text.matchAll(re)) {
      const i = m.index ?? 0
      if (i > at) out.push({ kind: 'text', text: p.text.slice(at, i) })
      out.push({ kind: 'mention', text: m[0], me: m[0].slice(1) === mine })
      at = i + m[0].length
    }
    if (at < p.text.length) out.push({ kind: 'text', text: p.text.slice(at) })
    return out
  })
}

/** true when `text` mentions `name` as "@name", not as the start of a longer name ("@Ana" is not in "@Anastasia") */
export const mentionsName = (text: string, name: string): boolean => name !== '' && new RegExp(`@${escapeRe(name)}${MENTION_END}`, 'u').test(text)

/** a message longer than this (characters or lines) is shown collapsed with "show more" */
export const COLLAPSE_CHARS = 700
export const COLLAPSE_LINES = 12
export const isLong = (text: string): boolean => text.length > COLLAPSE_CHARS || text.split('\n').length > COLLAPSE_LINES

/** local midnight of `ms`, to group messages by day */
export const dayOf = (ms: number): number => { const d = new Date(ms); d.setHours(0, 0, 0, 0); return d.getTime() }
