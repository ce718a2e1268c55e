/**
 * Accounts with several devices on a real LAN (network namespaces, real
 * mDNS, node processes): Ana links a second device with `parley link`'s code;
 * Ben's message reaches both; Ana answers from the second device and Ben and
 * her first device show one conversation in the same order; a device killed
 * with -9 in the middle of linking ends linked (or not) on both sides, never
 * half; revoking the second device: it reads nothing sent afterwards.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { NetnsLan, canUseNamespaces } from '../helpers/netns.js'
import { NodeProc } from '../helpers/proc.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { AccountView, IdentityView, MessageView } from '../../node/src/api/contract.js'
import type { PeerView } from '../../node/src/messaging/messenger.js'

describe('LAN accounts: two devices of Ana, Ben, in namespaces', () => {
  const lan = new NetnsLan('pacc', 4, '10.231.44')
  let dir: string
  let failed = false
  const n: Record<'ana1' | 'ana2' | 'ben' | 'ana3', NodeProc> = {} as never
  const id: Record<string, string> = {}
  const guard = async (fn: () => Promise<void>): Promise<void> => { try { await fn() } catch (e) { failed = true; throw e } }
  const history = async (p: NodeProc, peer: string): Promise<MessageView[]> => await p.api!.call<MessageView[]>('GET', `/conversations/${peer}/messages?limit=1000`)
  const account = async (p: NodeProc): Promise<AccountView> => await p.api!.call<AccountView>('GET', '/account')

  before(async () => {
    try {
      const why = canUseNamespaces()
      if (why !== null) throw new Error(why)
      dir = await tmpDir('parley-lan-accounts-')
      lan.up()
      const names = ['ana1', 'ana2', 'ben', 'ana3'] as const
      names.forEach((k, i) => {
        const h = lan.hosts[i]!
        n[k] = new NodeProc({ dataDir: join(dir, k), name: k === 'ben' ? 'Ben' : 'Ana', netns: h.name, logFile: join(dir, `${k}.log`), args: ['--listen', '/ip4/0.0.0.0/tcp/4001'] })
      })
      await Promise.all(['ana1', 'ana2', 'ben'].map(async k => { await n[k as 'ana1'].start() }))
      for (const k of ['ana1', 'ana2', 'ben'] as const) id[k] = (await n[k].api!.call<IdentityView>('GET', '/identity')).peerId
      await until(async () => (await n.ben.api!.call<PeerView[]>('GET', '/peers')).filter(p => p.online && p.name === 'Ana').length === 2,
        'Ben sees two Anas before the link', 30_000, 200)
      // the new device links by dialling the first one: it must have found it on the LAN first (once, in a full
      // suite, the link was asked for before mDNS had given the laptop the desktop's addresses)
      await until(async () => (await n.ana2.api!.call<PeerView[]>('GET', '/peers')).some(p => p.online && p.peerId === id.ana1),
        'the laptop sees the desktop before the link', 30_000, 200)
    } catch (e) { failed = true; throw e }
  })

  after(async () => {
    await Promise.all(Object.values(n).map(async p => { await p?.stop() }))
    lan.down()
    if (failed || process.env.KEEP_LOGS === '1') console.error(`LAN accounts test logs kept in ${dir}`)
    else await removeDir(dir)
  })

  it('links the second device with the code of parley link', async () => guard(async () => {
    const { code } = await n.ana1.api!.call<{ code: string }>('POST', '/link')
    const joined = await n.ana2.api!.call<AccountView>('POST', '/link/join', { code, label: 'laptop' })
    assert.equal(joined.account, id.ana1)
    assert.equal(joined.accountKey, false)
    assert.deepEqual((await account(n.ana1)).devices.map(d => d.peerId), [id.ana1, id.ana2])
    // Ben now sees one Ana with two devices, and no key warning for the second
    const ana = await until(async () => {
      const a = (await n.ben.api!.call<PeerView[]>('GET', '/peers')).filter(p => p.name === 'Ana')
      return a.length === 1 && a[0]!.devices.length === 2 ? a[0] : undefined
    }, 'Ben sees one Ana with two devices', 20_000, 200)
    assert.equal(ana.peerId, id.ana1)
    assert.equal(ana.keyWarning, null)
  }))

  it('Ben → both of Ana\'s devices; Ana answers from the second: one conversation, the same order everywhere', async () => guard(async () => {
    const m1 = await n.ben.api!.call<MessageView>('POST', '/messages', { to: id.ana1, text: 'lunch at 12?', wait: 'delivered', timeoutMs: 20_000 })
    assert.equal(m1.state, 'delivered')
    for (const d of [n.ana1, n.ana2]) await until(async () => (await history(d, id.ben!)).some(m => m.id === m1.id), 'on both devices', 20_000, 200)
    const m2 = await n.ana2.api!.call<MessageView>('POST', '/messages', { to: 'Ben', text: 'yes', wait: 'delivered', timeoutMs: 20_000 })
    const m3 = await n.ben.api!.call<MessageView>('POST', '/messages', { to: id.ana2, text: 'see you', wait: 'delivered', timeoutMs: 20_000 })
    const want = [m1.id, m2.id, m3.id]
    for (const [p, peer] of [[n.ben, id.ana1], [n.ana1, id.ben], [n.ana2, id.ben]] as const) {
      await until(async () => (await history(p, peer!)).length === 3, 'three messages', 20_000, 200)
      assert.deepEqual((await history(p, peer!)).map(m => m.id), want)
    }
    // on the first device the second device's answer is Ana's own
    assert.equal((await history(n.ana1, id.ben!)).find(m => m.id === m2.id)?.outgoing, true)
    const convs = await n.ben.api!.call<Array<{ peer: string }>>('GET', '/conversations')
    assert.deepEqual(convs.map(c => c.peer), [id.ana1])
  }))

  it('kill -9 of a device in the middle of linking leaves no half-linked state', async () => guard(async () => {
    const { code } = await n.ana1.api!.call<{ code: string }>('POST', '/link')
    // dies after the first device answered, before it wrote the account
    process.env.PARLEY_TEST_LINK_CRASH = 'after-answer'
    try { await n.ana3.start() } finally { delete process.env.PARLEY_TEST_LINK_CRASH }
    id.ana3 = (await n.ana3.api!.call<IdentityView>('GET', '/identity')).peerId
    await until(async () => (await n.ana3.api!.call<PeerView[]>('GET', '/peers')).some(p => p.peerId === id.ana1 && p.online), 'sees Ana', 20_000, 200)
    await assert.rejects(n.ana3.api!.call('POST', '/link/join', { code }))
    await until(() => n.ana3.child?.exitCode !== null || n.ana3.child?.signalCode !== null, 'the crash', 10_000, 50)
    n.ana3.child = undefined
    // the first device has made the add op durable; the new device had noted the link as pending
    assert.ok((await account(n.ana1)).devices.some(d => d.peerId === id.ana3))
    await n.ana3.start()
    await until(async () => (await account(n.ana3)).account === id.ana1, 'the pending link completes after the restart', 30_000, 200)
    const both = [await account(n.ana1), await account(n.ana3)]
    assert.deepEqual(both[1]!.devices.map(d => d.peerId), both[0]!.devices.map(d => d.peerId))
    assert.equal(both[1]!.pendingLink, null)
  }))

  it('revoking the second device: it reads nothing sent afterwards', async () => guard(async () => {
    await n.ana1.api!.call('POST', `/devices/${id.ana2!}/revoke`)
    await until(async () => !(await n.ben.api!.call<PeerView[]>('GET', '/peers')).find(p => p.peerId === id.ana1)?.devices.some(d => d.peerId === id.ana2),
      'Ben learns the revocation', 20_000, 200)
    const canary = `after-revoke-${Math.random().toString(36).slice(2)}`
    const m = await n.ben.api!.call<MessageView>('POST', '/messages', { to: id.ana1, text: canary, wait: 'delivered', timeoutMs: 20_000 })
    assert.equal(m.state, 'delivered')
    const mine = await n.ana1.api!.call<MessageView>('POST', '/messages', { to: id.ben, text: canary + '-own', wait: 'delivered', timeoutMs: 20_000 })
    assert.equal(mine.state, 'delivered')
    await new Promise(resolve => setTimeout(resolve, 2000))
    const seen = (await history(n.ana2, id.ben!)).map(x => x.text)
    assert.ok(!seen.includes(canary) && !seen.includes(canary + '-own'))
    assert.ok(!n.ana2.logText().includes(canary))
  }))
})
