/**
 * Files in the web UI, in Chromium: an image dropped on the conversation and
 * another pasted into the message box arrive on the other side with their
 * thumbnails; a large file's progress shows (percentage, waiting) while its
 * sender is gone, and the file completes once the sender is back.
 */
import { describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { connect, loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { buildUi, launchChromium, screen, uiTest } from '../helpers/browser.js'
import type { ParleyNode } from '../../node/src/parley-node.js'

/** Makes a PNG in the page and hands it to the conversation as a drop, or to the message box as a paste. */
const IMAGE_EVENT = async (page: Page, how: 'drop' | 'paste', name: string, color: string): Promise<void> => {
  await page.evaluate(async ({ how, name, color }) => {
    const canvas = document.createElement('canvas')
    canvas.width = 640; canvas.height = 480
    const ctx = canvas.getContext('2d') as CanvasRenderingContext2D
    ctx.fillStyle = color; ctx.fillRect(0, 0, 640, 480)
    ctx.fillStyle = '#fff'; ctx.fillRect(100, 100, 200, 120)
    const blob = await new Promise<Blob>(resolve => { canvas.toBlob(b => { resolve(b as Blob) }, 'image/png') })
    const dt = new DataTransfer()
    dt.items.add(new File([blob], name, { type: 'image/png' }))
    if (how === 'drop') {
      const target = document.querySelector('#conversation') as HTMLElement
      target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }))
      target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))
    } else {
      const box = document.querySelector('#text') as HTMLElement
      box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }))
    }
  }, { how, name, color })
}

describe('files in the web UI', () => {
  let dir: string
  let a: ParleyNode
  let b: ParleyNode
  let browser: Browser
  let pageA: Page
  let pageB: Page

  const startA = async (): Promise<void> => {
    a = loopbackNode(join(dir, 'a'), { name: 'Alice', files: { downloads: join(dir, 'a-dl') } })
    await a.start()
  }

  before(async () => {
    buildUi()
    dir = await tmpDir('parley-ui-files-')
    await startA()
    b = loopbackNode(join(dir, 'b'), { name: 'Bob', files: { downloads: join(dir, 'b-dl') } })
    await b.start()
    await connect(a, b)
    browser = await launchChromium()
    pageA = await (await browser.newContext({ viewport: { width: 1100, height: 760 }, locale: 'en-US' })).newPage()
    pageB = await (await browser.newContext({ viewport: { width: 1100, height: 760 }, locale: 'zh-CN' })).newPage()
    for (const p of [pageA, pageB]) p.on('pageerror', (err) => { console.error('page error:', err.message) })
    await pageA.goto(a.uiUrl as string)
    await pageB.goto(b.uiUrl as string)
    await pageA.locator(`li.person[data-peer="${b.peerId}"]`).click()
    await pageB.locator(`li.person[data-peer="${a.peerId}"]`).click()
  })

  after(async () => {
    await browser?.close()
    await a?.stop(); await b?.stop()
    await removeDir(dir)
  })

  const ui = (name: string, fn: () => Promise<void>): void => { uiTest(name, () => ({ alice: pageA, bob: pageB }), fn, 'files-') }

  /** Bob's conversation with Alice as a screen, in Chinese (his page) and in English (a page of its own, once `ready`): the user guides show it */
  const bobScreens = async (name: string, ready: (p: Page) => Promise<void>): Promise<void> => {
    await ready(pageB)
    await screen(pageB, { locale: 'zh-CN', width: 1100 }, name)
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 }, locale: 'en-US' })
    try {
      const p = await ctx.newPage()
      await p.goto(b.uiUrl as string)
      await p.locator(`li.person[data-peer="${a.peerId}"]`).click()
      await ready(p)
      await screen(p, { locale: 'en', width: 1100 }, name)
    } finally { await ctx.close() }
  }

  ui('an image dropped on the conversation arrives with its thumbnail; one pasted into the message box too', async () => {
    await IMAGE_EVENT(pageA, 'drop', 'plan.png', '#2f6fde')
    const card = pageB.locator('.msg:not(.mine) .file-card', { hasText: 'plan.png' })
    await card.waitFor({ timeout: 20_000 })
    const thumb = card.locator('img.file-thumb')
    assert.match(await thumb.getAttribute('src') ?? '', /^data:image\/jpeg;base64,/)
    await until(async () => await thumb.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth === 200), 'thumbnail drawn', 10_000)
    await until(async () => await card.getAttribute('data-state') === 'complete', 'complete on the receiving side', 20_000)
    // the original on demand: open and save links to the received file
    const href = await card.locator('a.file-save').getAttribute('href') ?? ''
    const res = await pageB.evaluate(async (u) => { const r = await fetch(u); return { status: r.status, type: r.headers.get('content-type'), size: (await r.arrayBuffer()).byteLength } }, href)
    assert.equal(res.status, 200)
    assert.equal(res.type, 'image/png')
    assert.ok(res.size > 1000)
    // the sender hears it was received
    await pageA.locator('.msg.mine .file-card[data-state="complete"]', { hasText: 'plan.png' }).waitFor({ timeout: 20_000 })

    await pageA.locator('#text').click()
    await IMAGE_EVENT(pageA, 'paste', 'image.png', '#d04040')
    const pasted = pageB.locator('.msg:not(.mine) .file-card', { hasText: '截图' }).or(pageB.locator('.msg:not(.mine) .file-card', { hasText: 'Screenshot' }))
    await pasted.first().waitFor({ timeout: 20_000 })
    assert.match(await pasted.first().locator('img.file-thumb').getAttribute('src') ?? '', /^data:image\/jpeg;base64,/)
    await bobScreens('files-received', async (p) => {
      const thumbs = p.locator('.msg:not(.mine) .file-card img.file-thumb')
      await until(async () => await thumbs.evaluateAll((imgs: HTMLImageElement[]) => imgs.length >= 2 && imgs.every(i => i.complete && i.naturalWidth > 0)), 'both previews drawn', 20_000)
      await p.locator('.msg:not(.mine) .file-card[data-state="complete"]', { hasText: 'plan.png' }).waitFor({ timeout: 20_000 })
    })
  })

  ui('a large file shows its progress while the sender is gone, and completes when it is back', async () => {
    const big = join(dir, 'big.bin')
    await writeFile(big, randomBytes(120 * 1024 * 1024))
    const [sent] = await a.files.send(b.peerId, [big])
    const incoming = (): ReturnType<ParleyNode['files']['list']>[number] | undefined => b.files.list().find(t => t.msgId === sent?.msgId)
    await until(() => (incoming()?.bytes ?? 0) > 0, 'some of it arrived', 30_000, 2)
    await a.stop()
    const part = incoming()
    assert.ok(part !== undefined && part.state === 'active' && part.bytes < part.size, 'stopped part-way')
    const card = pageB.locator('.msg:not(.mine) .file-card', { hasText: 'big.bin' })
    await card.locator('progress.file-bar').waitFor({ timeout: 20_000 })
    const value = Number(await card.locator('progress.file-bar').getAttribute('value'))
    assert.ok(value > 0 && value < 100, `progress ${value}`)
    await card.locator('.file-status', { hasText: '等待对方上线' }).waitFor({ timeout: 20_000 })
    assert.match(await card.locator('.file-status').textContent() ?? '', /\d+%/)
    await bobScreens('files-progress', async (p) => {
      await p.locator('.msg:not(.mine) .file-card', { hasText: 'big.bin' }).locator('progress.file-bar').waitFor({ timeout: 20_000 })
    })
    // the name is shown only once complete: no open or save yet
    assert.equal(await card.locator('a.file-open').count(), 0)
    await startA()
    await connect(a, b)
    await until(async () => await card.getAttribute('data-state') === 'complete', 'completed after the sender came back', 60_000)
    await card.locator('a.file-open').waitFor()
    assert.equal(incoming()?.bytes, 120 * 1024 * 1024)
  })
})
