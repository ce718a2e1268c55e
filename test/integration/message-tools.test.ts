/**
 * Replies, edits and recalls between real nodes on loopback, through the local
 * API: the reply carries its quote, and an edit or recall (signed messages of
 * their own) reaches every member, also one that was offline and catches up
 * by sync, so every device shows the same thing. Per-recipient state.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { connect, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { MessageView, RecipientView } from '../../node/src/api/contract.js'

/** the node's own local API over 127.0.0.1, as the UI calls it */
async function call<T> (n: ParleyNode, method: string, path: string, body?: unknown): Promise<{ status: number, data: T }> {
  const token = new URLSearchParams((n.uiUrl as string).split('#')[1]).get('token') as string
  const res = await fetch(`http://127.0.0.1:${String(n.apiPort)}/v1${path}`, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body)
  })
  return { status: res.status, data: await res.json() as T }
}
const post = async (n: ParleyNode, body: Record<string, unknown>): Promise<MessageView> => {
  const r = await call<MessageView>(n, 'POST', '/messages', body)
  assert.equal(r.status, 201, JSON.stringify(r.data))
  return r.data
}
const shown = async (n: ParleyNode, conv: string): Promise<MessageView[]> => (await call<MessageView[]>(n, 'GET', `/conversations/${encodeURIComponent(conv)}/messages`)).data

describe('message tools: reply, edit, recall', () => {
  let dir: string
  let a: ParleyNode
  let b: ParleyNode
  let c: ParleyNode
  let group: string

  before(async () => {
    dir = await tmpDir('parley-tools-')
    a = loopbackNode(join(dir, 'a'), { name: 'Ana' })
    b = loopbackNode(join(dir, 'b'), { name: 'Ben' })
    c = loopbackNode(join(dir, 'c'), { name: 'Chen', changeWindows: { editMs: 1, recallMs: 1 } })
    for (const n of [a, b, c]) await n.start()
    await connect(a, b); await connect(a, c); await connect(b, c)
    group = (await a.messenger.createGroup('Team', [b.peerId, c.peerId])).conv
    await until(() => b.messenger.group(group) !== null && c.messenger.group(group) !== null, 'group known to all')
  })

  after(async () => {
    for (const n of [a, b, c]) await n?.stop()
    await removeDir(dir)
  })

  it('a reply carries a quote of the message it answers', async () => {
    const q = await post(a, { to: b.peerId, text: 'Lunch at noon?' })
    await until(async () => (await shown(b, a.peerId)).some(m => m.id === q.id), 'at Ben')
    const r = await post(b, { to: a.peerId, text: 'Yes!', reply: q.id })
    assert.deepEqual(r.reply, { id: q.id, author: a.peerId, text: 'Lunch at noon?' })
    const atAna = await until(async () => (await shown(a, b.peerId)).find(m => m.id === r.id), 'reply at Ana')
    assert.deepEqual(atAna.reply, { id: q.id, author: a.peerId, text: 'Lunch at noon?' })
    // a reply to a message of another conversation is refused
    assert.equal((await call(b, 'POST', '/messages', { to: group, text: 'x', reply: q.id })).status, 404)
  })

  it('an edit and then a recall reach every member, also one who was offline and caught up by sync', async () => {
    const m = await post(a, { to: group, text: 'Meeting at 3' })
    for (const n of [b, c]) await until(async () => (await shown(n, group)).some(x => x.id === m.id), 'at every member')
    // Chen goes away; the edit waits for him
    await c.stop()
    await post(a, { to: group, text: 'Meeting at 4', change: { type: 'edit', id: m.id } })
    await until(async () => (await shown(b, group)).find(x => x.id === m.id)?.text === 'Meeting at 4', 'edited at Ben')
    const atBen = (await shown(b, group)).find(x => x.id === m.id)
    assert.equal(typeof atBen?.editedAt, 'number')
    assert.equal((await shown(b, group)).filter(x => x.change !== undefined).length, 0, 'the edit itself is not shown')
    c = loopbackNode(join(dir, 'c'), { name: 'Chen', changeWindows: { editMs: 1, recallMs: 1 } })
    await c.start()
    await connect(a, c); await connect(b, c)
    await until(async () => (await shown(c, group)).find(x => x.id === m.id)?.text === 'Meeting at 4', 'edited at Chen after his return', 20_000, 100)
    // the recall is final, everywhere
    await post(a, { to: group, text: '', change: { type: 'recall', id: m.id } })
    for (const n of [a, b, c]) {
      await until(async () => (await shown(n, group)).find(x => x.id === m.id)?.recalled === true, `recalled at ${n.messenger.name}`)
      assert.equal((await shown(n, group)).find(x => x.id === m.id)?.text, '')
      // erased from the store, not only hidden: the original, its edit, and search
      await until(async () => (await n.messageStore.getMessage(m.id))?.text === '', `erased at ${n.messenger.name}`)
      assert.ok((await n.messageStore.history(group, { limit: 1000 })).every(x => !x.text.includes('Meeting at')), 'no edit keeps the text')
      assert.deepEqual((await call<unknown[]>(n, 'GET', '/search?q=Meeting%20at')).data, [])
    }
    const again = await call<{ code: string }>(a, 'POST', '/messages', { to: group, text: 'back', change: { type: 'edit', id: m.id } })
    assert.equal(again.status, 400)
  })

  it('only the author may change a message, within its window', async () => {
    const m = await post(a, { to: group, text: 'mine' })
    await until(async () => (await shown(b, group)).some(x => x.id === m.id), 'at Ben')
    const forged = await call<{ code: string, message: string }>(b, 'POST', '/messages', { to: group, text: 'not yours', change: { type: 'edit', id: m.id } })
    assert.equal(forged.status, 400)
    assert.match(forged.data.message, /only its author/)
    // Chen's node allows 1 ms: too late at once
    const own = await post(c, { to: group, text: 'quick' })
    await new Promise(resolve => setTimeout(resolve, 5))
    const late = await call<{ code: string, message: string, detail?: unknown }>(c, 'POST', '/messages', { to: group, text: 'too late', change: { type: 'edit', id: own.id } })
    assert.equal(late.status, 400)
    assert.match(late.data.message, /older than the time/)
    // the rule as data, for the UI's words (t.error.tooLate)
    assert.deepEqual(late.data.detail, { reason: 'too-late' })
    assert.equal((await call(a, 'POST', '/messages', { to: group, text: 'x', change: { type: 'recall', id: m.id } })).status, 400, 'a recall has no text')
  })

  it('presence: away (idle) and do not disturb reach the others; back to active', async () => {
    const statusAt = async (n: ParleyNode, of: ParleyNode): Promise<string | null | undefined> =>
      (await call<Array<{ peerId: string, status: string | null }>>(n, 'GET', '/peers')).data.find(p => p.peerId === of.peerId)?.status
    assert.equal(await statusAt(a, b), 'active')
    assert.equal((await call<{ status: string }>(b, 'PUT', '/presence', { away: true })).data.status, 'away')
    await until(async () => await statusAt(a, b) === 'away', 'Ana sees Ben away')
    await until(async () => await statusAt(c, b) === 'away', 'Chen sees Ben away')
    // do not disturb wins over away
    await call(b, 'PUT', '/settings', { ui: { dnd: true } })
    await until(async () => await statusAt(a, b) === 'dnd', 'Ana sees Ben busy')
    await call(b, 'PUT', '/settings', { ui: { dnd: false } })
    await call(b, 'PUT', '/presence', { away: false })
    await until(async () => await statusAt(a, b) === 'active', 'Ben is back')
    assert.equal((await call(b, 'PUT', '/presence', { away: 'maybe' })).status, 400)
  })

  it('message info: where a message is for each recipient', async () => {
    const m = await post(a, { to: group, text: 'who has it?' })
    await until(async () => {
      const r = (await call<RecipientView[]>(a, 'GET', `/messages/${m.id}/recipients`)).data
      return r.length === 2 && r.every(x => x.state === 'delivered' && x.via === 'lan')
    }, 'delivered to both, directly on the LAN')
    // one member has it shown: read by Ben, only delivered to Chen
    await call(b, 'POST', `/conversations/${encodeURIComponent(group)}/seen`)
    await until(async () => {
      const r = (await call<RecipientView[]>(a, 'GET', `/messages/${m.id}/recipients`)).data
      return r.find(x => x.peer === b.peerId)?.state === 'read' && r.find(x => x.peer === c.peerId)?.state === 'delivered'
    }, 'read by Ben, delivered to Chen')
    assert.deepEqual((await a.messageStore.getMessage(m.id))?.readBy, [b.peerId])
    // and how an incoming message came
    assert.equal((await b.messageStore.getMessage(m.id))?.via, 'lan')
    await b.stop()
    const q = await post(a, { to: group, text: 'Ben is away' })
    await until(async () => {
      const r = (await call<RecipientView[]>(a, 'GET', `/messages/${q.id}/recipients`)).data
      return r.find(x => x.peer === b.peerId)?.state === 'queued' && r.find(x => x.peer === c.peerId)?.state === 'delivered'
    }, 'queued for Ben, delivered to Chen')
  })

  it('the edit/recall windows given at start are what the node applies and tells the UI, and later starts keep them', async () => {
    const d = loopbackNode(join(dir, 'd'), { name: 'Dee', changeWindows: { editMs: 15 * 60_000 } })
    await d.start()
    try {
      assert.deepEqual((await call<{ changeWindows: unknown }>(d, 'GET', '/settings')).data.changeWindows, { editMs: 15 * 60_000, recallMs: 24 * 3600_000 })
    } finally { await d.stop() }
    // started again without the setting (as `parley start` without the flag): the stored one
    const again = loopbackNode(join(dir, 'd'), { changeWindows: { recallMs: 60_000 } })
    await again.start()
    try {
      assert.deepEqual((await call<{ changeWindows: unknown }>(again, 'GET', '/settings')).data.changeWindows, { editMs: 15 * 60_000, recallMs: 60_000 })
    } finally { await again.stop() }
    const third = loopbackNode(join(dir, 'd'))
    await third.start()
    try {
      assert.deepEqual((await call<{ changeWindows: unknown }>(third, 'GET', '/settings')).data.changeWindows, { editMs: 15 * 60_000, recallMs: 60_000 })
    } finally { await third.stop() }
  })
})
