/**
 * Older history by cursor: `GET /conversations/:ref/messages?before=<cursor>` pages back through a
 * conversation a page at a time (each page new messages only, no cap), and `changes=1` hands over the
 * edits and recalls of messages older than the page, so a client folding them into the older pages
 * shows what the whole history shows. Two nodes on loopback (port 0).
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { connect, loopbackNode, removeDir, tmpDir } from '../../helpers/nodes.js'
import type { ParleyNode } from '../../../node/src/parley-node.js'
import { foldChanges, historyCursor, parseHistoryCursor, type MessageView } from '../../../node/src/api/contract.js'

async function call<T> (n: ParleyNode, method: string, path: string, body?: unknown): Promise<{ status: number, data: T }> {
  const token = new URLSearchParams((n.uiUrl as string).split('#')[1]).get('token') as string
  const res = await fetch(`http://127.0.0.1:${String(n.apiPort)}/v1${path}`, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body)
  })
  return { status: res.status, data: await res.json() as T }
}

describe('history pages by cursor', () => {
  let dir: string
  let a: ParleyNode
  let b: ParleyNode
  const N = 260
  const page = async (q: string): Promise<MessageView[]> => {
    const r = await call<MessageView[]>(a, 'GET', `/conversations/${b.peerId}/messages?${q}`)
    assert.equal(r.status, 200, JSON.stringify(r.data))
    return r.data
  }

  before(async () => {
    dir = await tmpDir('parley-cursor-')
    a = loopbackNode(join(dir, 'a'), { name: 'Ana' })
    b = loopbackNode(join(dir, 'b'), { name: 'Ben' })
    await a.start(); await b.start()
    await connect(a, b)
    const sent: MessageView[] = []
    for (let i = 0; i < N; i++) sent.push(await a.messenger.sendMessage(b.peerId, `m ${i}`))
    // an edit of an old message (in the oldest page) and a recall of another, both newest in the conversation
    const edit = await call<MessageView>(a, 'POST', '/messages', { to: b.peerId, text: 'm 5 (edited)', change: { type: 'edit', id: sent[5]?.id } })
    assert.equal(edit.status, 201, JSON.stringify(edit.data))
    const recall = await call<MessageView>(a, 'POST', '/messages', { to: b.peerId, text: '', change: { type: 'recall', id: sent[7]?.id } })
    assert.equal(recall.status, 201, JSON.stringify(recall.data))
  })

  after(async () => {
    await a?.stop(); await b?.stop()
    await removeDir(dir)
  })

  it('a cursor round-trips, and anything else is refused with 400', async () => {
    const c = historyCursor({ hlc: { w: 1764600000000, c: 3 }, id: 'AbC_d-1234567890123456' })
    assert.deepEqual(parseHistoryCursor(c), { hlc: { w: 1764600000000, c: 3 }, id: 'AbC_d-1234567890123456' })
    for (const bad of ['', 'x', '1.2', '1.2.', '-1.2.abc', '1.2.a b', '99999999999999999.1.a']) assert.equal(parseHistoryCursor(bad), null, bad)
    const r = await call<{ code: string }>(a, 'GET', `/conversations/${b.peerId}/messages?before=nope`)
    assert.equal(r.status, 400)
    assert.equal(r.data.code, 'ERR_INVALID_ARGUMENT')
    assert.equal((await call(a, 'GET', `/conversations/${b.peerId}/messages?changes=yes`)).status, 400)
  })

  it('pages back 100 at a time: each page holds only older messages, and together they are the whole history', async () => {
    const pages: MessageView[][] = []
    let q = 'limit=100&changes=1'
    for (let i = 0; i < 10; i++) {
      const p = await page(q)
      pages.push(p)
      const shown = p.filter(m => m.change === undefined)
      if (shown.length < 100) break
      q = `limit=100&changes=1&before=${encodeURIComponent(historyCursor(shown[0] as MessageView))}`
    }
    const shownPages = pages.map(p => p.filter(m => m.change === undefined))
    assert.deepEqual(shownPages.map(p => p.length), [100, 100, 60], 'constant page size, no refetch')
    // each page ends before the next newer one begins
    const all = shownPages.reverse().flat()
    assert.deepEqual(all.map(m => m.text === '' ? m.text : m.text.replace(' (edited)', '')), Array.from({ length: N }, (_, i) => i === 7 ? '' : `m ${i}`))
    assert.equal(new Set(all.map(m => m.id)).size, N, 'no message twice')
    // the newest page hands over the edit and the recall of older messages; folded in, the old page shows them
    const changes = (pages[0] ?? []).filter(m => m.change !== undefined)
    assert.deepEqual(changes.map(m => m.change?.type).sort(), ['edit', 'recall'])
    const oldest = foldChanges([...(shownPages[0] ?? []), ...changes])
    assert.equal(oldest[5]?.text, 'm 5 (edited)')
    assert.ok(oldest[5]?.editedAt !== undefined)
    assert.equal(oldest[7]?.recalled, true)
    // the same as the whole history in one call
    const whole = await page(`limit=${N}`)
    assert.deepEqual(foldChanges([...all, ...changes]).map(m => [m.id, m.text]), whole.map(m => [m.id, m.text]))
  })

  it('without changes=1 nothing but shown messages comes; search pages by cursor too', async () => {
    assert.equal((await page('limit=300')).filter(m => m.change !== undefined).length, 0)
    const hits = await page('limit=5&search=m%201')
    assert.deepEqual(hits.map(m => m.text), ['m 195', 'm 196', 'm 197', 'm 198', 'm 199'])
    const older = await page(`limit=5&search=m%201&before=${encodeURIComponent(historyCursor(hits[0] as MessageView))}`)
    assert.deepEqual(older.map(m => m.text), ['m 190', 'm 191', 'm 192', 'm 193', 'm 194'])
  })
})
