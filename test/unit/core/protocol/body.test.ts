import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_QUOTE_CHARS, MAX_TEXT_CHARS, bodyFields, parseBody } from '../../../../core/protocol/envelope.js'
import { ParleyError } from '../../../../core/errors.js'
import { PEER_A } from '../../helpers/peer-ids.js'

const invalid = (err: unknown): boolean => err instanceof ParleyError && err.code === 'ERR_INVALID_ENVELOPE'
const ID = 'AAAAAAAAAAAAAAAAAAAAAA'

describe('message body: replies, edits and recalls', () => {
  it('keeps a reply quote and a change, and nothing else', () => {
    const reply = { id: ID, author: PEER_A, text: 'Lunch at noon?' }
    assert.deepEqual(parseBody({ text: 'yes', reply, extra: 1 }), { text: 'yes', reply })
    assert.deepEqual(parseBody({ text: 'fixed', change: { type: 'edit', id: ID } }), { text: 'fixed', change: { type: 'edit', id: ID } })
    assert.deepEqual(parseBody({ text: '', change: { type: 'recall', id: ID } }), { text: '', change: { type: 'recall', id: ID } })
    assert.deepEqual(bodyFields({ text: 'x', reply }), { reply })
  })

  it('refuses malformed ones', () => {
    const cases: unknown[] = [
      { text: '', change: { type: 'edit', id: ID } },
      { text: 'not empty', change: { type: 'recall', id: ID } },
      { text: 'x', change: { type: 'delete', id: ID } },
      { text: 'x', change: { type: 'edit', id: 'short' } },
      { text: 'x', reply: { id: ID, author: 'nobody', text: '' } },
      { text: 'x', reply: { id: ID, author: PEER_A, text: 'q'.repeat(MAX_QUOTE_CHARS * 2 + 1) } },
      { text: 'x', reply: { id: ID, author: PEER_A, text: '' }, change: { type: 'edit', id: ID } },
      { text: 'x'.repeat(MAX_TEXT_CHARS + 1) }
    ]
    for (const c of cases) assert.throws(() => parseBody(c), invalid, JSON.stringify(c).slice(0, 80))
  })
})
