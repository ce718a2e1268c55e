/**
 * Accounts with several devices in the web UI (issue 11), in Chromium with real nodes on loopback: Ana's
 * desktop makes a link code in Settings → Devices (text and QR code); her new laptop, at its first run,
 * links with it; the desktop lists both; Ben's message reaches both pages, the laptop answers and the
 * desktop shows the answer as Ana's; the desktop revokes the laptop. Beside them, a colleague whose
 * Parley predates accounts shows "needs an update". Once in English at 1280 px, once in Chinese at 360 px;
 * and once a laptop away from the office links through the relay with the admin's invite in the same screen;
 * every text looked for comes from the UI's catalogs. Screenshots go to test-results/screens/ (and, with
 * UPDATE_SCREENSHOTS=1, to docs/img/ for the user guides).
 */
import { describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { connect, loopbackNode, removeDir, speakV01, tmpDir, until } from '../helpers/nodes.js'
import { buildUi, isNarrow, launchChromium, openChat, screen as shot, toList, uiTest, type Side } from '../helpers/browser.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import { parseLinkCode } from '../../core/protocol/account.js'
import { inviteLink } from '../../core/protocol/invite-link.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'
import { uiI18n } from '../../app/ui/src/i18n/index.js'

const SIDES: Side[] = [{ locale: 'en', width: 1280 }, { locale: 'zh-CN', width: 360 }]

for (const side of SIDES) {
  describe(`web UI, accounts with several devices: ${side.locale} ${side.width} px`, () => {
    let dir: string
    let desk: ParleyNode
    let laptop: ParleyNode
    let ben: ParleyNode
    let old: ParleyNode
    let browser: Browser
    const pages: Record<string, Page> = {}
    const { t } = uiI18n(side.locale)
    let code = ''

    const page = async (url: string, name: string): Promise<Page> => {
      const ctx = await browser.newContext({ viewport: { width: side.width, height: isNarrow(side) ? 740 : 800 }, locale: side.locale })
      const p = await ctx.newPage()
      p.on('pageerror', (err) => { console.error(`page error (${name}):`, err.message) })
      pages[name] = p
      await p.goto(url)
      return p
    }
    const pd = (): Page => pages.desk as Page
    const pl = (): Page => pages.laptop as Page
    const chatOf = (n: ParleyNode): string => `li.person[data-peer="${n.peerId}"]`

    before(async () => {
      buildUi()
      dir = await tmpDir('parley-ui-devices-')
      desk = loopbackNode(join(dir, 'desk'), { name: 'Ana Lima' })
      laptop = loopbackNode(join(dir, 'laptop'))
      ben = loopbackNode(join(dir, 'ben'), { name: 'Ben' })
      old = loopbackNode(join(dir, 'old'), { name: 'Olga' })
      for (const n of [desk, laptop, ben, old]) await n.start()
      speakV01(old)
      await connect(desk, laptop); await connect(desk, ben); await connect(laptop, ben); await connect(desk, old)
      browser = await launchChromium()
      await page(desk.uiUrl as string, 'desk')
      await page(laptop.uiUrl as string, 'laptop')
    })

    after(async () => {
      await browser?.close()
      for (const n of [desk, laptop, ben, old]) await n?.stop()
      await removeDir(dir)
    })

    const ui = (name: string, fn: () => Promise<void>): void => { uiTest(name, () => pages, fn, `devices-${side.locale}-`) }

    const openDevices = async (p: Page): Promise<void> => {
      await toList(p)
      await p.locator('#open-settings').click()
      await p.locator('#settings-devices').click()
      await p.locator('#devices #device-list').waitFor()
    }

    ui('Settings → Devices on the first computer: this one device, then a one-time link code as text and QR code', async () => {
      const p = pd()
      await p.locator('#welcome').waitFor({ state: 'detached' })
      await openDevices(p)
      assert.equal(await p.locator('#device-list li').count(), 1)
      assert.ok((await p.locator('#device-list li').textContent())?.includes(t.deviceThis))
      await p.locator('#link-make').click()
      code = (await p.locator('#link-code').textContent()) ?? ''
      assert.equal(parseLinkCode(code)?.device, desk.peerId, 'the code names this device')
      await p.locator('#link-qr').waitFor()
      assert.ok(await p.locator('#link-qr').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0), 'the QR code is drawn')
      await shot(p, side, 'devices-link')
    })

    ui('the new computer\'s first run links it to the account with that code, and takes the account\'s name', async () => {
      const p = pl()
      await p.locator('#welcome').waitFor()
      await p.locator('#welcome-link', { hasText: t.linkExisting }).click()
      await p.locator('#link-join', { hasText: t.linkJoinTitle }).waitFor()
      assert.ok((await p.locator('#link-join').textContent())?.includes(t.linkHistoryWarning), 'it says earlier messages do not come')
      await p.locator('#link-join-code').fill(code)
      await p.locator('#link-join-label').fill(side.locale === 'en' ? 'laptop' : '笔记本')
      await shot(p, side, 'link-join')
      await p.locator('#link-join-submit').click()
      await p.locator('#welcome').waitFor({ state: 'detached' })
      assert.equal(laptop.messenger.account, desk.peerId)
      await p.locator('#my-name', { hasText: 'Ana Lima' }).waitFor()
      assert.equal(laptop.messenger.accounts.ownState().devices.length, 2)
    })

    ui('the first computer lists both devices at once; the laptop says history before the link stays on the other one', async () => {
      const p = pd()
      const label = side.locale === 'en' ? 'laptop' : '笔记本'
      await p.locator('#device-list li', { hasText: label }).waitFor()
      assert.equal(await p.locator('#device-list li').count(), 2)
      assert.equal(await p.locator(`#device-list li[data-peer="${laptop.peerId}"] .device-revoke`).count(), 1, 'the other device can be revoked')
      await p.locator('#link-make').waitFor()
      assert.equal(await p.locator('#link-code').count(), 0, 'the used code is gone')
      // the laptop was a stranger in the list until it linked; now it is us
      assert.equal(await p.locator(chatOf(laptop)).count(), 0)
      await shot(p, side, 'devices')
      await p.locator('#devices-close').click()
      await p.locator('#settings-cancel').click()
      const pl2 = pl()
      await openDevices(pl2)
      await pl2.locator('#history-note').waitFor()
      assert.equal(await pl2.locator('.device-revoke').count(), 0, 'only the first computer revokes')
      assert.ok((await pl2.locator('#devices').textContent())?.includes(t.linkOnFirstDevice))
      await pl2.locator('#devices-close').click()
      await pl2.locator('#settings-cancel').click()
    })

    ui('Ben writes to Ana: both computers show it; the laptop answers, and the desktop shows the answer as Ana\'s', async () => {
      await until(() => ben.messenger.accounts.devicesOf(desk.peerId).includes(laptop.peerId), 'Ben knows the laptop', 30_000)
      await ben.messenger.sendMessage(desk.peerId, 'lunch at 12?')
      for (const p of [pd(), pl()]) {
        await openChat(p, chatOf(ben))
        await p.locator('#messages .msg', { hasText: 'lunch at 12?' }).waitFor()
      }
      const p = pl()
      await p.locator('#text').fill('yes, from my laptop')
      await p.locator('#send').click()
      await pd().locator('#messages .msg.mine', { hasText: 'yes, from my laptop' }).waitFor()
      await until(async () => (await ben.messenger.history(desk.peerId)).some(m => m.text === 'yes, from my laptop'), 'at Ben', 30_000)
      // Ben's chat header on Ana's side is one person; Ben sees one Ana with two devices
      const ana = (await ben.messenger.listPeers()).filter(x => x.peerId === desk.peerId)
      assert.equal(ana.length, 1)
      assert.equal(ana[0]?.devices.length, 2)
    })

    ui('a colleague on Parley from before accounts shows "needs an update" in the list and in the chat', async () => {
      const p = pd()
      await toList(p)
      const row = p.locator(chatOf(old))
      await row.locator('.update-mark', { hasText: t.needsUpdateShort }).waitFor()
      await openChat(p, chatOf(old))
      await p.locator('#needs-update', { hasText: t.needsUpdateBanner('Olga') }).waitFor()
      await shot(p, side, 'needs-update')
      // Ben is not old
      await openChat(p, chatOf(ben))
      assert.equal(await p.locator('#needs-update').count(), 0)
    })

    ui('revoking the laptop from the desktop: gone from the list, and nothing sent afterwards is sealed to it', async () => {
      const p = pd()
      await openDevices(p)
      await p.locator(`#device-list li[data-peer="${laptop.peerId}"] .device-revoke`).click()
      await p.locator('#confirm-text', { hasText: t.deviceRevokeConfirm }).waitFor()
      await p.locator('#confirm-yes').click()
      await until(async () => await p.locator('#device-list li').count() === 1, 'one device left', 30_000)
      assert.deepEqual(desk.messenger.accounts.ownState().revoked, [laptop.peerId])
      await until(() => !ben.messenger.accounts.devicesOf(desk.peerId).includes(laptop.peerId), 'Ben learns the revocation', 30_000)
      const m = await ben.messenger.sendMessage(desk.peerId, 'after the revocation')
      assert.ok(!m.envelope.keys.some(k => k.to === laptop.peerId), 'nobody seals to the revoked laptop')
      await p.locator('#devices-close').click()
      await p.locator('#settings-cancel').click()
      await openChat(p, chatOf(ben))
      await p.locator('#messages .msg', { hasText: 'after the revocation' }).waitFor()
    })
  })
}

describe('web UI: linking a laptop away from the office, through the relay, with an invite in the first-run screen', () => {
  let dir: string
  let relay: RelayServer
  let desk: ParleyNode
  let laptop: ParleyNode
  let browser: Browser
  const pages: Record<string, Page> = {}

  before(async () => {
    buildUi()
    dir = await tmpDir('parley-ui-devices-relay-')
    relay = new RelayServer({ dataDir: join(dir, 'relay'), listen: ['/ip4/127.0.0.1/tcp/0'] }, createLogger('relay', 'error'))
    await relay.start()
    const relayAddr = relay.addresses()[0] as string
    // the desktop at the office uses the relay; the laptop knows nothing yet (no LAN between them, no relay set)
    desk = loopbackNode(join(dir, 'desk'), { name: 'Ana Lima', relay: relayAddr, relayClient: { mailboxPollMs: 300 } })
    laptop = loopbackNode(join(dir, 'laptop'), { relayClient: { mailboxPollMs: 300 } })
    await desk.start(); await laptop.start()
    await relay.mailbox.admit(desk.peerId, 'allow-list')
    await desk.host.reconnectRelay()
    await until(() => desk.relay.status().admitted === true, 'the desktop at the relay', 30_000)
    browser = await launchChromium()
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en' })
    pages.laptop = await ctx.newPage()
    await pages.laptop.goto(laptop.uiUrl as string)
  })
  after(async () => {
    await browser?.close()
    for (const n of [desk, laptop]) await n?.stop()
    await relay?.stop()
    await removeDir(dir)
  })

  uiTest('the code and the admin\'s invite link in the first-run screen: the laptop joins the relay, then the account', () => pages, async () => {
    const p = pages.laptop as Page
    const { code } = desk.messenger.linking.createCode()
    const invite = inviteLink(relay.addresses()[0] as string, (await relay.mailbox.createInvite()).token)
    await p.locator('#welcome-link').click()
    await p.locator('#link-join-code').fill(code)
    await p.locator('#link-join-invite').fill(invite)
    await p.locator('#link-join-submit').click()
    await p.locator('#welcome').waitFor({ state: 'detached', timeout: 45_000 })
    assert.equal(laptop.messenger.account, desk.peerId)
    assert.equal(laptop.host.reach(desk.peerId), 'relay', 'through the relay\'s circuit')
    assert.equal(laptop.relay.status().admitted, true)
    await p.locator('#my-name', { hasText: 'Ana Lima' }).waitFor()
  }, 'devices-relay-')
})
