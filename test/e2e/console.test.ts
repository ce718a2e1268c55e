/**
 * The relay console end to end in Chromium (playwright-core, Debian's
 * chromium): log in, create an invite, redeem it from a real node, see the
 * user appear, remove them, see them refused; the directory import, policy
 * and charts; in English and Chinese. Screenshots land in test-results/ when
 * a test fails; the app's directory in test-results/screens/ (and docs/img/ with UPDATE_SCREENSHOTS=1).
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import type { Browser, Page } from 'playwright-core'
import { buildUi, launchChromium, screen } from '../helpers/browser.js'
import { loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'
import { parseInviteLink } from '../../core/protocol/invite-link.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import { uiI18n } from '../../app/ui/src/i18n/index.js'
import { createI18n } from '../../app/shared/i18n.js'
import { en, zhCN } from '../../app/console/src/messages.js'

/** the console's own words, as the page shows them */
const consoleText = (locale: 'en' | 'zh-CN'): ReturnType<typeof en> => createI18n({ en, 'zh-CN': zhCN }, locale).t

const ROOT = new URL('../../', import.meta.url).pathname
const RESULTS = join(ROOT, 'test-results')

describe('relay console in Chromium', () => {
  let dir: string
  let relay: RelayServer
  let browser: Browser
  let page: Page
  let url: string
  let token: string
  const nodes: ParleyNode[] = []

  before(async () => {
    // the directory test opens a node's web UI too
    buildUi()
    dir = await tmpDir('parley-rcon-')
    relay = new RelayServer({ dataDir: join(dir, 'relay'), listen: ['/ip4/127.0.0.1/tcp/0'], admin: { port: 0, sampleIntervalMs: 300 } }, createLogger('relay', 'error'))
    await relay.start()
    url = relay.admin.consoleUrl as string
    token = (await readFile(join(dir, 'relay', 'admin-token'), 'utf8')).trim()
    browser = await launchChromium()
    page = await (await browser.newContext({ viewport: { width: 1200, height: 800 }, locale: 'en-US' })).newPage()
    page.on('pageerror', (err) => { console.error('page error:', err.message) })
    // the removal asks for confirmation
    page.on('dialog', (d) => { void d.accept() })
  })
  after(async () => {
    await browser?.close()
    for (const n of nodes) await n.stop()
    await relay?.stop()
    await removeDir(dir)
  })

  const ui = (name: string, fn: () => Promise<void>): void => {
    it(name, async () => {
      try {
        await fn()
      } catch (err) {
        await mkdir(RESULTS, { recursive: true })
        await page.screenshot({ path: join(RESULTS, `console-${name.replace(/\W+/g, '-').slice(0, 60)}.png`), fullPage: true }).catch(() => {})
        throw err
      }
    })
  }

  ui('serves the console with a strict CSP and shows the login form; a wrong token is refused', async () => {
    const res = await fetch(url)
    assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/)
    assert.doesNotMatch(res.headers.get('content-security-policy') ?? '', /unsafe-inline|unsafe-eval/)
    await page.goto(url)
    await page.getByTestId('secret').fill('not the token')
    await page.getByTestId('login').click()
    await page.getByRole('alert').filter({ hasText: 'Login failed' }).waitFor()
  })

  ui('logs in with the token', async () => {
    await page.getByTestId('secret').fill(token)
    await page.getByTestId('login-name').fill('Dana')
    await page.getByTestId('login').click()
    await page.getByText('Logged in as console:Dana').waitFor()
  })

  ui('creates an invite shown as a link and a QR code; a real node redeems it and appears as a user', async () => {
    await page.getByTestId('tab-invites').click()
    await page.getByTestId('invite-uses').fill('1')
    await page.getByTestId('invite-note').fill('Ming 的笔记本')
    await page.getByTestId('create-invite').click()
    const link = (await page.getByTestId('invite-link').textContent()) ?? ''
    assert.match(link, /^parley:\/\/join\?/)
    const qrLoaded = await page.locator('[data-testid="created-invite"] img').evaluate(async (img: HTMLImageElement) => {
      await img.decode().catch(() => {})
      return img.naturalWidth > 0
    })
    assert.ok(qrLoaded, 'the QR code image loads')
    await page.locator('table[data-testid="invites"]').getByText('Ming 的笔记本').waitFor()
    const { relay: addr, invite } = parseInviteLink(link)
    const n = loopbackNode(join(dir, 'ming'), { name: 'Ming', relay: addr, invite, host: { redialIntervalMs: 300 }, relayClient: { mailboxPollMs: 300 } })
    await n.start()
    nodes.push(n)
    await until(() => n.relay.status().admitted === true, 'node admitted', 15_000)
    await page.getByTestId('tab-users').click()
    const row = page.locator(`tr[data-peer="${n.peerId}"]`)
    await row.waitFor({ timeout: 15_000 })
    await row.getByText('online').waitFor({ timeout: 15_000 })
    // the invite now names who redeemed it
    await page.getByTestId('tab-invites').click()
    await page.locator('table[data-testid="invites"]').getByText(n.peerId).waitFor()
  })

  ui('removes the user: the node is refused at once', async () => {
    const n = nodes[0] as ParleyNode
    await page.getByTestId('tab-users').click()
    await page.locator(`tr[data-peer="${n.peerId}"]`).getByTestId('remove-user').click()
    await page.locator(`tr[data-peer="${n.peerId}"]`).waitFor({ state: 'detached', timeout: 10_000 })
    assert.equal(relay.mailbox.isAdmitted(n.peerId), false)
    await until(() => n.relay.status().admitted === false, 'node told it is refused', 15_000)
    assert.equal(n.relay.status().lastError?.code, 'ERR_NOT_ADMITTED')
    await until(() => !n.host.addresses().some(a => a.includes('/p2p-circuit')), 'reservation gone', 15_000)
  })

  ui('draws traffic charts from the relay\'s own samples: real deposits show in the deposits chart', async () => {
    // two admitted nodes, one of them away: what the other writes to it is deposited at the relay
    const inv = await relay.admin.service.createInvite('test', { uses: 2 })
    const start = async (name: string): Promise<ParleyNode> => {
      const n = loopbackNode(join(dir, name), { name, relay: relay.addresses()[0], invite: inv.token, messenger: { depositAfterMs: 100 }, relayClient: { mailboxPollMs: 300 } })
      await n.start()
      nodes.push(n)
      await until(() => n.relay.status().admitted === true, `${name} admitted`, 15_000)
      return n
    }
    const sender = await start('Sender')
    const away = await start('Away')
    await away.stop()
    for (let i = 0; i < 3; i++) await sender.messenger.sendMessage(away.peerId, `while you were out ${i}`)
    await until(async () => (await relay.stats()).mailbox.messages === 3, 'three deposited', 15_000)
    await page.getByTestId('tab-overview').click()
    await page.locator('[data-testid="chart-connections"] polyline').waitFor({ timeout: 15_000 })
    // the deposits chart drew a rate above zero (its peak), and the tiles count what the relay holds
    const deposits = page.getByTestId('chart-deposits')
    await until(async () => Number(await deposits.getAttribute('data-max')) > 0, 'deposits drawn', 20_000, 200)
    await deposits.locator('polyline').waitFor()
    assert.ok(Number(await page.getByTestId('stat-users').textContent()) >= 2)
  })

  ui('imports a directory CSV and offers the links and the sheet', async () => {
    const csv = '姓名,部门,邮箱\n"王, 小明",销售部/华东,wang@example.com\n"Li ""Lee"" Na",R&D,li@example.com\n佐藤 美玲,财务部,sato@example.com\n'
    await writeFile(join(dir, 'staff.csv'), csv)
    await page.getByTestId('tab-directory').click()
    await page.getByTestId('import-file').setInputFiles(join(dir, 'staff.csv'))
    await page.getByTestId('import-result').filter({ hasText: 'Imported 3 people' }).waitFor()
    await page.locator('table[data-testid="people"]').getByText('王, 小明').waitFor()
    await page.locator('table[data-testid="people"]').getByText('Li "Lee" Na').waitFor()
    const sheet = await page.evaluate(async () => await (await fetch('/api/v1/directory/sheet.html')).text())
    assert.equal(sheet.match(/<div class="card">/g)?.length, 3)
  })

  ui('the app shows the imported directory as a department tree, in both languages', async () => {
    const people = await relay.admin.service.listPeople()
    const wang = people.find(p => p.name === '王, 小明')
    assert.ok(wang !== undefined)
    const n = loopbackNode(join(dir, 'wang'), { name: '王小明', relay: relay.addresses()[0], invite: wang.invite, relayClient: { mailboxPollMs: 300 } })
    await n.start()
    nodes.push(n)
    await until(() => n.relay.status().admitted === true, 'wang admitted', 15_000)
    for (const locale of ['zh-CN', 'en'] as const) {
      const { t } = uiI18n(locale)
      const app = await (await browser.newContext({ locale, viewport: { width: 1000, height: 760 } })).newPage()
      app.on('pageerror', (err) => { console.error('page error:', err.message) })
      await app.goto(n.uiUrl as string)
      await app.locator('#open-directory', { hasText: t.directory }).click()
      const tree = app.locator('#directory')
      await tree.getByRole('heading', { name: t.directoryTitle }).waitFor()
      // 销售部/华东: a department inside a department
      const east = tree.locator('details[data-department="销售部"] details[data-department="华东"]')
      await east.locator('li.directory-person', { hasText: '王, 小明' }).getByText(t.directoryYou).waitFor()
      await tree.locator('details[data-department="财务部"] li.directory-person', { hasText: '佐藤 美玲' }).getByText(t.directoryNoDevice).waitFor()
      await tree.locator('details[data-department="R&D"] li.directory-person', { hasText: 'Li "Lee" Na' }).waitFor()
      // search narrows the tree
      await app.locator('#directory-search').fill('sato@')
      await until(async () => (await tree.locator('li.directory-person').count()) === 1, 'one match')
      await screen(app, { locale, width: 1000 }, 'directory')
      // no match says so, rather than showing nothing
      await app.locator('#directory-search').fill('nobody-here')
      await app.locator('#directory-none', { hasText: t.directoryNoMatch('nobody-here') }).waitFor()
      assert.equal(await tree.locator('li.directory-person').count(), 0)
      await app.keyboard.press('Escape')
      await until(async () => (await app.locator('#directory').count()) === 0, 'Esc closed the directory')
      await app.context().close()
    }
  })

  ui('policy: a bad value is refused with the reason, a good one applies', async () => {
    await page.getByTestId('tab-policy').click()
    // checked in the form against the relay's own ranges (the relay checks again)
    await page.getByTestId('policy-quota').fill('20000000')
    await page.getByTestId('policy-save').click()
    await page.getByTestId('policy-message').filter({ hasText: '1 to 10,000,000' }).waitFor()
    await page.getByTestId('policy-quota').fill('1234')
    await page.getByTestId('policy-save').click()
    await page.getByTestId('policy-message').filter({ hasText: 'Saved and applied' }).waitFor()
    assert.equal(relay.admin.policy.effective().quotaMessages, 1234)
    // only the changed key is pinned; the retention still follows the config file
    assert.equal(relay.admin.policy.view().source.mailboxTtlMs, 'config')
    await page.getByText('Reset to config file').first().click()
    await until(() => relay.admin.policy.effective().quotaMessages === 50_000, 'reset applied')
  })

  ui('speaks Chinese: a bad policy value and a bad CSV file are refused in Chinese, in days and by line', async () => {
    const zh = consoleText('zh-CN')
    await page.getByTestId('language').selectOption('zh-CN')
    await page.getByTestId('tab-policy').filter({ hasText: '策略' }).click()
    // the form's units: days and MiB, not ms and bytes
    await page.getByTestId('policy-ttl').fill('0')
    await page.getByTestId('policy-save').click()
    const ttl = page.getByTestId('policy-message').filter({ hasText: zh.refusal.policyTtl(1, 3650) })
    await ttl.waitFor()
    assert.match(await ttl.textContent() ?? '', /分钟.*天/)
    await page.getByTestId('policy-ttl').fill('7')
    await page.getByTestId('policy-quota-mb').fill('0.5')
    await page.getByTestId('policy-save').click()
    await page.getByTestId('policy-message').filter({ hasText: zh.refusal.policyBytes(1, 1_048_576) }).waitFor()
    assert.doesNotMatch(await page.getByTestId('policy-message').textContent() ?? '', /bytes|ms\b|must/)
    await page.getByTestId('tab-policy').click()
    // the relay's own refusal of a CSV file (only the relay can check it), worded by the console: each line named, in Chinese
    await writeFile(join(dir, 'bad.csv'), '姓名,部门,邮箱\n,销售部,a@example.com\n张伟,财务部,zhang@example.com\n张三,财务部,zhang@example.com\n')
    await page.getByTestId('tab-directory').click()
    await page.getByTestId('import-file').setInputFiles(join(dir, 'bad.csv'))
    const csv = page.getByTestId('import-result')
    await csv.filter({ hasText: '第 2 行：姓名为空。' }).waitFor()
    assert.equal(await csv.textContent(), zh.error(zh.refusal.csvLines(2, [zh.refusal.csvLine(2, zh.refusal.csvNameEmpty), zh.refusal.csvLine(4, zh.refusal.csvDuplicate(3))])))
    assert.doesNotMatch(await csv.textContent() ?? '', /line|the |not imported/)
    await mkdir(join(RESULTS, 'screens'), { recursive: true })
    await page.screenshot({ path: join(RESULTS, 'screens', 'zh-CN-wide-console-csv-error.png') })
    await page.getByTestId('language').selectOption('en')
  })

  // issue 17's file part (issue 13): the file store's usage and its policy, in English and Chinese
  ui('the file store: usage on the overview; its retention, quota and largest file in the policy form, in both languages', async () => {
    await page.getByTestId('tab-overview').click()
    const en = consoleText('en')
    await page.getByTestId('stat-files').filter({ hasText: en.filesKeptLine(0, '0 B') }).waitFor()
    await page.getByTestId('tab-policy').click()
    await page.getByTestId('policy-file-ttl').fill('1')
    await page.getByTestId('policy-max-file-mb').fill('64')
    await page.getByTestId('policy-save').click()
    await page.getByTestId('policy-message').filter({ hasText: 'Saved and applied' }).waitFor()
    assert.deepEqual(relay.fileStore.limits, { ...relay.fileStore.limits, ttlMs: 24 * 3600_000, maxFileBytes: 64 * 1024 * 1024 })
    const zh = consoleText('zh-CN')
    await page.getByTestId('language').selectOption('zh-CN')
    await page.getByTestId('policy-file-quota-mb').fill('-1')
    await page.getByTestId('policy-save').click()
    await page.getByTestId('policy-message').filter({ hasText: zh.policyFileQuota(16 * 1024 * 1024) }).waitFor()
    await page.getByTestId('tab-overview').click()
    await page.getByTestId('stat-files').filter({ hasText: zh.filesKeptLine(0, '0 B') }).waitFor()
    await page.getByTestId('language').selectOption('en')
    await page.getByTestId('tab-policy').click()
    for (const k of ['fileTtlMs', 'maxFileBytes']) await relay.admin.service.setPolicy('test', { reset: [k] })
  })

  ui('speaks Chinese: tabs, audit log in words, the language switch, and a wrong login', async () => {
    const zh = consoleText('zh-CN')
    await page.getByTestId('language').selectOption('zh-CN')
    await page.getByTestId('tab-audit').filter({ hasText: '审计日志' }).click()
    const audit = page.locator('table[data-testid="audit"]')
    // the action in words, its id kept as the cell's title
    const removed = audit.locator('td[data-action="user.remove"]').first()
    await removed.waitFor()
    assert.equal(await removed.textContent(), zh.auditAction['user.remove'])
    assert.equal(await removed.getAttribute('title'), 'user.remove')
    assert.equal(await audit.locator('td[data-action="invite.create"]').first().textContent(), zh.auditAction['invite.create'])
    await audit.getByText('console:Dana').first().waitFor()
    await page.getByTestId('tab-users').filter({ hasText: '用户' }).waitFor()
    // the Federation tab: the relay's refusal of a bad pairing token in the console's Chinese words, not the relay's English
    await page.getByTestId('tab-federation').filter({ hasText: zh.fedTab }).click()
    await page.getByTestId('fed-add-token').fill('parley-fed:不完整')
    await page.getByTestId('fed-add').click()
    const code = relay.admin.policy.effective().federationAllowed ? 'ERR_FED_PAIRING' : 'ERR_FEDERATION_OFF'
    const fed = page.getByRole('alert').filter({ hasText: zh.error(zh.errorCode[code] as string) })
    await fed.waitFor()
    assert.doesNotMatch(await fed.textContent() ?? '', /[a-z]{4,}|ERR_/, 'no English')
    const zhPage = await (await browser.newContext({ locale: 'zh-CN' })).newPage()
    await zhPage.goto(url)
    await zhPage.getByRole('heading', { name: '登录中继控制台' }).waitFor()
    // a wrong token, said in Chinese
    await zhPage.getByTestId('secret').fill('不是令牌')
    await zhPage.getByTestId('login').click()
    const wrong = zhPage.getByRole('alert').filter({ hasText: zh.loginFailed(zh.refusal.loginWrong) })
    await wrong.waitFor()
    assert.doesNotMatch(await wrong.textContent() ?? '', /[a-z]{4,}/, 'no English')
    await zhPage.close()
    await page.getByTestId('language').selectOption('en')
  })
})
