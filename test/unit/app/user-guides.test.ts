/**
 * The Chinese and the English user guide tell the same things: the same sections in the same order (each by its
 * screens, commands and codes), no picture glued to the text under it, the same screens (each in its
 * own language, every picture there and none left over), the same commands and error codes. A section added to one
 * guide only (as the disk-full, `doctor --repair`, relay-mailbox and held-message ones once were) fails here.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

const ROOT = new URL('../../../', import.meta.url).pathname
const GUIDES = { en: 'docs/USER-GUIDE.md', 'zh-CN': 'docs/USER-GUIDE.zh-CN.md' } as const
const read = (locale: keyof typeof GUIDES): string => readFileSync(join(ROOT, GUIDES[locale]), 'utf8')

/** headings, pictures (the screen's name without language and width), `parley …` commands (words and flags) and ERR_ codes */
function outline (text: string): { headings: string[], pictures: string[], screens: string[], commands: string[], codes: string[] } {
  const pictures = [...text.matchAll(/!\[[^\]]*\]\((img\/[^)]+\.png)\)/g)].map(m => m[1] as string)
  const commands = [...text.matchAll(/`(parley\s[^`]*)`/g)]
    .map(m => (m[1] as string).split(/\s+/).filter(w => /^(--)?[a-z][a-z-]*$/.test(w)).join(' '))
  return {
    headings: [...text.matchAll(/^(#{2,3}) /gm)].map(m => m[1] as string),
    pictures,
    screens: pictures.map(p => p.replace(/^img\/(en|zh-CN)-(narrow|wide)-/, '')).sort(),
    commands: [...new Set(commands)].sort(),
    codes: [...new Set(text.match(/ERR_[A-Z_]+/g) ?? [])].sort()
  }
}

/**
 * Each section (`##`/`###`) by what it holds that does not depend on the language: its screens, commands and
 * error codes. Compared in order, so a section moved in one guide only (or a picture moved to another section) fails.
 */
function sections (text: string): string[] {
  return text.split(/^#{2,3} /m).slice(1).map((part) => {
    const o = outline(part)
    return [o.pictures.map(p => p.replace(/^img\/(en|zh-CN)-(narrow|wide)-/, '')).join(','), o.commands.join(','), o.codes.join(',')].join(' | ')
  })
}

describe('user guides', () => {
  const en = outline(read('en'))
  const zh = outline(read('zh-CN'))

  it('the Chinese guide has every section, screen, command and error code of the English one', () => {
    assert.deepEqual(zh.headings, en.headings, 'the same sections, in the same order and depth')
    assert.deepEqual(zh.screens, en.screens, 'the same screens')
    assert.deepEqual(zh.commands, en.commands, 'the same commands')
    assert.deepEqual(zh.codes, en.codes, 'the same error codes')
    assert.ok(en.headings.length >= 10 && en.screens.length >= 15, 'the guides were read')
  })

  it('the sections come in the same order, each with the same screens, commands and codes', () => {
    assert.deepEqual(sections(read('zh-CN')), sections(read('en')))
  })

  it('a picture stands in a paragraph of its own (text right under it would be glued to it)', () => {
    for (const locale of ['en', 'zh-CN'] as const) {
      const glued = [...read(locale).matchAll(/^!\[[^\]]*\]\([^)]+\)\n(?!\n|$)(.*)/gm)].map(m => m[1])
      assert.deepEqual(glued, [], `${GUIDES[locale]}: text glued under a picture`)
    }
  })

  it('each guide shows its own language, every picture exists, and none in docs/img is left unused', () => {
    for (const [locale, o] of [['en', en], ['zh-CN', zh]] as const) {
      for (const p of o.pictures) {
        assert.ok(p.startsWith(`img/${locale}-`), `${GUIDES[locale]} shows ${p}`)
        assert.ok(existsSync(join(ROOT, 'docs', p)), `${p} exists`)
      }
      assert.equal(new Set(o.pictures).size, o.pictures.length, `${GUIDES[locale]}: each picture once`)
    }
    const docs = readdirSync(join(ROOT, 'docs')).filter(f => f.endsWith('.md')).map(f => readFileSync(join(ROOT, 'docs', f), 'utf8')).join('\n')
    const unused = readdirSync(join(ROOT, 'docs/img')).filter(f => !docs.includes(`img/${f}`))
    assert.deepEqual(unused, [], 'pictures no document shows')
  })
})
