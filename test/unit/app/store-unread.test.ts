/**
 * Issue 16, the "new messages" divider (review s4-16-17b): with more unread
 * messages than one page (PAGE), opening the chat pages back until the first
 * unread one is in, and the divider goes right above it; the older ones that
 * were seen stay above the divider. The API here is a fake that pages as the
 * node does (`limit` messages shown, `before` cursor, edits of older ones along).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { PAGE, Store } from '../../../app/ui/src/store.js'
import { parseHistoryCursor, type MessageView } from '../../../node/src/api/contract.js'
import type { ApiClient, HistoryOptions } from '../../../app/ui/src/api.js'

// the store asks whether the window is hidden (seen marks)
;(globalThis as { document?: unknown }).document ??= { hidden: false }

const ME = '12D3KooWAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
const BEN = '12D3KooWCccccccccccccccccccccccccccccccccccccccccccc'
const DM = `dm:${ME}:${BEN}`

const message = (i: number, over: Partial<MessageView> = {}): MessageView => ({
  id: `m${String(i).padStart(5, '0')}`, conv: DM, author: BEN, seq: i + 1, hlc: { w: 1000 + i, c: 0 }, text: `history ${i}`, outgoing: false, state: 'received', storedAt: 1000 + i, ...over
} as MessageView)

/** a store whose node holds `history` (oldest first) for Ben's chat, `unread` of it unread; `calls`: each history call's options */
function storeWith (history: MessageView[], unread: number): { store: Store, calls: HistoryOptions[] } {
  const calls: HistoryOptions[] = []
  const api = new Proxy({
    history: async (_conv: string, o: HistoryOptions = {}) => {
      calls.push(o)
      const at = o.before === undefined ? null : parseHistoryCursor(o.before)
      const before = at === null ? history : history.filter(m => m.hlc.w < at.hlc.w || (m.hlc.w === at.hlc.w && m.id < at.id))
      // as the node answers: `limit` messages shown, and the edits (of older messages) among them
      const shown = before.filter(m => m.change === undefined)
      const page = shown.slice(Math.max(0, shown.length - (o.limit ?? PAGE)))
      const from = page[0]?.hlc.w ?? Infinity
      return [...page, ...before.filter(m => m.change !== undefined && m.hlc.w > from && !page.some(x => x.id === m.change?.id))]
    }
  }, { get: (t, k) => (t as Record<PropertyKey, unknown>)[k] ?? (async () => []) }) as unknown as ApiClient
  const store = new Store(api)
  store.state = {
    ...store.state,
    me: { peerId: ME, name: 'Ana', addresses: [] },
    link: 'up',
    convs: new Map([[BEN, { peer: BEN, unread, last: history.at(-1) ?? null, lastAt: 0 }]])
  }
  return { store, calls }
}

const seen = (n: number): MessageView[] => Array.from({ length: n }, (_, i) => message(i, { state: 'seen' }))
const received = (from: number, n: number): MessageView[] => Array.from({ length: n }, (_, i) => message(from + i))

describe('the "new messages" divider with more unread than one page', () => {
  it('150 unread after 20 seen: opening pages back (page by page) and the divider sits above the first unread one', async () => {
    const { store, calls } = storeWith([...seen(20), ...received(20, 150)], 150)
    await store.open(BEN)
    const { messages, unreadFrom } = store.state
    assert.equal(unreadFrom, message(20).id, 'right above the oldest unread message')
    const at = messages.findIndex(m => m.id === unreadFrom)
    assert.ok(messages.slice(0, at).every(m => m.state === 'seen'), 'everything above it was seen')
    assert.equal(messages.slice(at).length, 150, 'every unread one below it')
    assert.deepEqual(calls.map(o => o.limit), [PAGE, PAGE], 'the newest page, then one page before it')
    assert.equal(calls[0]?.before, undefined)
    assert.equal(calls[1]?.before, `${1000 + 70}.0.${message(70).id}`)
  })

  it('fewer unread than a page: one call, the divider above the first unread one', async () => {
    const { store, calls } = storeWith([...seen(150), ...received(150, 30)], 30)
    await store.open(BEN)
    assert.equal(store.state.unreadFrom, message(150).id)
    assert.equal(calls.length, 1)
    assert.equal(store.state.hasOlder, true)
  })

  it('the count holds edits too (no message of their own): the divider is still above the first unseen one, never a seen one', async () => {
    const edits = [0, 1, 2].map(k => message(300 + k, { id: `e${k}`, change: { type: 'edit', id: message(10 + k).id }, text: `edited ${k}` }))
    // 200 seen, then 120 unread messages and 3 edits of seen ones (the count says 123)
    const { store, calls } = storeWith([...seen(200), ...received(200, 100), ...edits, ...received(303, 20)], 123)
    await store.open(BEN)
    assert.equal(store.state.unreadFrom, message(200).id)
    assert.equal(calls.length, 2, 'paging stops once a seen message is in')
    assert.equal(store.state.messages.find(m => m.id === message(10).id), undefined, 'the edited seen ones are older than what was loaded')
  })

  it('paging is bounded: with thousands unread it stops after about 2000 messages, the divider above the oldest one loaded', async () => {
    const { store, calls } = storeWith(received(0, 2600), 2600)
    await store.open(BEN)
    const n = store.state.messages.length
    assert.ok(n >= 2000 && n < 2000 + PAGE, `${n} loaded`)
    assert.equal(store.state.unreadFrom, store.state.messages[0]?.id)
    assert.equal(calls.length, n / PAGE)
    assert.equal(store.state.hasOlder, true, 'the rest loads on scroll')
  })
})
