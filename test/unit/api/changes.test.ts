import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_EDIT_WINDOW_MS, changeRefusal, foldChanges, type Changeable } from '../../../node/src/api/changes.js'

const msg = (id: string, w: number, over: Partial<Changeable> = {}): Changeable => ({ id, conv: 'dm:a:b', author: 'a', hlc: { w, c: 0 }, text: `text ${id}`, ...over })
const edit = (id: string, target: string, w: number, text: string, over: Partial<Changeable> = {}): Changeable => msg(id, w, { text, change: { type: 'edit', id: target }, ...over })
const recall = (id: string, target: string, w: number, over: Partial<Changeable> = {}): Changeable => msg(id, w, { text: '', change: { type: 'recall', id: target }, ...over })

describe('edits and recalls', () => {
  it('the last edit by HLC wins, whatever order the changes arrived in', () => {
    const all = [msg('m1', 1000), edit('e2', 'm1', 3000, 'second'), edit('e1', 'm1', 2000, 'first'), msg('m2', 1500)]
    for (const input of [all, [...all].reverse(), [all[2], all[0], all[3], all[1]] as Changeable[]]) {
      const shown = foldChanges(input)
      assert.deepEqual(shown.map(m => m.id).sort(), ['m1', 'm2'])
      const m1 = shown.find(m => m.id === 'm1')
      assert.equal(m1?.text, 'second')
      assert.equal(m1?.editedAt, 3000)
    }
  })

  it('a recall is final and removes the text; an edit after it changes nothing', () => {
    const shown = foldChanges([msg('m1', 1000), recall('r1', 'm1', 2000), edit('e1', 'm1', 3000, 'sneaky')])
    assert.deepEqual(shown, [{ ...msg('m1', 1000), text: '', recalled: true }])
  })

  it('an edit that arrives after a newer one changes nothing', () => {
    const shown = foldChanges([{ ...msg('m1', 1000), text: 'newer', editedAt: 3000 }, edit('e1', 'm1', 2000, 'older')])
    assert.equal(shown[0]?.text, 'newer')
  })

  it('the sender may change only its own text messages, within the window', () => {
    const m1 = msg('m1', 1000)
    assert.equal(changeRefusal(m1, 'a', { type: 'edit', id: 'm1' }, 1000 + DEFAULT_EDIT_WINDOW_MS), null)
    assert.equal(changeRefusal(m1, 'a', { type: 'edit', id: 'm1' }, 1000 + DEFAULT_EDIT_WINDOW_MS + 1), 'too-late')
    assert.equal(changeRefusal(m1, 'a', { type: 'recall', id: 'm1' }, 5000, { editMs: 10_000, recallMs: 1000 }), 'too-late')
    assert.equal(changeRefusal(m1, 'b', { type: 'edit', id: 'm1' }, 2000), 'not-yours')
    assert.equal(changeRefusal(undefined, 'a', { type: 'edit', id: 'm1' }, 2000), 'unknown')
    assert.equal(changeRefusal({ ...m1, recalled: true }, 'a', { type: 'edit', id: 'm1' }, 2000), 'not-changeable')
  })

  it('only the author, in the same conversation; never a group op or another change', () => {
    const m1 = msg('m1', 1000)
    assert.equal(foldChanges([m1, edit('x', 'm1', 2000, 'forged', { author: 'b' })])[0]?.text, 'text m1')
    assert.equal(foldChanges([m1, edit('x', 'm1', 2000, 'elsewhere', { conv: 'dm:a:c' })])[0]?.text, 'text m1')
    const op = msg('o1', 1000, { op: { type: 'rename' } })
    assert.equal(foldChanges([op, edit('x', 'o1', 2000, 'no')])[0]?.text, 'text o1')
    // a change of a change is ignored, and the change messages never show
    assert.deepEqual(foldChanges([m1, edit('e1', 'm1', 2000, 'one'), edit('e2', 'e1', 3000, 'two')]).map(m => m.text), ['one'])
    // a target older than the page: nothing shown for it
    assert.deepEqual(foldChanges([edit('e1', 'gone', 2000, 'one')]), [])
  })

  it('per account (issue 11): the author\'s other device may edit and recall, another account may not', () => {
    // devices a1 and a2 are account a's; b is another person's
    const accountOf = (d: string): string => d.startsWith('a') ? 'a' : d
    const m1 = msg('m1', 1000, { author: 'a1' })
    assert.equal(foldChanges([m1, edit('e1', 'm1', 2000, 'from the laptop', { author: 'a2' })], accountOf)[0]?.text, 'from the laptop')
    assert.equal(foldChanges([m1, recall('r1', 'm1', 2000, { author: 'a2' })], accountOf)[0]?.recalled, true)
    assert.equal(foldChanges([m1, edit('x', 'm1', 2000, 'forged', { author: 'b' })], accountOf)[0]?.text, 'text m1')
    // without the account map a device is a person of its own
    assert.equal(foldChanges([m1, edit('e1', 'm1', 2000, 'from the laptop', { author: 'a2' })])[0]?.text, 'text m1')
    assert.equal(changeRefusal(m1, 'a2', { type: 'recall', id: 'm1' }, 2000, undefined, accountOf), null)
    assert.equal(changeRefusal(m1, 'a', { type: 'edit', id: 'm1' }, 2000, undefined, accountOf), null)
    assert.equal(changeRefusal(m1, 'b', { type: 'edit', id: 'm1' }, 2000, undefined, accountOf), 'not-yours')
  })
})
