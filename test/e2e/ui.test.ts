/**
 * The web UI end to end: three nodes on loopback, Alice and Bob each with their own Chromium
 * page (Debian's chromium through playwright-core). The whole file runs four times, so that each
 * item runs in each language at each width (zh-CN/en × 360/1280 px): Alice in English at 360 px with
 * Bob in Chinese at 1280 px, then swapped, then Alice in English at 1280 px with Bob in Chinese at
 * 360 px, and swapped; every text looked for comes from the UI's own catalogs. The people have
 * ordinary names (their screens are the user guide's pictures); the hostile name and message come
 * last, in the HTML test. Bob's system is in
 * dark mode (the page follows it until Settings says otherwise). Screenshots of the main screens
 * go to test-results/screens/ (with UPDATE_SCREENSHOTS=1 also to docs/img/ for the user guide),
 * and of every page when a test fails.
 */
import { describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { request } from 'node:http'
import { WebSocket } from 'ws'
import type { Browser, Page } from 'playwright-core'
import { connect, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { assertFits, buildUi, launchChromium, openChat, screen, toList, uiTest, type Side } from '../helpers/browser.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import { uiI18n } from '../../app/ui/src/i18n/index.js'
import { MAX_NAME_CHARS } from '../../node/src/api/contract.js'

/** the other pairing than ui-office.test's (English wide, Chinese narrow): between the two files every item runs in each language at each width */
const SCENARIOS: Array<{ alice: Side, bob: Side }> = [
  { alice: { locale: 'en', width: 360 }, bob: { locale: 'zh-CN', width: 1280 } },
  { alice: { locale: 'zh-CN', width: 1280 }, bob: { locale: 'en', width: 360 } },
  { alice: { locale: 'en', width: 1280 }, bob: { locale: 'zh-CN', width: 360 } },
  { alice: { locale: 'zh-CN', width: 360 }, bob: { locale: 'en', width: 1280 } }
]
const BOB = 'Bob Weber'
const CAROL = 'Carol Wu'
/** the name Bob takes in the HTML test (markup, shown as text) */
const BOB_MARKUP = 'Bob <b>the builder</b>'
/** the page's background in each theme (style.css --bg) */
const BACKGROUND = { light: 'rgb(246, 247, 249)', dark: 'rgb(20, 23, 28)' }

for (const sc of SCENARIOS) {
  describe(`web UI in Chromium, two users: Alice ${sc.alice.locale} ${sc.alice.width} px, Bob ${sc.bob.locale} ${sc.bob.width} px`, () => {
    let dir: string
    let a: ParleyNode
    let b: ParleyNode
    let c: ParleyNode
    let browser: Browser
    let pageA: Page
    let pageB: Page
    const { t: ta } = uiI18n(sc.alice.locale)
    const { t: tb } = uiI18n(sc.bob.locale)

    before(async () => {
      buildUi()
      dir = await tmpDir('parley-ui-')
      a = loopbackNode(join(dir, 'a'), { name: 'Alice', changeWindows: { editMs: 15 * 60_000 } })
      b = loopbackNode(join(dir, 'b'), { name: BOB })
      c = loopbackNode(join(dir, 'c'), { name: CAROL })
      await a.start(); await b.start(); await c.start()
      await connect(a, b); await connect(a, c); await connect(b, c)
      browser = await launchChromium()
      const open = async (side: Side, colorScheme: 'light' | 'dark'): Promise<Page> => await (await browser.newContext({
        viewport: { width: side.width, height: side.width < 500 ? 740 : 760 }, locale: side.locale, colorScheme
      })).newPage()
      pageA = await open(sc.alice, 'light')
      pageB = await open(sc.bob, 'dark')
      for (const p of [pageA, pageB]) p.on('pageerror', (err) => { console.error('page error:', err.message) })
      await pageA.goto(a.uiUrl as string)
      await pageB.goto(b.uiUrl as string)
    })

    const ui = (name: string, fn: () => Promise<void>): void => { uiTest(name, () => ({ alice: pageA, bob: pageB }), fn, `ui-${sc.alice.locale}-${sc.alice.width}-`) }
    const person = (n: ParleyNode): string => `li.person[data-peer="${n.peerId}"]`
    const theme = async (p: Page): Promise<{ theme: string | undefined, background: string }> => await p.evaluate(() =>
      ({ theme: document.documentElement.dataset.theme, background: getComputedStyle(document.body).backgroundColor }))

    after(async () => {
      await browser?.close()
      await a?.stop(); await b?.stop(); await c?.stop()
      await removeDir(dir)
    })

    ui('serves the UI with a strict Content-Security-Policy and refuses the API without the token', async () => {
      const res = await fetch(`http://127.0.0.1:${String(a.apiPort)}/`)
      const csp = res.headers.get('content-security-policy') ?? ''
      assert.match(csp, /script-src 'self'/)
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
      // the API and its WebSocket on the page's own origin, no other local port
      assert.match(csp, /connect-src 'self'(;|$)/)
      assert.doesNotMatch(csp, /ws:|\*/)
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
      const bob = pageA.locator(person(b))
      await bob.waitFor()
      await until(async () => (await bob.locator('.dot.lan').count()) === 1, 'online dot')
      assert.equal(await bob.locator('.name').evaluate(e => e.firstChild?.textContent), BOB)
    })

    ui('A sends, B sees it live, replies; delivery states update; typing shows', async () => {
      await openChat(pageA, person(b))
      await pageA.locator('#text').fill('Lunch at noon?')
      await pageA.locator('#send').click()
      const mine = pageA.locator('.msg.mine').last()
      await until(async () => (await mine.locator('.state').getAttribute('data-state')) === 'delivered', 'delivered state')
      // B: unread badge, then the conversation
      const alice = pageB.locator(person(a))
      await alice.locator('.badge').waitFor()
      assert.equal(await alice.locator('.badge').textContent(), '1')
      await screen(pageB, sc.bob, 'unread')
      await openChat(pageB, person(a))
      await pageB.locator('.msg', { hasText: 'Lunch at noon?' }).waitFor()
      // opening the chat sends a read receipt
      await until(async () => (await mine.locator('.state').getAttribute('data-state')) === 'read', 'read state')
      // typing indicator
      await pageB.locator('#text').pressSequentially('Sure', { delay: 20 })
      await pageA.locator('#typing', { hasText: ta.typing(BOB) }).waitFor()
      await pageB.locator('#text').fill('Sure, see you at the entrance')
      await pageB.locator('#text').press('Enter')
      await pageA.locator('.msg:not(.mine)', { hasText: 'see you at the entrance' }).waitFor()
    })

    ui('Enter pressed twice sends once; a draft stays with its chat', async () => {
      await openChat(pageA, person(b))
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
      await openChat(pageA, person(c))
      assert.equal(await pageA.locator('#text').inputValue(), '')
      await openChat(pageA, person(b))
      assert.equal(await pageA.locator('#text').inputValue(), 'for Bob only')
      await pageA.locator('#text').fill('')
      // the people list works from the keyboard
      await toList(pageA)
      await pageA.locator(person(c)).focus()
      await pageA.keyboard.press('Enter')
      await until(async () => (await pageA.locator('#peer-name').textContent()) === CAROL, 'Carol opened with the keyboard')
      await openChat(pageA, person(b))
    })

    ui('search finds a message in the history', async () => {
      await pageB.locator('#search').fill('noon')
      await pageB.locator('#search-banner', { hasText: tb.filterBanner(1, 'noon') }).waitFor()
      assert.equal(await pageB.locator('.msg').count(), 1)
      await pageB.locator('#search').fill('')
      await until(async () => (await pageB.locator('.msg').count()) === 3, 'full history back')
    })

    ui('shows the safety number for key verification and records it', async () => {
      await pageA.locator('#open-verify').click()
      const sn = (await pageA.locator('#safety-number').textContent())?.replace(/\s+/g, ' ').trim()
      assert.match(sn ?? '', /^(\d{5} ){11}\d{5}$/)
      await pageB.locator('#open-verify').click()
      assert.equal((await pageB.locator('#safety-number').textContent())?.replace(/\s+/g, ' ').trim(), sn, 'both sides see the same number')
      await assertFits(pageA, 'the safety number')
      await screen(pageA, sc.alice, 'verify')
      await pageA.locator('#verify-toggle').click()
      await pageA.locator('#verify-state', { hasText: ta.verifiedState }).waitFor()
      assert.equal((await a.messenger.listPeers()).find(p => p.peerId === b.peerId)?.verified, true)
      await pageA.locator('#verify-close').click()
      await pageB.locator('#verify-close').click()
    })

    ui('settings change the display name, and a bad relay address gets a clear error', async () => {
      await toList(pageA)
      await pageA.locator('#open-settings').click()
      // the edit/recall windows this node was started with (15 min given, recall at its 24 h default)
      assert.equal(await pageA.locator('#change-windows').textContent(), ta.changeWindowsNote(15 * 60_000, 24 * 3600_000))
      // a pasted name over the limit is kept whole and counted, never cut
      await pageA.locator('#set-name').fill('A'.repeat(MAX_NAME_CHARS + 6))
      await pageA.locator('#set-name-over', { hasText: ta.nameTooLong(6, MAX_NAME_CHARS) }).waitFor()
      assert.equal((await pageA.locator('#set-name').inputValue()).length, MAX_NAME_CHARS + 6)
      await pageA.locator('#set-name').fill('Alice Martin')
      assert.equal(await pageA.locator('#set-name-over').count(), 0)
      await pageA.locator('#set-relay').fill('not-an-address')
      await pageA.locator('#settings-save').click()
      // in the user's words, not the parser's ("not a multiaddr … (ERR_INVALID_ARGUMENT)")
      await pageA.locator('#settings-error', { hasText: ta.error.relayAddress }).waitFor()
      assert.doesNotMatch(await pageA.locator('#settings-error').textContent() ?? '', /ERR_|multiaddr/)
      await assertFits(pageA, 'the settings with an error')
      await screen(pageA, sc.alice, 'settings-error')
      await pageA.locator('#set-relay').fill('')
      await pageA.locator('#settings-save').click()
      await pageA.locator('#my-name', { hasText: 'Alice Martin' }).waitFor()
    })

    ui('groups: create from the UI, chat with author names, remove a member', async () => {
      await toList(pageA)
      await pageA.locator(person(c)).waitFor()
      await pageA.locator('#new-group').click()
      await pageA.locator('#group-name').fill('Lunch crew')
      await assertFits(pageA, 'the new group')
      await pageA.locator(`#group-pick input[value="${b.peerId}"]`).check()
      await pageA.locator(`#group-pick input[value="${c.peerId}"]`).check()
      await pageA.locator('#group-create').click()
      await pageA.locator('#peer-name', { hasText: 'Lunch crew' }).waitFor()
      await pageA.locator('#text').fill('Pizza or sushi?')
      await pageA.locator('#send').click()
      // (the box empties once the send is done: typing before that would go after the sent text)
      await until(async () => (await pageA.locator('#text').inputValue()) === '', 'the sent text left the box')
      // an input method's Enter while the mention list is open only confirms the characters: no name is picked
      await pageA.locator('#text').pressSequentially('@Ca')
      await pageA.locator('#mention-list li', { hasText: `@${CAROL}` }).waitFor()
      await pageA.locator('#text').evaluate((e) => {
        e.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', isComposing: true, bubbles: true, cancelable: true }))
        e.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', keyCode: 229, bubbles: true, cancelable: true }))
      })
      assert.equal(await pageA.locator('#text').inputValue(), '@Ca')
      await pageA.locator('#text').press('Enter')
      assert.equal(await pageA.locator('#text').inputValue(), `@${CAROL} `)
      await pageA.locator('#text').fill('')
      await toList(pageB)
      const groupB = pageB.locator('li.group', { hasText: 'Lunch crew' })
      await groupB.waitFor()
      await groupB.click()
      const msg = pageB.locator('.msg:not(.mine):not(.system)', { hasText: 'Pizza or sushi?' })
      await msg.waitFor()
      assert.equal(await msg.locator('.author').textContent(), 'Alice Martin')
      await pageB.locator('.msg.system', { hasText: tb.opCreated('Alice Martin', 'Lunch crew') }).waitFor()
      await pageA.locator('#open-members').click()
      await pageA.locator('#members').waitFor()
      await assertFits(pageA, 'the members, as the group\'s admin')
      await screen(pageA, sc.alice, 'members')
      await pageA.locator(`#members-list button[data-member="${c.peerId}"]`).click()
      // removing asks first
      await pageA.locator('#confirm-text', { hasText: ta.confirmRemove(CAROL, 'Lunch crew') }).waitFor()
      await pageA.locator('#confirm-yes').click()
      await until(() => c.messenger.listGroups()[0]?.members.includes(c.peerId) === false, 'Carol removed')
      await pageA.locator('#members-close').click()
      await pageB.locator('#peer-presence', { hasText: tb.memberCount(2) }).waitFor()
    })

    ui('dark mode follows the system, live, until Settings picks a theme', async () => {
      // Bob's system is dark, Alice's light; both pages are on "auto"
      assert.deepEqual(await theme(pageB), { theme: 'dark', background: BACKGROUND.dark })
      assert.deepEqual(await theme(pageA), { theme: 'light', background: BACKGROUND.light })
      await screen(pageB, sc.bob, 'dark-system')
      // the system turns light (and dark again): the page follows without a reload
      await pageB.emulateMedia({ colorScheme: 'light' })
      await until(async () => (await theme(pageB)).theme === 'light', 'light with the system')
      await pageB.emulateMedia({ colorScheme: 'dark' })
      await until(async () => (await theme(pageB)).theme === 'dark', 'dark with the system')
      // the switch wins over the system, and "auto" gives it back
      for (const [choice, shown] of [['light', 'light'], ['auto', 'dark']] as const) {
        await toList(pageB)
        await pageB.locator('#open-settings').click()
        await pageB.locator('#set-theme').selectOption(choice)
        await pageB.locator('#settings-save').click()
        await until(async () => (await pageB.locator('#settings').count()) === 0, 'settings closed')
        await until(async () => (await theme(pageB)).theme === shown, `${choice} chosen: ${shown}`)
        assert.equal((await theme(pageB)).background, BACKGROUND[shown])
      }
    })

    ui('HTML and script in a message and in a name stay inert text', async () => {
      // Bob renames himself with markup: Alice's list shows it as text
      await b.messenger.setName(BOB_MARKUP)
      const bob = pageA.locator(person(b))
      await toList(pageA)
      await until(async () => (await bob.locator('.name').evaluate(e => e.firstChild?.textContent)) === BOB_MARKUP, 'the new name as text')
      assert.equal(await bob.locator('b').count(), 0)
      await openChat(pageA, person(b))
      await openChat(pageB, person(a))
      const evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
      await pageA.locator('#text').fill(evil)
      await pageA.locator('#send').click()
      const shown = pageB.locator('.msg .body', { hasText: '<img src=x' })
      await shown.waitFor()
      assert.equal(await shown.textContent(), evil)
      assert.equal(await pageB.locator('.messages img, .messages script').count(), 0)
      assert.equal(await pageB.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined)
      assert.equal(await pageA.locator('#peer-name b').count(), 0)
    })
  })
}
