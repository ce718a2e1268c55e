/**
 * Issue 11 in the UI (review s3-16 MA1): conversations and group members are
 * accounts, while this node's `peerId`, message authors and recipients are
 * devices. On a linked device (device ≠ account) and for a colleague's second
 * device the store and the words map a device to its person.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Store, isMe } from '../../../app/ui/src/store.js'
import { words } from '../../../app/ui/src/views/words.js'
import { byPerson, devicesOfPerson } from '../../../app/ui/src/views/dialogs/Info.js'
import { uiI18n } from '../../../app/ui/src/i18n/index.js'
import type { AccountView, MessageView, PeerView } from '../../../node/src/api/contract.js'
import type { ApiClient } from '../../../app/ui/src/api.js'

// the store asks whether the window is hidden (unread counts, seen marks)
;(globalThis as { document?: unknown }).document ??= { hidden: false }

// our account sorts before this device's ID: the dm id `dm:<ours>:<theirs>` starts with ours
const ACCOUNT = '12D3KooWAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
const FIRST = '12D3KooWBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'
const LAPTOP = '12D3KooWZzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'
const BEN = '12D3KooWCccccccccccccccccccccccccccccccccccccccccccc'
const BEN_PHONE = '12D3KooWDdddddddddddddddddddddddddddddddddddddddddd'
const DM = `dm:${ACCOUNT}:${BEN}`

const device = (peerId: string) => ({ peerId, online: true, lastSeen: null, label: null })
const ben: PeerView = {
  peerId: BEN, devices: [device(BEN), device(BEN_PHONE)], needsUpdate: false, name: 'Ben', online: true, reach: 'lan',
  status: null, lastSeen: null, safetyNumber: '', verified: false, keyWarning: null, nameWarning: null
}
const account: AccountView = {
  account: ACCOUNT, device: LAPTOP, accountKey: false, since: 1, migrated: false, revoked: [], home: [], pendingLink: null,
  devices: [FIRST, LAPTOP].map(p => ({ ...device(p), self: p === LAPTOP, accountKey: p === FIRST }))
}
const message = (over: Partial<MessageView>): MessageView => ({
  id: 'm1', conv: DM, author: BEN_PHONE, seq: 1, hlc: { w: 1000, c: 0 }, text: 'hi from my phone', outgoing: false, state: 'received', storedAt: 1000, ...over
} as MessageView)

/** a store on our laptop (a linked device), with Ben's chat open; the API answers nothing */
function laptop (): Store {
  const api = new Proxy({}, { get: () => async () => [] }) as unknown as ApiClient
  const store = new Store(api)
  store.state = {
    ...store.state,
    me: { peerId: LAPTOP, name: 'Ana', addresses: [] },
    account,
    link: 'up',
    peers: new Map([[BEN, ben]]),
    groups: new Map([['g:1', { id: 'g:1', name: 'Office', admin: ACCOUNT, members: [ACCOUNT, BEN], member: true }]]),
    current: BEN
  }
  return store
}

describe('the UI on a linked device and with a colleague\'s second device (accounts, issue 11)', () => {
  it('a dm names our account and theirs: the chat is theirs, and a live message shows in the open chat', () => {
    const store = laptop()
    assert.equal(store.peerOf(DM), BEN)
    store.apply({ v: 1, type: 'messageStored', data: message({}) })
    assert.deepEqual(store.state.messages.map(m => m.id), ['m1'])
    assert.equal(store.state.convs.get(BEN)?.last?.id, 'm1')
    assert.equal(store.state.convs.has(ACCOUNT), false)
  })

  it('a group update keeps us a member (members are accounts), and our account is the admin', () => {
    const store = laptop()
    store.apply({ v: 1, type: 'groupUpdated', data: { conv: 'g:1', name: 'Office', admin: ACCOUNT, members: [ACCOUNT, BEN] } })
    assert.equal(store.state.groups.get('g:1')?.member, true)
    assert.equal(isMe(store.state, ACCOUNT), true)
    assert.equal(isMe(store.state, FIRST), true)
    assert.equal(isMe(store.state, BEN), false)
  })

  it('a colleague\'s second device is named as the colleague, our other device as us: never a raw 12D3KooW', () => {
    const store = laptop()
    const en = uiI18n('en').t
    const w = words(en, store.state)
    assert.equal(w.person(BEN_PHONE), 'Ben')
    assert.equal(w.person(FIRST, true), en.you)
    assert.equal(w.person(ACCOUNT), 'Ana')
    assert.equal(w.preview(message({ conv: 'g:1' })), en.previewAuthor('Ben', 'hi from my phone'))
    assert.doesNotMatch(w.preview(message({ conv: 'g:1' })), /12D3KooW/)
  })

  it('our own other devices are not listed as colleagues', () => {
    const store = laptop()
    store.apply({ v: 1, type: 'peerUpdated', data: { ...ben, peerId: ACCOUNT, name: 'Ana', devices: [device(FIRST), device(LAPTOP)] } })
    assert.equal(store.state.peers.has(ACCOUNT), false)
  })

  it('typing on a colleague\'s second device shows in their chat', () => {
    const store = laptop()
    store.apply({ v: 1, type: 'peerTyping', data: { peerId: BEN_PHONE, conv: DM } })
    assert.equal(store.state.typing, BEN_PHONE)
    assert.equal(words(uiI18n('en').t, store.state).person(store.state.typing ?? ''), 'Ben')
  })

  it('message info: one row per person, devices folded into the furthest state, our own other device left out', () => {
    const store = laptop()
    const rows = byPerson(store.state, [
      { peer: FIRST, state: 'delivered', account: ACCOUNT },
      { peer: BEN, state: 'failed', account: BEN },
      { peer: BEN_PHONE, state: 'delivered', via: 'lan' } // an older node: no account, found through Ben's devices
    ])
    assert.deepEqual(rows, [{ peer: BEN, state: 'delivered', via: 'lan' }])
  })

  it('message info: per-device detail under a person with several devices, none for one device', () => {
    const store = laptop()
    store.putPeer({ ...ben, devices: [device(BEN), { ...device(BEN_PHONE), label: 'phone' }] })
    const recipients = [
      { peer: FIRST, state: 'delivered' as const, account: ACCOUNT },
      { peer: BEN, state: 'failed' as const, account: BEN },
      { peer: BEN_PHONE, state: 'read' as const, account: BEN }
    ]
    assert.deepEqual(devicesOfPerson(store.state, recipients, BEN), [
      { peer: BEN, label: `…${BEN.slice(-6)}`, state: 'failed' },
      { peer: BEN_PHONE, label: 'phone', state: 'read' }
    ])
    assert.deepEqual(devicesOfPerson(store.state, recipients.slice(0, 2), BEN), [])
  })
})
