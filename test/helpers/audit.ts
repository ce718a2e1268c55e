/**
 * The figure every delivery test reports: lost, duplicated, order violations,
 * comparing what a receiver shows against what a sender had acknowledged.
 */
import type { MessageView } from '../../node/src/api/contract.js'

export interface Audit { expected: number, received: number, lost: number, duplicated: number, orderViolations: number }

/** `expected` in send order; `history` as the receiver displays it. */
export function audit (expected: string[], history: MessageView[], author: string): Audit {
  const shown = history.filter(m => m.author === author).map(m => m.text)
  const want = new Set(expected)
  const seen = new Map<string, number>()
  for (const t of shown) seen.set(t, (seen.get(t) ?? 0) + 1)
  const lost = expected.filter(t => !seen.has(t)).length
  const duplicated = [...seen.values()].reduce((n, c) => n + c - 1, 0)
  const position = new Map(expected.map((t, i) => [t, i]))
  let orderViolations = 0
  let last = -1
  for (const t of shown) {
    const p = position.get(t)
    if (p === undefined) continue
    if (p < last) orderViolations++
    last = Math.max(last, p)
  }
  return { expected: expected.length, received: shown.filter(t => want.has(t)).length, lost, duplicated, orderViolations }
}

export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))] as number
}
