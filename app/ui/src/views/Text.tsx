/** Message text as text nodes (never HTML): links, @mentions and search marks as elements around plain text. */
import { mentions, pieces, type Piece } from '../util.js'

function render (list: Piece[]) {
  return list.map((p, i) => {
    switch (p.kind) {
      // a link opens outside the app: a new browser tab, or the system browser from Electron (never this window)
      case 'link': return <a key={i} href={p.href} target="_blank" rel="noopener noreferrer">{p.text}</a>
      case 'mention': return <span key={i} class={p.me ? 'mention to-me' : 'mention'}>{p.text}</span>
      case 'mark': return <mark key={i}>{p.text}</mark>
      default: return p.text
    }
  })
}

export function Highlighted ({ text, needle }: { text: string, needle: string }) {
  return <>{render(pieces(text, needle).map(p => p.kind === 'link' ? { kind: 'text', text: p.text } : p))}</>
}

export function MessageText ({ text, needle, names, myName }: { text: string, needle: string, names: string[], myName: string }) {
  return <>{render(mentions(pieces(text, needle), names, myName))}</>
}
