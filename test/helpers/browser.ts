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
