import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createI18n, formatters, isLocaleChoice, pickLocale, resolveLocale, type Catalog, type Formatters } from '../../../app/shared/i18n.js'

const en = (f: Formatters) => ({
  hello: 'Hello',
  unread: (n: number) => f.plural(n, { one: '# unread message', other: '# unread messages' }),
  members: (names: string[]) => f.list(names)
})
type Messages = ReturnType<typeof en>
const zh: Catalog<Messages> = (f) => ({
  hello: '你好',
  unread: (n) => f.plural(n, { other: '# 条未读消息' }),
  members: (names) => f.list(names)
})

describe('i18n', () => {
  it('follows the preferred languages, any Chinese to zh-CN, else English', () => {
    assert.equal(pickLocale(['zh-CN', 'en']), 'zh-CN')
    assert.equal(pickLocale(['zh-Hans-SG']), 'zh-CN')
    assert.equal(pickLocale(['zh-TW']), 'zh-CN')
    assert.equal(pickLocale(['en-GB', 'zh-CN']), 'en')
    assert.equal(pickLocale(['fr-FR', 'zh']), 'zh-CN')
    assert.equal(pickLocale(['fr-FR', 'de']), 'en')
    assert.equal(pickLocale(['not a tag!', 'zh']), 'zh-CN')
    assert.equal(pickLocale([]), 'en')
    assert.equal(resolveLocale('auto', ['zh-CN']), 'zh-CN')
    assert.equal(resolveLocale('en', ['zh-CN']), 'en')
    assert.ok(isLocaleChoice('auto') && isLocaleChoice('zh-CN') && !isLocaleChoice('fr'))
  })

  it('plurals follow each language: English one/other, Chinese a single form', () => {
    const e = createI18n({ en, 'zh-CN': zh }, 'en')
    assert.equal(e.t.unread(1), '1 unread message')
    assert.equal(e.t.unread(2), '2 unread messages')
    assert.equal(e.t.unread(1234), '1,234 unread messages')
    const z = createI18n({ en, 'zh-CN': zh }, 'zh-CN')
    assert.equal(z.t.hello, '你好')
    assert.equal(z.t.unread(1), '1 条未读消息')
    assert.equal(z.t.members(['安娜', '本', '卡罗']), '安娜、本和卡罗')
    assert.equal(e.t.members(['Ana', 'Ben', 'Carol']), 'Ana, Ben, and Carol')
  })

  it('relative times pick the nearest unit, and day separators say today / yesterday', () => {
    const now = new Date(2026, 11, 1, 15, 0, 0).getTime()
    const e = formatters('en')
    const z = formatters('zh-CN')
    assert.equal(e.relative(now - 5 * 60_000, now), '5 minutes ago')
    assert.equal(e.relative(now - 3_600_000, now), '1 hour ago')
    assert.equal(e.relative(now - 2_000, now), '2 seconds ago')
    assert.equal(z.relative(now - 5 * 60_000, now), '5分钟前')
    assert.equal(e.day(now - 60_000, now), 'Today')
    assert.equal(e.day(now - 86_400_000, now), 'Yesterday')
    assert.equal(z.day(now - 60_000, now), '今天')
    assert.equal(z.day(now - 86_400_000, now), '昨天')
    assert.equal(e.day(new Date(2026, 10, 3).getTime(), now), 'Tuesday, November 3, 2026')
    assert.equal(z.day(new Date(2026, 10, 3).getTime(), now), '2026年11月3日星期二')
    assert.match(z.time(now), /^15:00$/)
    assert.match(e.dateTime(now), /Dec 1, 2026/)
  })
})
