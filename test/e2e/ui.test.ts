/**
 * The web UI end to end: two nodes on loopback, each with its own Chromium
 * page (Debian's chromium through playwright-core). Screenshots of every page
 * are saved in test-results/ when a test fails; UPDATE_SCREENSHOTS=1 refreshes
 * the ones in docs/img/ used by the user guide.
 */
import { describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { mkdir } from 'node:fs/promises'
import { request } from 'node:http'
import { WebSocket } from 'ws'
import type { Browser, Page } from 'playwright-core'
import { connect, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { ROOT, buildUi, launchChromium, uiTest } from '../helpers/browser.js'
import type { ParleyNode } from '../../node/src/parley-node.js'

const SHOTS = join(ROOT, 'docs/img')

describe('web UI in Chromium, two users', () => {
  let dir: string
  let a: ParleyNode
  let b: ParleyNode
  let c: ParleyNode
  let browser: Browser
  let pageA: Page
  let pageB: Page

  before(async () => {
    buildUi()
    dir = await tmpDir('parley-ui-')
    a = loopbackNode(join(dir, 'a'), { name: 'Alice' })
    b = loopbackNode(join(dir, 'b'), { name: 'Bob <b>the builder</b>' })
    c = loopbackNode(join(dir, 'c'), { name: 'Carol' })
    await a.start(); await b.start(); await c.start()
    await connect(a, b); await connect(a, c); await connect(b, c)
    browser = await launchChromium()
    pageA = await (await browser.newContext({ viewport: { width: 1100, height: 700 }, locale: 'en-US' })).newPage()
    pageB = await (await browser.newContext({ viewport: { width: 1100, height: 700 }, locale: 'en-US' })).newPage()
    for (const p of [pageA, pageB]) p.on('pageerror', (err) => { console.error('page error:', err.message) })
    await pageA.goto(a.uiUrl as string)
    await pageB.goto(b.uiUrl as string)
  })

  const ui = (name: string, fn: () => Promise<void>): void => { uiTest(name, () => ({ alice: pageA, bob: pageB }), fn) }

  after(async () => {
    await browser?.close()
    await a?.stop(); await b?.stop(); await c?.stop()
    await removeDir(dir)
  })

  const shot = async (page: Page, name: string): Promise<void> => {
    if (process.env.UPDATE_SCREENSHOTS !== '1') return
    await mkdir(SHOTS, { recursive: true })
    await page.screenshot({ path: join(SHOTS, name) })
  }

  ui('serves the UI with a strict Content-Security-Policy and refuses the API without the token', async () => {
    const res = await fetch(`http://127.0.0.1:${String(a.apiPort)}/`)
    const csp = res.headers.get('content-security-policy') ?? ''
    assert.match(csp, /script-src 'self'/)
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
    assert.equal((await fetch(`http://127.0.0.1:${String(a.apiPort)}/v1/peers`)).status, 401)
    // the token left the address bar
    assert.equal(new URL(pageA.url()).hash, '')
    // DNS rebinding: a page on another name that resolves to 127.0.0.1 gets nothing, even with the token
    const token = new URLSearchParams((a.uiUrl as string).split('#')[1]).get('token') as string
    const asHost = async (host: string, path: string, headers: Record<string, string> = {}): Promise<number> => await new Promise((resolve, reject) => {
      request({ host: '127.0.0.1', port: a.apiPort, path, headers: { host, authorization: `Bearer ${token}`, ...headers } }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject).end()
    })
    assert.equal(await asHost(`127.0.0.1:${String(a.apiPort)}`, '/v1/peers'), 200)
    assert.equal(await asHost(`localhost:${String(a.apiPort)}`, '/v1/peers'), 200)
    assert.equal(await asHost(`evil.example:${String(a.apiPort)}`, '/v1/peers'), 421)
    assert.equal(await asHost(`evil.example:${String(a.apiPort)}`, '/'), 421)
    // and a WebSocket from a foreign page is refused even with the token
    const ws = (origin: string): Promise<string> => new Promise((resolve) => {
      const socket = new WebSocket(`ws://127.0.0.1:${String(a.apiPort)}/v1/events?token=${token}`, { headers: { origin } })
      socket.on('open', () => { socket.close(); resolve('open') })
      socket.on('error', () => { resolve('refused') })
    })
    assert.equal(await ws(`http://127.0.0.1:${String(a.apiPort)}`), 'open')
    assert.equal(await ws('http://evil.example'), 'refused')
  })

  ui('lists the other user with presence', async () => {
    const bob = pageA.locator(`li.person[data-peer="${b.peerId}"]`)
    await bob.waitFor()
    await until(async () => (await bob.locator('.dot.lan').count()) === 1, 'online dot')
    // a name with markup is shown as text
    assert.equal(await bob.locator('.name').evaluate(e => e.firstChild?.textContent), 'Bob <b>the builder</b>')
    assert.equal(await bob.locator('b').count(), 0)
  })

  ui('A sends, B sees it live, replies; delivery states update; typing shows', async () => {
    await pageA.locator(`li.person[data-peer="${b.peerId}"]`).click()
    await pageA.locator('#text').fill('Lunch at noon?')
    await pageA.locator('#send').click()
    const mine = pageA.locator('.msg.mine').last()
    await until(async () => (await mine.locator('.state').getAttribute('data-state')) === 'delivered', 'delivered state')
    // B: unread badge, then the conversation
    const alice = pageB.locator(`li.person[data-peer="${a.peerId}"]`)
    await alice.locator('.badge').waitFor()
    assert.equal(await alice.locator('.badge').textContent(), '1')
    await shot(pageB, 'unread.png')
    await alice.click()
    await pageB.locator('.msg', { hasText: 'Lunch at noon?' }).waitFor()
    // opening the chat sends a read receipt
    await until(async () => (await mine.locator('.state').getAttribute('data-state')) === 'read', 'read state')
    // typing indicator
    await pageB.locator('#text').pressSequentially('Sure', { delay: 20 })
    await pageA.locator('#typing', { hasText: 'is typing' }).waitFor()
    await pageB.locator('#text').fill('Sure, see you at the entrance')
    await pageB.locator('#text').press('Enter')
    await pageA.locator('.msg:not(.mine)', { hasText: 'see you at the entrance' }).waitFor()
    await shot(pageA, 'chat.png')
  })

  ui('Enter pressed twice sends once; a draft stays with its chat', async () => {
    await pageA.locator(`li.person[data-peer="${b.peerId}"]`).click()
    await pageA.locator('#text').fill('only once please')
    await pageA.locator('#text').press('Enter')
    await pageA.locator('#text').press('Enter')
    await pageA.locator('.msg.mine', { hasText: 'only once please' }).waitFor()
    await new Promise(resolve => setTimeout(resolve, 500))
    assert.equal(await pageA.locator('.msg.mine', { hasText: 'only once please' }).count(), 1)
    // Enter that confirms an input method's characters (拼音 → 午饭) only confirms them
    await pageA.locator('#text').fill('午饭')
    await pageA.locator('#text').evaluate((e) => {
      e.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', isComposing: true, bubbles: true, cancelable: true }))
      e.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', keyCode: 229, bubbles: true, cancelable: true }))
    })
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.equal(await pageA.locator('.msg.mine', { hasText: '午饭' }).count(), 0, 'nothing sent while composing')
    assert.equal(await pageA.locator('#text').inputValue(), '午饭')
    // a half-typed message does not follow you into another chat, and is there when you come back
    await pageA.locator('#text').fill('for Bob only')
    await pageA.locator(`li.person[data-peer="${c.peerId}"]`).click()
    assert.equal(await pageA.locator('#text').inputValue(), '')
    await pageA.locator(`li.person[data-peer="${b.peerId}"]`).click()
    assert.equal(await pageA.locator('#text').inputValue(), 'for Bob only')
    await pageA.locator('#text').fill('')
    // the people list works from the keyboard
    await pageA.locator(`li.person[data-peer="${c.peerId}"]`).focus()
    await pageA.keyboard.press('Enter')
    await until(async () => (await pageA.locator('#peer-name').textContent()) === 'Carol', 'Carol opened with the keyboard')
    await pageA.locator(`li.person[data-peer="${b.peerId}"]`).click()
  })

  ui('search finds a message in the history', async () => {
    await pageB.locator('#search').fill('noon')
    await pageB.locator('#search-banner', { hasText: '1 message matching' }).waitFor()
    assert.equal(await pageB.locator('.msg').count(), 1)
    await pageB.locator('#search').fill('')
    await until(async () => (await pageB.locator('.msg').count()) === 3, 'full history back')
  })

  ui('HTML and script in a message stay inert text', async () => {
    const evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    await pageA.locator('#text').fill(evil)
    await pageA.locator('#send').click()
    const shown = pageB.locator('.msg .body', { hasText: '<img src=x' })
    await shown.waitFor()
    assert.equal(await shown.textContent(), evil)
    assert.equal(await pageB.locator('.messages img, .messages script').count(), 0)
    assert.equal(await pageB.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined)
  })

  ui('shows the safety number for key verification and records it', async () => {
    await pageA.locator('#open-verify').click()
    const sn = (await pageA.locator('#safety-number').textContent())?.replace(/\s+/g, ' ').trim()
    assert.match(sn ?? '', /^(\d{5} ){11}\d{5}$/)
    await pageB.locator('#open-verify').click()
    assert.equal((await pageB.locator('#safety-number').textContent())?.replace(/\s+/g, ' ').trim(), sn, 'both sides see the same number')
    await shot(pageA, 'verify.png')
    await pageA.locator('#verify-toggle').click()
    await pageA.locator('#verify-state', { hasText: 'You marked this key as verified' }).waitFor()
    assert.equal((await a.messenger.listPeers()).find(p => p.peerId === b.peerId)?.verified, true)
    await pageA.locator('#verify-close').click()
    await pageB.locator('#verify-close').click()
  })

  ui('settings change the display name, and a bad relay address gets a clear error', async () => {
    await pageA.locator('#open-settings').click()
    await pageA.locator('#set-name').fill('Alice Martin')
    await pageA.locator('#set-relay').fill('not-an-address')
    await pageA.locator('#settings-save').click()
    // in the user's words, not the parser's ("not a multiaddr … (ERR_INVALID_ARGUMENT)")
    await pageA.locator('#settings-error', { hasText: 'This is not a relay address' }).waitFor()
    assert.doesNotMatch(await pageA.locator('#settings-error').textContent() ?? '', /ERR_|multiaddr/)
    await shot(pageA, 'settings.png')
    await pageA.locator('#set-relay').fill('')
    await pageA.locator('#settings-save').click()
    await pageA.locator('#my-name', { hasText: 'Alice Martin' }).waitFor()
  })

  ui('groups: create from the UI, chat with author names, remove a member', async () => {
    await pageA.locator(`li.person[data-peer="${c.peerId}"]`).waitFor()
    await pageA.locator('#new-group').click()
    await pageA.locator('#group-name').fill('Lunch crew')
    await pageA.locator(`#group-pick input[value="${b.peerId}"]`).check()
    await pageA.locator(`#group-pick input[value="${c.peerId}"]`).check()
    await pageA.locator('#group-create').click()
    await pageA.locator('#peer-name', { hasText: 'Lunch crew' }).waitFor()
    await pageA.locator('#text').fill('Pizza or sushi?')
    await pageA.locator('#send').click()
    const groupB = pageB.locator('li.group', { hasText: 'Lunch crew' })
    await groupB.waitFor()
    await groupB.click()
    const msg = pageB.locator('.msg:not(.mine):not(.system)', { hasText: 'Pizza or sushi?' })
    await msg.waitFor()
    assert.equal(await msg.locator('.author').textContent(), 'Alice Martin')
    assert.ok(await pageB.locator('.msg.system', { hasText: 'created' }).count() >= 1)
    await pageA.locator('#open-members').click()
    await shot(pageA, 'group.png')
    await pageA.locator(`#members-list button[data-member="${c.peerId}"]`).click()
    // removing asks first
    await pageA.locator('#confirm-text', { hasText: 'Remove Carol' }).waitFor()
    await pageA.locator('#confirm-yes').click()
    await until(() => c.messenger.listGroups()[0]?.members.includes(c.peerId) === false, 'Carol removed')
    await pageA.locator('#members-close').click()
    await pageB.locator('#peer-presence', { hasText: '2 members' }).waitFor()
  })
})
