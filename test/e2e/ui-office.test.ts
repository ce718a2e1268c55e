/**
 * The web UI as an office uses it, in Chromium with real nodes on loopback:
 * Ana, 陈静 and Ben (Ben has no page: his node is driven through its API), and a
 * fresh node for the first run. The whole scenario runs four times, so that
 * each item runs in each language at each width (zh-CN/en × 360/1280 px):
 * Ana in English at 1280 px with 陈静 in Chinese at 360 px, then swapped;
 * then Ana in English at 360 px with 陈静 in Chinese at 1280 px, and swapped.
 * The last two fill 230 messages into the history instead of 560 (the paging
 * is the same, and it keeps the file's time down). Every text the test looks for comes from the UI's own catalogs.
 * Screenshots of each main screen go to test-results/screens/ (and, with
 * UPDATE_SCREENSHOTS=1, to docs/img/ for the user guide).
 */
import { describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { connect, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { assertFits, buildUi, isNarrow as narrow, launchChromium, openChat, screen as shot, toList, uiTest, type Side } from '../helpers/browser.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'
import { MAX_TEXT_CHARS } from '../../node/src/api/contract.js'
import { uiI18n, type UiI18n } from '../../app/ui/src/i18n/index.js'
import type { Locale } from '../../app/shared/i18n.js'

/** a Notification that records, and a `document.hidden` the test controls (headless windows are never hidden) */
const FAKE_DESKTOP = `
  window.__notes = []; window.__hidden = false;
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get () { return window.__hidden } });
  window.Notification = class { static permission = 'granted'; static async requestPermission () { return 'granted' }
    constructor (title, o) { window.__notes.push({ title, body: o && o.body }) } };
`

/** `history`: how many messages the history test fills in (past the old 500 cap in the first two, a few pages in the others) */
const SCENARIOS: Array<{ ana: Side, chen: Side, history: number }> = [
  { ana: { locale: 'en', width: 1280 }, chen: { locale: 'zh-CN', width: 360 }, history: 560 },
  { ana: { locale: 'zh-CN', width: 360 }, chen: { locale: 'en', width: 1280 }, history: 560 },
  { ana: { locale: 'en', width: 360 }, chen: { locale: 'zh-CN', width: 1280 }, history: 230 },
  { ana: { locale: 'zh-CN', width: 1280 }, chen: { locale: 'en', width: 360 }, history: 230 }
]

for (const sc of SCENARIOS) {
  describe(`web UI for an office: Ana ${sc.ana.locale} ${sc.ana.width} px, 陈静 ${sc.chen.locale} ${sc.chen.width} px`, () => {
    let dir: string
    let a: ParleyNode
    let b: ParleyNode
    let c: ParleyNode
    let fresh: ParleyNode
    let browser: Browser
    const pages: Record<string, Page> = {}
    let pa: Page
    let pb: Page
    let pf: Page
    const ta: UiI18n = uiI18n(sc.ana.locale)
    const tb: UiI18n = uiI18n(sc.chen.locale)

    const page = async (side: Side, url: string, name: string): Promise<Page> => {
      const ctx: BrowserContext = await browser.newContext({ viewport: { width: side.width, height: side.width < 500 ? 740 : 800 }, locale: side.locale })
      await ctx.grantPermissions(['clipboard-read', 'clipboard-write'])
      await ctx.addInitScript({ content: FAKE_DESKTOP })
      const p = await ctx.newPage()
      p.on('pageerror', (err) => { console.error(`page error (${name}):`, err.message) })
      pages[name] = p
      await p.goto(url)
      return p
    }

    before(async () => {
      buildUi()
      dir = await tmpDir('parley-ui-office-')
      a = loopbackNode(join(dir, 'a'), { name: 'Ana Lima' })
      b = loopbackNode(join(dir, 'b'), { name: '陈静' })
      c = loopbackNode(join(dir, 'c'), { name: 'Ben' })
      fresh = loopbackNode(join(dir, 'f'))
      for (const n of [a, b, c, fresh]) await n.start()
      await connect(a, b); await connect(a, c); await connect(b, c); await connect(a, fresh)
      browser = await launchChromium()
      pa = await page(sc.ana, a.uiUrl as string, 'ana')
      pb = await page(sc.chen, b.uiUrl as string, 'chen')
      pf = await page(sc.ana, fresh.uiUrl as string, 'fresh')
    })

    after(async () => {
      await browser?.close()
      for (const n of [a, b, c, fresh]) await n?.stop()
      await removeDir(dir)
    })

    const ui = (name: string, fn: () => Promise<void>): void => { uiTest(name, () => pages, fn, `${sc.ana.locale}-${sc.ana.width}-`) }

    const chatOf = (n: ParleyNode): string => `li.person[data-peer="${n.peerId}"]`

    ui('first run asks for a display name', async () => {
      const { t } = ta
      await pf.locator('#welcome', { hasText: t.welcomeTitle }).waitFor()
      await assertFits(pf, 'the welcome')
      await shot(pf, sc.ana, 'welcome')
      await pf.locator('#welcome-name').fill('Dana')
      await pf.locator('#welcome-save').click()
      await pf.locator('#my-name', { hasText: 'Dana' }).waitFor()
      assert.equal(await pf.locator('#welcome').count(), 0)
      assert.equal(fresh.messenger.name, 'Dana')
    })

    ui('speaks the browser\'s language: page language, strings, dates', async () => {
      for (const [p, { t }, side] of [[pa, ta, sc.ana], [pb, tb, sc.chen]] as const) {
        assert.equal(await p.evaluate(() => document.documentElement.lang), side.locale)
        assert.equal((await p.locator('#new-group').textContent())?.trim(), `+ ${t.newGroup}`)
        assert.equal(await p.locator('#search-all').getAttribute('placeholder'), t.searchAll)
        assert.equal(await p.locator('#relay-status').textContent(), t.relayNone)
      }
    })

    ui('a narrow window is a list, then the chat with a way back; a wide one shows both', async () => {
      for (const [p, side] of [[pa, sc.ana], [pb, sc.chen]] as const) {
        const other = p === pa ? b : a
        await p.locator(chatOf(other)).waitFor()
        if (narrow(side)) {
          assert.equal(await p.locator('main.chat').isVisible(), false)
          await shot(p, side, 'list')
          await p.locator(chatOf(other)).click()
          await p.locator('#back').waitFor()
          assert.equal(await p.locator('aside.sidebar').isVisible(), false)
          // the header keeps room for the chat's name beside its buttons
          const nameWidth = await p.locator('#peer-name').evaluate(e => e.getBoundingClientRect().width)
          assert.ok(nameWidth >= 80, `the chat's name has ${nameWidth} px`)
          await p.locator('#back').click()
          await p.locator(chatOf(other)).waitFor()
          assert.equal(await p.locator('#conversation').count(), 0)
        } else {
          assert.equal(await p.locator('main.chat').isVisible(), true)
          assert.equal(await p.locator('aside.sidebar').isVisible(), true)
          await p.locator(chatOf(other)).click()
          assert.equal(await p.locator('#back').isVisible(), false)
          assert.equal(await p.locator('aside.sidebar').isVisible(), true)
        }
        // nothing wider than the window
        assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scrolling')
      }
    })

    ui('chats by last activity, with avatars and names (never raw IDs) in the previews', async () => {
      await c.messenger.sendMessage(a.peerId, 'hi from Ben')
      const first = pa.locator('#chats li').first()
      await until(async () => (await first.getAttribute('data-peer')) === c.peerId, 'Ben first after his message', 10_000, 100)
      assert.equal(await first.locator('.avatar').first().textContent(), 'B')
      assert.equal(await first.locator('.last').textContent(), 'hi from Ben')
      await a.messenger.createGroup('Team', [b.peerId, c.peerId])
      const team = pb.locator('li.group', { hasText: 'Team' })
      await team.waitFor()
      await until(async () => (await team.locator('.last').textContent()) === tb.t.opCreated('Ana Lima', 'Team'), 'op preview with names')
      assert.equal(await pb.locator('#chats li').first().getAttribute('data-group'), await team.getAttribute('data-group'))
      assert.doesNotMatch(await pb.locator('aside.sidebar').innerText(), /12D3KooW/)
    })

    ui('the composer grows, refuses over-long text with a count, and a long message is collapsed', async () => {
      const { t } = ta
      await openChat(pa, chatOf(b))
      const box = pa.locator('#text')
      const h1 = await box.evaluate(e => e.getBoundingClientRect().height)
      await box.fill('1\n2\n3\n4\n5')
      const h2 = await box.evaluate(e => e.getBoundingClientRect().height)
      assert.ok(h2 > h1 + 30, `grew from ${h1} to ${h2}`)
      await box.fill('x'.repeat(MAX_TEXT_CHARS + 3))
      await pa.locator('#text-count', { hasText: t.tooLong(3, MAX_TEXT_CHARS) }).waitFor()
      assert.equal(await pa.locator('#send').isDisabled(), true)
      const before = await pa.locator('.msg.mine').count()
      await box.press('Enter')
      await new Promise(resolve => setTimeout(resolve, 300))
      assert.equal(await pa.locator('.msg.mine').count(), before, 'nothing sent, nothing cut')
      assert.equal([...await box.inputValue()].length, MAX_TEXT_CHARS + 3, 'the text is kept')
      await shot(pa, sc.ana, 'too-long')
      const long = Array.from({ length: 30 }, (_, i) => `line ${i + 1} of the minutes`).join('\n')
      await box.fill(long)
      await box.press('Enter')
      await pa.locator('.msg.mine .body', { hasText: 'line 30 of the minutes' }).waitFor()
      await openChat(pb, chatOf(a))
      const msg = pb.locator('.msg', { hasText: 'line 1 of the minutes' })
      await msg.locator('.body.collapsed').waitFor()
      await msg.locator('button.more', { hasText: tb.t.showMore }).click()
      assert.equal(await msg.locator('.body.collapsed').count(), 0)
      await msg.locator('button.more', { hasText: tb.t.showLess }).waitFor()
    })

    ui('links open outside the app; emoji picker; copy', async () => {
      await pa.locator('#text').fill('the guide: https://intranet.example/guide?x=1 thanks')
      await pa.locator('#text').press('Enter')
      const link = pb.locator('.msg .body a', { hasText: 'https://intranet.example/guide?x=1' })
      await link.waitFor()
      assert.equal(await link.getAttribute('href'), 'https://intranet.example/guide?x=1')
      assert.equal(await link.getAttribute('target'), '_blank')
      assert.match(await link.getAttribute('rel') ?? '', /noopener/)
      await pb.locator('#emoji-button').click()
      await pb.locator('#emoji-picker .emoji').first().click()
      assert.equal(await pb.locator('#text').inputValue(), '😀')
      await pb.locator('#text').fill('')
      const msg = pb.locator('.msg', { hasText: 'the guide' })
      await msg.hover()
      await msg.locator('button.copy').click()
      await msg.locator('button.copy', { hasText: tb.t.copied }).waitFor()
      assert.equal(await pb.evaluate(async () => await navigator.clipboard.readText()), 'the guide: https://intranet.example/guide?x=1 thanks')
    })

    ui('reply with a quote, edit and recall (撤回) my own messages; the other side follows', async () => {
      const { t } = ta
      // Ana answers 陈静, quoting her
      await pb.locator('#text').fill('the doc is ready')
      await pb.locator('#text').press('Enter')
      await openChat(pa, chatOf(b))
      const target = pa.locator('.msg:not(.mine)', { hasText: 'the doc is ready' })
      await target.waitFor()
      await target.hover()
      await target.locator('button.reply').click()
      await pa.locator('#composing', { hasText: t.replyingTo('陈静') }).waitFor()
      await pa.locator('#text').fill('thanks, reading it now')
      await pa.locator('#text').press('Enter')
      const reply = pb.locator('.msg', { hasText: 'thanks, reading it now' })
      await reply.locator('.reply-quote', { hasText: 'the doc is ready' }).waitFor()
      // edit: the composer takes the text, Enter sends the new one
      const mine = pa.locator('.msg.mine', { hasText: 'thanks, reading it now' })
      await mine.hover()
      await mine.locator('button.edit').click()
      await pa.locator('#composing', { hasText: t.editing }).waitFor()
      // the composer takes the text in an effect after the render that shows "editing"
      await until(async () => (await pa.locator('#text').inputValue()) === 'thanks, reading it now', 'the composer holds the text being edited')
      await pa.locator('#text').fill('thanks, read it')
      await pa.locator('#text').press('Enter')
      await pb.locator('.msg', { hasText: 'thanks, read it' }).locator('.edited', { hasText: tb.t.edited }).waitFor()
      assert.equal(await pb.locator('.msg', { hasText: 'thanks, reading it now' }).count(), 0, 'the old text is gone')
      // recall asks first, then the message is gone on both sides
      await pa.locator('#text').fill('oops, wrong chat')
      await pa.locator('#text').press('Enter')
      await pb.locator('.msg', { hasText: 'oops, wrong chat' }).waitFor()
      const oops = pa.locator('.msg.mine', { hasText: 'oops, wrong chat' })
      await oops.hover()
      await oops.locator('button.recall').click()
      await pa.locator('#confirm-text', { hasText: t.confirmRecall }).waitFor()
      await pa.locator('#confirm-yes').click()
      await pa.locator('.msg.recalled', { hasText: t.recalledYou }).waitFor()
      await pb.locator('.msg.recalled', { hasText: tb.t.recalledBy('Ana Lima') }).waitFor()
      assert.equal(await pb.locator('.msg', { hasText: 'oops, wrong chat' }).count(), 0)
      await shot(pb, sc.chen, 'reply-edit-recall')
    })

    ui('day separators, full dates on hover, and a "new messages" divider', async () => {
      const { t, f } = tb
      await openChat(pb, chatOf(c))
      await a.messenger.sendMessage(b.peerId, 'first new one')
      await a.messenger.sendMessage(b.peerId, 'second new one')
      await until(async () => (await b.messenger.history(a.peerId)).some(m => m.text === 'second new one'), 'both stored at 陈静')
      // the unread count, in the list of a narrow window too
      await toList(pb)
      await pb.locator(`${chatOf(a)} .badge`, { hasText: '2' }).waitFor()
      assert.equal(await pb.locator(`${chatOf(a)} .badge`).isVisible(), true)
      await openChat(pb, chatOf(a))
      const divider = pb.locator('#unread-divider', { hasText: t.newMessages })
      await divider.waitFor()
      assert.equal(await pb.locator('#unread-divider + li.msg .body').textContent(), 'first new one')
      assert.equal(await pb.locator('.day-separator').first().textContent(), f.day(Date.now()))
      const time = pb.locator('.msg time').last()
      assert.match(await time.getAttribute('title') ?? '', /2\d{3}/)
      await shot(pb, sc.chen, 'chat')
    })

    ui('older history loads on scroll, page by page (past the old 500-message cap)', async () => {
      const { t } = tb
      const n = sc.history
      for (let i = 0; i < n; i++) await c.messenger.sendMessage(b.peerId, `history ${i}`)
      await until(async () => (await b.messenger.history(c.peerId, { limit: 1000 })).length >= n, 'all stored at 陈静', 60_000, 200)
      // all n unread (more than one page): opening the chat puts the "new messages" divider right above the oldest of them
      await toList(pb)
      await pb.locator(`${chatOf(c)} .badge`, { hasText: String(n) }).waitFor({ state: 'attached', timeout: 30_000 })
      await openChat(pb, chatOf(c))
      await pb.locator('#unread-divider', { hasText: t.newMessages }).waitFor({ state: 'attached' })
      assert.equal(await pb.locator('#unread-divider + li.msg .body').textContent(), 'history 0')
      // then, read, the chat opens at its newest page again and the older ones load on scroll
      await openChat(pb, chatOf(a))
      // every history call the page makes for this chat: each one a page of its own (a cursor), never the whole window again
      const calls: URL[] = []
      const onRequest = (r: { url: () => string }): void => {
        const u = new URL(r.url())
        if (u.pathname === `/v1/conversations/${encodeURIComponent(c.peerId)}/messages`) calls.push(u)
      }
      pb.on('request', onRequest)
      await openChat(pb, chatOf(c))
      await pb.locator('.msg', { hasText: `history ${n - 1}` }).waitFor()
      // (how many show now is not asserted: under load the page may already have scrolled on; the requests below prove the paging)
      const list = pb.locator('#messages')
      await until(async () => {
        await list.evaluate(e => { e.scrollTop = 0; e.dispatchEvent(new Event('scroll')) })
        return await pb.locator('.history-edge', { hasText: t.beginning }).isVisible()
      }, 'the beginning reached by scrolling', 30_000, 150)
      assert.equal(await pb.locator('.msg').count(), n)
      assert.equal(await pb.locator('.msg .body').first().textContent(), 'history 0')
      pb.off('request', onRequest)
      assert.deepEqual(calls.map(u => u.searchParams.get('limit')), calls.map(() => '100'), 'a constant page size')
      assert.equal(calls[0]?.searchParams.get('before'), null, 'the newest page first')
      const cursors = calls.slice(1).map(u => u.searchParams.get('before'))
      assert.ok(cursors.every(x => x !== null), 'then each page before the oldest shown')
      assert.equal(new Set(cursors).size, cursors.length, 'no page asked twice')
      assert.ok(calls.length <= Math.ceil(n / 100) + 1, `${calls.length} calls for ${n} messages`)
    })

    ui('search across every chat highlights the match and jumps to the message', async () => {
      const { t } = ta
      if (narrow(sc.ana) && await pa.locator('#back').isVisible()) await pa.locator('#back').click()
      await pa.locator('#search-all').fill('guide')
      await pa.locator('#search-summary', { hasText: t.searchHits(1, 'guide') }).waitFor()
      const hit = pa.locator('li.hit').first()
      assert.equal(await hit.locator('mark').textContent(), 'guide')
      await shot(pa, sc.ana, 'search')
      await hit.click()
      const focused = pa.locator('.msg.focused')
      await focused.waitFor()
      assert.match(await focused.textContent() ?? '', /the guide/)
      assert.equal(await focused.locator('mark').textContent(), 'guide')
      // the results stay for another pick; clearing the box brings the chats back
      if (await pa.locator('#back').isVisible()) await pa.locator('#back').click()
      await pa.locator('li.hit').first().waitFor()
      await pa.locator('#search-all').fill('')
      await pa.locator('#chats').waitFor()
    })

    ui('groups: the header lists members, an @mention notifies naming the group, leaving asks first', async () => {
      const group = `li.group[data-group="${a.messenger.listGroups()[0]?.conv ?? ''}"]`
      await openChat(pa, group)
      const head = await pa.locator('#peer-presence').textContent() ?? ''
      assert.ok(head.includes(ta.t.memberCount(3)) && head.includes('陈静') && head.includes('Ben'), head)
      await pb.evaluate(() => { (window as unknown as { __hidden: boolean }).__hidden = true; document.dispatchEvent(new Event('visibilitychange')) })
      await pa.locator('#text').pressSequentially('@陈')
      await pa.locator('#mention-list li', { hasText: '@陈静' }).waitFor()
      await pa.locator('#text').press('Enter')
      assert.equal(await pa.locator('#text').inputValue(), '@陈静 ')
      await pa.locator('#text').pressSequentially('please review')
      await pa.locator('#text').press('Enter')
      await c.messenger.sendMessage(a.messenger.listGroups()[0]?.conv ?? '', 'lunch?')
      const notes = async (): Promise<Array<{ title: string }>> => await pb.evaluate(() => (window as unknown as { __notes: Array<{ title: string }> }).__notes)
      await until(async () => (await notes()).some(n => n.title === tb.t.notifyMention('Ana Lima', 'Team')), 'mention notification', 10_000, 100)
      await until(async () => (await notes()).some(n => n.title === tb.t.notifyInGroup('Ben', 'Team')), 'group notification', 10_000, 100)
      await pb.evaluate(() => { (window as unknown as { __hidden: boolean }).__hidden = false; document.dispatchEvent(new Event('visibilitychange')) })
      await openChat(pb, group)
      await pb.locator('.msg.mentions-me .mention.to-me', { hasText: '@陈静' }).waitFor()
      await shot(pb, sc.chen, 'group')
      await pb.locator('#open-members').click()
      await pb.locator('#members').waitFor()
      await assertFits(pb, 'the members')
      await pb.locator('#members-leave').click()
      await pb.locator('#confirm-text', { hasText: tb.t.confirmLeave('Team') }).waitFor()
      await assertFits(pb, 'the question')
      await shot(pb, sc.chen, 'confirm-leave')
      await pb.keyboard.press('Escape')
      await until(async () => (await pb.locator('#confirm').count()) === 0, 'Esc closed the question')
      assert.equal(await pb.locator('#members').isVisible(), true)
      assert.equal(b.messenger.listGroups()[0]?.members.includes(b.peerId), true, 'still a member')
      await pb.keyboard.press('Escape')
      await until(async () => (await pb.locator('#members').count()) === 0, 'Esc closed the members')
    })

    ui('message info tells the state, the route and each recipient', async () => {
      const { t } = ta
      const mine = pa.locator('.msg.mine', { hasText: 'please review' })
      await until(async () => (await mine.locator('.state').getAttribute('data-state')) !== 'queued', 'delivered')
      await mine.hover()
      await mine.locator('button.info').click()
      // how it went (both directly on the LAN), and member by member: 陈静 has read it (her chat is open), Ben (no page) has it
      await pa.locator('#info-route', { hasText: t.routeDelivered(t.routeVia.lan) }).waitFor()
      await pa.locator(`#info-recipients li[data-peer="${b.peerId}"][data-state="read"] .via[data-via="lan"]`).waitFor()
      await pa.locator(`#info-recipients li[data-peer="${c.peerId}"][data-state="delivered"] .via[data-via="lan"]`).waitFor()
      assert.equal(await pa.locator(`#info-recipients li[data-peer="${b.peerId}"]`).textContent().then(x => x?.includes(t.state.read)), true)
      await assertFits(pa, 'the message info')
      await shot(pa, sc.ana, 'message-info')
      await pa.keyboard.press('Escape')
      await until(async () => (await pa.locator('#message-info').count()) === 0, 'Esc closed the info')
      // an incoming one says how it came
      const theirs = pa.locator('.msg:not(.mine)', { hasText: 'lunch?' })
      await theirs.hover()
      await theirs.locator('button.info').click()
      await pa.locator('#info-route', { hasText: t.routeReceived(t.routeVia.lan) }).waitFor()
      await pa.keyboard.press('Escape')
      await until(async () => (await pa.locator('#message-info').count()) === 0, 'Esc closed the info')
      // to someone who is away: queued, and why
      await fresh.stop()
      await until(async () => !a.host.isConnected(fresh.peerId), 'Dana gone')
      await openChat(pa, chatOf(fresh))
      await pa.locator('#text').fill('see you tomorrow')
      await pa.locator('#text').press('Enter')
      const queued = pa.locator('.msg.mine', { hasText: 'see you tomorrow' })
      await queued.hover()
      await queued.locator('button.info').click()
      await pa.locator('#info-route', { hasText: t.routeQueued }).waitFor()
      await pa.locator(`#info-recipients li[data-peer="${fresh.peerId}"][data-state="queued"]`).waitFor()
      await pa.keyboard.press('Escape')
    })

    ui('while our own node is unreachable, nothing about others is claimed', async () => {
      // Dana's page loses its node (stopped already by the test before; stopping twice does nothing)
      await fresh.stop()
      const { t } = ta
      await pf.locator('#offline', { hasText: t.linkDown }).waitFor()
      await pf.locator('#relay-status', { hasText: t.relayUnknown }).waitFor()
      assert.equal(await pf.locator(chatOf(a)).getAttribute('title'), t.presenceUnknown)
      assert.equal(await pf.locator(`${chatOf(a)} .dot.unknown`).count(), 1)
      // the node comes back (same data dir, so the token the page keeps; same port): the page recovers by itself, no stale error stays
      fresh = loopbackNode(join(dir, 'f'), { apiPort: Number(new URL(pf.url()).port) })
      await fresh.start()
      await until(async () => (await pf.locator('#offline').count()) === 0, 'the link banner gone', 20_000, 100)
      await until(async () => (await pf.locator('#relay-status').textContent()) === t.relayNone, 'the relay line known again', 20_000, 100)
      assert.equal(await pf.locator('.error[role="alert"]:not([hidden])').count(), 0, 'no error left over')
      // a page that loads while the node's API does not answer says so in words (not "Failed to fetch"), and starts once it does
      await pf.route(/\/v1\//, async (r) => { await r.abort('connectionrefused') })
      await pf.reload()
      const down = pf.locator('#start-error', { hasText: t.startFailed(t.error.ERR_UNREACHABLE) })
      await down.waitFor()
      assert.doesNotMatch(await down.textContent() ?? '', /fetch|ERR_/i)
      await pf.unroute(/\/v1\//)
      await pf.locator('#my-name', { hasText: 'Dana' }).waitFor({ timeout: 20_000 })
      assert.equal(await pf.locator('#start-error').count(), 0)
    })

    ui('the relay line tells the truth: a refused invite is not "connected"', async () => {
      const relay = new RelayServer({ dataDir: join(dir, 'relay'), listen: ['/ip4/127.0.0.1/tcp/0'] }, createLogger('relay', 'error'))
      await relay.start()
      const addr = relay.addresses()[0] as string
      const nodes: ParleyNode[] = []
      try {
        const good = await relay.mailbox.createInvite()
        const admitted = loopbackNode(join(dir, 'r-ok'), { name: 'Remote', relay: addr, invite: good.token, relayClient: { mailboxPollMs: 300 } })
        // a token the relay never issued (or one used up): the relay answers, and refuses
        const refused = loopbackNode(join(dir, 'r-no'), { name: 'Stranger', relay: addr, invite: 'not-issued-by-this-relay', relayClient: { mailboxPollMs: 300 } })
        for (const n of [admitted, refused]) { nodes.push(n); await n.start() }
        const side = sc.ana
        const { t } = ta
        const pOk = await page(side, admitted.uiUrl as string, 'relay-ok')
        const pNo = await page(side, refused.uiUrl as string, 'relay-refused')
        await until(() => admitted.relay.status().admitted === true && refused.relay.status().lastError !== null, 'the relay answered both', 30_000, 100)
        await pOk.locator('#relay-status', { hasText: t.relayConnected }).waitFor()
        await pNo.locator('#relay-status', { hasText: t.relayInviteRefused }).waitFor()
        assert.match(await pNo.locator('#relay-status').getAttribute('title') ?? '', new RegExp(t.relayRefusedHint.slice(0, 10)))
        await shot(pNo, side, 'relay-refused')
        await pOk.close(); await pNo.close()
      } finally {
        for (const n of nodes) await n.stop()
        await relay.stop()
      }
    })

    ui('settings: do not disturb, dark mode and the language switch', async () => {
      const p = pb
      const { t } = tb
      if (await p.locator('#back').isVisible()) await p.locator('#back').click()
      await p.locator('#open-settings').click()
      await p.locator('#settings').waitFor()
      await assertFits(p, 'the settings')
      await shot(p, sc.chen, 'settings')
      await p.locator('#set-dnd').check()
      await p.locator('#set-theme').selectOption('dark')
      await p.locator('#settings-save').click()
      await p.locator('#my-name .dnd-mark').waitFor()
      // the others see it beside her name
      await pa.locator(`${chatOf(b)} .dot.dnd`).waitFor({ state: 'attached' })
      assert.match(await pa.locator(chatOf(b)).getAttribute('title') ?? '', new RegExp(ta.t.presenceDnd))
      // the page's theme is set by an effect after the render that shows the saved settings
      await until(async () => (await p.evaluate(() => document.documentElement.dataset.theme)) === 'dark', 'dark theme applied')
      assert.equal(await p.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(20, 23, 28)')
      await shot(p, sc.chen, 'dark')
      // do not disturb: nothing pops up
      await p.evaluate(() => { const w = window as unknown as { __hidden: boolean, __notes: unknown[] }; w.__hidden = true; w.__notes.length = 0 })
      await a.messenger.sendMessage(b.peerId, 'quiet please')
      await until(async () => (await b.messenger.history(a.peerId)).some(m => m.text === 'quiet please'), 'stored')
      await new Promise(resolve => setTimeout(resolve, 300))
      assert.equal(await p.evaluate(() => (window as unknown as { __notes: unknown[] }).__notes.length), 0)
      await p.evaluate(() => { (window as unknown as { __hidden: boolean }).__hidden = false })
      // the other language, then back
      const other: Locale = sc.chen.locale === 'en' ? 'zh-CN' : 'en'
      await p.locator('#open-settings').click()
      await p.locator('#set-locale').selectOption(other)
      await p.locator('#set-theme').selectOption('auto')
      await p.locator('#settings-save').click()
      await p.locator('#open-settings[title="' + uiI18n(other).t.settings + '"]').waitFor()
      await until(async () => (await p.evaluate(() => document.documentElement.lang)) === other, `the page's lang is ${other}`)
      await p.locator('#open-settings').click()
      await p.locator('#set-locale').selectOption('auto')
      await p.locator('#settings-save').click()
      await p.locator('#open-settings[title="' + t.settings + '"]').waitFor()
    })

    ui('presence: a colleague idle at the keyboard shows as away to the others, and active again when back', async () => {
      const { t } = ta
      // Ben opens his page, with a short idle time, and leaves it alone
      const pc = await page({ locale: sc.chen.locale, width: 1280 }, `${c.uiUrl as string}&idle=3000`, 'ben')
      await pc.locator('#my-name', { hasText: 'Ben' }).waitFor()
      await pa.locator(`${chatOf(c)} .dot.away`).waitFor({ state: 'attached', timeout: 15_000 })
      assert.match(await pa.locator(chatOf(c)).getAttribute('title') ?? '', new RegExp(t.presenceAway.replace(/[()（）]/g, '.')))
      assert.equal((await a.messenger.listPeers()).find(p => p.peerId === c.peerId)?.status, 'away')
      // the list, where the dot is (a narrow window shows the open chat instead)
      await toList(pa)
      await shot(pa, sc.ana, 'presence-away')
      // back at the keyboard
      await pc.mouse.move(20, 20)
      await pc.keyboard.press('Shift')
      await pa.locator(`${chatOf(c)} .dot.lan`).waitFor({ state: 'attached', timeout: 15_000 })
      await pc.context().close()
      delete pages.ben
    })

    ui('keyboard: Ctrl+K switches chats, Tab shows where the focus is, Esc closes dialogs', async () => {
      const p = pa
      await p.keyboard.press('Control+k')
      await p.locator('#switcher-input').waitFor()
      await p.keyboard.type('Ben')
      // an input method's Enter (拼音 → 陈静) only confirms its characters: no chat is picked yet
      await p.locator('#switcher-input').evaluate((e) => {
        e.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', isComposing: true, bubbles: true, cancelable: true }))
        e.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', keyCode: 229, bubbles: true, cancelable: true }))
      })
      assert.equal(await p.locator('#switcher').count(), 1, 'still open while composing')
      await p.keyboard.press('Enter')
      await p.locator('#peer-name', { hasText: 'Ben' }).waitFor()
      await p.keyboard.press('Control+k')
      await p.locator('#switcher').waitFor()
      await assertFits(p, 'the quick switcher')
      await p.keyboard.press('Escape')
      await until(async () => (await p.locator('#switcher').count()) === 0, 'Esc closed the switcher')
      if (await p.locator('#back').isVisible()) await p.locator('#back').click()
      await p.locator('#open-settings').focus()
      await p.keyboard.press('Enter')
      await p.locator('#settings').waitFor()
      await p.keyboard.press('Escape')
      await until(async () => (await p.locator('#settings').count()) === 0, 'Esc closed the settings')
      await p.locator('#search-all').focus()
      // the directory, the other offices (when a relay is set), the new group, then the first chat
      await p.keyboard.press('Tab')
      assert.equal(await p.evaluate(() => document.activeElement?.id), 'open-directory')
      await p.keyboard.press('Tab')
      if (await p.evaluate(() => document.activeElement?.id) === 'open-offices') await p.keyboard.press('Tab')
      assert.equal(await p.evaluate(() => document.activeElement?.id), 'new-group')
      await p.keyboard.press('Tab')
      const focused = await p.evaluate(() => {
        const e = document.activeElement as HTMLElement
        return { li: e.matches('#chats li'), outline: getComputedStyle(e).outlineStyle }
      })
      assert.deepEqual(focused, { li: true, outline: 'solid' })
      await p.keyboard.press('Enter')
      await p.locator('#conversation').waitFor()
    })
  })
}
