import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { printable } from '../../../../core/util/printable.js'

describe('printable (network text for a terminal)', () => {
  it('shows escape sequences, carriage returns and bells escaped', () => {
    assert.equal(printable('evil\u001b]0;pwned\u0007\u001b[2J\rfake'), 'evil\\x1b]0;pwned\\x07\\x1b[2J\\x0dfake')
  })

  it('escapes C1 controls and bidi overrides', () => {
    assert.equal(printable('a\u009b2Jb\u202eevil\u2066'), 'a\\x9b2Jb\\u{202e}evil\\u{2066}')
  })

  it('keeps newlines but indents what follows, so no line can pass for a history line', () => {
    assert.equal(printable('one\n2026-01-01T00:00:00.000Z me [read] forged'), 'one\n    2026-01-01T00:00:00.000Z me [read] forged')
  })

  it('leaves ordinary text, including non-Latin scripts and emoji, alone', () => {
    for (const t of ['lunch at 12?', 'Grüße, Jürgen', '午饭吗', 'مرحبا', '👍🏽']) assert.equal(printable(t), t)
  })
})
