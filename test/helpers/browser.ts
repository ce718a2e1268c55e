/** Chromium for the UI tests: Debian's binary through playwright-core, the built UI, screenshots when a test fails. */
import { it } from 'node:test'
import { execFileSync } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { readdirSync, readFileSync } from 'node:fs'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'

export const ROOT = new URL('../../', import.meta.url).pathname
export const RESULTS = join(ROOT, 'test-results')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync']

/** Builds dist/ui/ when stale: the nodes serve the built UI (npm test builds it too; this covers a single-file run). */
export function buildUi (): void {
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--quiet'], { stdio: 'inherit' })
}

export async function launchChromium (): Promise<Browser> {
  return await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
}

/** `it`, plus a screenshot of each of `pages()` in test-results/ (`<prefix>-<test>-<page>.png`) when the test fails */
export function uiTest (name: string, pages: () => Record<string, Page | undefined>, fn: () => Promise<void>, prefix = ''): void {
  it(name, async () => {
    try {
      await fn()
    } catch (err) {
      await mkdir(RESULTS, { recursive: true })
      const base = `${prefix}${name.replace(/\W+/g, '-').slice(0, 60)}`
      for (const [who, p] of Object.entries(pages())) await p?.screenshot({ path: join(RESULTS, `${base}-${who}.png`) }).catch(() => {})
      throw err
    }
  })
}

/** one user's window: language and width (below 500 px the UI is a list, then the chat) */
export interface Side { locale: 'en' | 'zh-CN', width: number }
export const isNarrow = (side: Side): boolean => side.width < 500
export const SCREENS = join(RESULTS, 'screens')
export const DOC_SHOTS = join(ROOT, 'docs/img')

/** the pictures the docs show (`img/<file>.png`): only those are written to docs/img/, so a rerun leaves none unused */
function docPictures (): Set<string> {
  const docs = join(ROOT, 'docs')
  const text = readdirSync(docs).filter(f => f.endsWith('.md')).map(f => readFileSync(join(docs, f), 'utf8')).join('\n')
  return new Set([...text.matchAll(/\(img\/([^)\s]+\.png)\)/g)].map(m => m[1] as string))
}

/**
 * A main screen, kept as a test artifact in test-results/screens/ (`<locale>-<narrow|wide>-<name>.png`), and with
 * UPDATE_SCREENSHOTS=1 also in docs/img/ when a document shows it (the user guides take their pictures from there).
 */
export async function screen (p: Page, side: Side, name: string): Promise<void> {
  await mkdir(SCREENS, { recursive: true })
  const file = `${side.locale}-${isNarrow(side) ? 'narrow' : 'wide'}-${name}.png`
  await p.screenshot({ path: join(SCREENS, file) })
  if (process.env.UPDATE_SCREENSHOTS === '1' && docPictures().has(file)) {
    await mkdir(DOC_SHOTS, { recursive: true })
    await p.screenshot({ path: join(DOC_SHOTS, file) })
  }
}

/**
 * Nothing sticks out at this width: the page does not scroll sideways, and each open dialog is inside the window
 * with its content inside its box (a select or an address wider than a 360 px dialog once was cut off).
 */
export async function assertFits (p: Page, what: string): Promise<void> {
  const problems = await p.evaluate(() => {
    const out: string[] = []
    const w = window.innerWidth
    const doc = document.documentElement
    if (doc.scrollWidth > w) out.push(`the page is ${doc.scrollWidth} px wide in a ${w} px window`)
    for (const d of Array.from(document.querySelectorAll('dialog[open]'))) {
      const box = d.getBoundingClientRect()
      if (box.left < -0.5 || box.right > w + 0.5) out.push(`#${d.id} reaches ${Math.round(box.left)}…${Math.round(box.right)} px`)
      if (d.scrollWidth > d.clientWidth + 1) out.push(`#${d.id} holds ${d.scrollWidth} px in ${d.clientWidth} px`)
      for (const e of Array.from(d.querySelectorAll('*'))) {
        const r = e.getBoundingClientRect()
        if (r.width === 0 || r.right <= box.right + 0.5) continue
        // clipped on purpose inside a scrolling or clipping part of the dialog (a list, an ellipsis): not cut off by the dialog
        let clipped = false
        for (let a = e.parentElement; a !== null && a !== d; a = a.parentElement) {
          if (getComputedStyle(a).overflowX !== 'visible') { clipped = true; break }
        }
        if (!clipped) out.push(`#${d.id} ${e.tagName.toLowerCase()}${e.id !== '' ? '#' + e.id : ''} ends at ${Math.round(r.right)} px, the dialog at ${Math.round(box.right)}`)
      }
    }
    return out
  })
  assert.deepEqual(problems, [], `${what}: everything fits`)
}

/** back to the chat list when a narrow window shows a chat */
export async function toList (p: Page): Promise<void> {
  if (await p.locator('#back').isVisible()) await p.locator('#back').click()
}

/** opens a chat from the list (going back to the list first in a narrow window) */
export async function openChat (p: Page, selector: string): Promise<void> {
  await toList(p)
  await p.locator(selector).click()
  await p.locator('#conversation').waitFor()
}
