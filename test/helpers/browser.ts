/** Chromium for the UI tests: Debian's binary through playwright-core, the built UI, screenshots when a test fails. */
import { it } from 'node:test'
import { execFileSync } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
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

/**
 * A main screen, kept as a test artifact in test-results/screens/ (`<locale>-<narrow|wide>-<name>.png`), and with
 * UPDATE_SCREENSHOTS=1 also in docs/img/, where the user guides take their pictures from.
 */
export async function screen (p: Page, side: Side, name: string): Promise<void> {
  await mkdir(SCREENS, { recursive: true })
  const file = `${side.locale}-${isNarrow(side) ? 'narrow' : 'wide'}-${name}.png`
  await p.screenshot({ path: join(SCREENS, file) })
  if (process.env.UPDATE_SCREENSHOTS === '1') { await mkdir(DOC_SHOTS, { recursive: true }); await p.screenshot({ path: join(DOC_SHOTS, file) }) }
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
