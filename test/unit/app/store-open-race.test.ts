/**
 * Opening a chat reads its newest page over HTTP while events keep coming: a message stored after the node
 * read that page arrives as an event before the page's answer. It must stay in the chat when the page lands
 * (seen once in the full suite: the chat list's preview had "the doc is ready", the chat did not).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Store } from '../../../app/ui/src/store.js'
import type { MessageView, PeerView } from '../../../node/src/api/contract.js'
import type { ApiClient } from '../../../app/ui/src/api.js'

;(globalThis as { document?: unknown }).document ??= { hidden: false }

const ME = '12D3KooWAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
const CHEN = '12D3KooWCccccccccccccccccccccccccccccccccccccccccccc'
const DM = `dm:${ME}:${CHEN}`
const chen: PeerView = {
  peerId: CHEN, devices: [], needsUpdate: false, name: '陈静', online: true, reach: 'lan',
  status: null, lastSeen: null, safetyNumber: '', verified: false, keyWarning: null, nameWarning: null
}
const message = (id: string, w: number, text: string): MessageView => ({
  id, conv: DM, author: CHEN, seq: w, hlc: { w, c: 0 }, text, outgoing: false, state: 'received', storedAt: w
} as MessageView)

describe('opening a chat while a message arrives', () => {
  it('a message that came as an event while the newest page was on its way stays in the chat', async () => {
    let answer: (page: MessageView[]) => void = () => {}
    const api = new Proxy({}, {
      get: (_t, name) => name === 'history'
        ? async () => await new Promise<MessageView[]>(resolve => { answer = resolve })
        : async () => []
    }) as unknown as ApiClient
    const store = new Store(api)
    store.state = { ...store.state, me: { peerId: ME, name: 'Ana', addresses: [] }, link: 'up', peers: new Map([[CHEN, chen]]) }
    const opening = store.open(CHEN)
    // the node read the page (two messages), then stored a third and sent its event before the page's answer
    store.apply({ v: 1, type: 'messageStored', data: message('m3', 3000, 'the doc is ready') })
    answer([message('m1', 1000, 'hello'), message('m2', 2000, 'the guide')])
    await opening
    assert.deepEqual(store.state.messages.map(m => m.text), ['hello', 'the guide', 'the doc is ready'])
  })
})
