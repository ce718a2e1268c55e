import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { colourOf, initials, isLong, mentions, mentionsName, pieces } from '../../../app/ui/src/util.js'
import { findMention, textCount } from '../../../app/ui/src/views/Composer.js'
import { errorText, relayLine } from '../../../app/ui/src/views/words.js'
import { uiI18n } from '../../../app/ui/src/i18n/index.js'
import { ApiError } from '../../../app/ui/src/api.js'
import { MAX_TEXT_CHARS, textLength, type RelayState } from '../../../node/src/api/contract.js'
import { lookAlikeWarning, nameWarning } from '../../../core/protocol/names.js'

const relay = (over: Partial<RelayState>): RelayState => ({ addr: '/ip4/10.0.0.1/tcp/4100/p2p/12D3KooWRelay', peerId: null, connected: true, admitted: true, invitePending: false, lastError: null, waiting: 0, ...over })

describe('UI text helpers', () => {
  it('finds http(s) links, never javascript: or bare words, and marks a search term', () => {
    assert.deepEqual(pieces('see https://intranet.example/a?b=1, ok'), [
      { kind: 'text', text: 'see ' }, { kind: 'link', text: 'https://intranet.example/a?b=1', href: 'https://intranet.example/a?b=1' }, { kind: 'text', text: ', ok' }])
    assert.deepEqual(pieces('javascript:alert(1) www.x.com'), [{ kind: 'text', text: 'javascript:alert(1) www.x.com' }])
    assert.deepEqual(pieces('链接：https://例子.cn/页。谢谢').map(p => p.kind), ['text', 'link', 'text'])
    assert.deepEqual(pieces('Lunch at NOON, noon', 'noon'), [{ kind: 'text', text: 'Lunch at ' }, { kind: 'mark', text: 'NOON' }, { kind: 'text', text: ', ' }, { kind: 'mark', text: 'noon' }])
  })

  it('marks @mentions of group members, the reader\'s own apart', () => {
    const out = mentions(pieces('@Ben and @陈静, not @nobody'), ['Ben', '陈静'], '陈静')
    assert.deepEqual(out, [{ kind: 'mention', text: '@Ben', me: false }, { kind: 'text', text: ' and ' }, { kind: 'mention', text: '@陈静', me: true }, { kind: 'text', text: ', not @nobody' }])
    assert.deepEqual(findMention('hi @Be', 6), { at: 3, query: 'Be', index: 0 })
    assert.equal(findMention('mail a@b', 8), null)
    // a mention ends with the name: "@Ana" is not in "@Anastasia", and the longer name is marked whole
    assert.equal(mentionsName('@Anastasia can you look', 'Ana'), false)
    assert.equal(mentionsName('@Ana, can you look', 'Ana'), true)
    assert.equal(mentionsName('thanks @Ana', 'Ana'), true)
    assert.equal(mentionsName('请@陈静 看一下', '陈静'), true)
    assert.equal(mentionsName('a.b@Ana.example', 'Ana.'), false)
    assert.deepEqual(mentions(pieces('@Anastasia hi'), ['Ana', 'Anastasia'], 'Ana'), [{ kind: 'mention', text: '@Anastasia', me: false }, { kind: 'text', text: ' hi' }])
    assert.deepEqual(mentions(pieces('@Anabel hi'), ['Ana'], 'Ana'), [{ kind: 'text', text: '@Anabel hi' }])
  })

  it('avatars: initials of Latin names, the first character of Chinese ones, a stable colour', () => {
    assert.equal(initials('Ana Lima'), 'AL')
    assert.equal(initials('ben'), 'B')
    assert.equal(initials('陈静'), '陈')
    assert.equal(initials('  '), '?')
    assert.equal(colourOf('12D3KooWabc'), colourOf('12D3KooWabc'))
    assert.ok(isLong('x'.repeat(701)) && isLong('a\n'.repeat(13)) && !isLong('short'))
  })

  it('the relay line tells the truth: a refused invite is not "connected", nothing is known while our node is away', () => {
    const { t } = uiI18n('en')
    assert.equal(relayLine(t, relay({}), 'up').text, 'Relay connected')
    assert.equal(relayLine(t, relay({ admitted: null, lastError: { code: 'ERR_INVITE_INVALID', message: 'invite unknown or used up' } }), 'up').text, 'The relay refused your invite')
    assert.equal(relayLine(t, relay({ admitted: false, lastError: { code: 'ERR_NOT_ADMITTED', message: '' } }), 'up').tone, 'bad')
    assert.equal(relayLine(t, relay({ connected: false }), 'up').text, 'Relay unreachable, retrying')
    assert.equal(relayLine(t, relay({}), 'down').text, 'Relay status unknown')
    assert.equal(relayLine(t, relay({ addr: null }), 'up').text, 'LAN only (no relay)')
    assert.equal(relayLine(uiI18n('zh-CN').t, relay({ waiting: 3 }), 'up').text, '中继已连接 · 正在取回为你保存的 3 条消息')
    // the hover says why in the user's words, not the node's English
    const zh = uiI18n('zh-CN').t
    const hint = relayLine(zh, relay({ admitted: null, lastError: { code: 'ERR_INVITE_INVALID', message: 'invite unknown or used up' } }), 'up').hint
    assert.doesNotMatch(hint, /invite unknown|ERR_/)
    assert.ok(hint.includes(zh.relayRefusedHint))
    assert.doesNotMatch(relayLine(zh, relay({ connected: false, lastError: { code: 'ERR_UNREACHABLE', message: 'dial timed out' } }), 'up').hint, /dial|ERR_/)
  })

  it('errors are told in the user\'s words, never as a code alone', () => {
    const { t } = uiI18n('zh-CN')
    assert.equal(errorText(t, new ApiError('ERR_UNREACHABLE', 'Failed to fetch')), '本机 Parley 没有响应，可能正在重启，请稍后再试。')
    assert.match(errorText(t, new ApiError('ERR_INVALID_ARGUMENT', 'not a multiaddr: x'), 'relayAddress'), /这不是中继地址/)
    assert.match(errorText(uiI18n('en').t, new ApiError('ERR_WHATEVER', 'x')), /Something went wrong \(ERR_WHATEVER\)\. Try again/)
    // every code the local API answers has words of its own in both languages (none falls back to "something went wrong")
    const codes = ['ERR_UNKNOWN_GROUP', 'ERR_STORE_UNAVAILABLE', 'ERR_RESOURCE_LIMIT', 'ERR_INVITE_INVALID', 'ERR_NOT_STARTED', 'ERR_INVALID_ARGUMENT', 'ERR_DISK_FULL',
      'ERR_UNREACHABLE', 'ERR_UNAUTHORIZED', 'ERR_NOT_A_MEMBER', 'ERR_UNKNOWN_PEER', 'ERR_AMBIGUOUS_PEER', 'ERR_PEER_UNREACHABLE', 'ERR_TIMEOUT', 'ERR_STORE',
      'ERR_NOT_FOUND', 'ERR_NOT_ADMITTED']
    for (const locale of ['en', 'zh-CN'] as const) {
      const { t: tl } = uiI18n(locale)
      for (const code of codes) {
        const text = errorText(tl, new ApiError(code, 'server words'))
        assert.notEqual(text, tl.error.other(code), `${locale} ${code}`)
        assert.doesNotMatch(text, /ERR_|server words/, `${locale} ${code}`)
      }
    }
    assert.match(errorText(t, new ApiError('ERR_DISK_FULL', 'ENOSPC')), /磁盘已满/)
    // an edit or recall too late: the node names the rule, the UI says it (not "could not use what was entered")
    for (const locale of ['en', 'zh-CN'] as const) {
      const { t: tl } = uiI18n(locale)
      assert.equal(errorText(tl, new ApiError('ERR_INVALID_ARGUMENT', 'change: too old', 400, { reason: 'too-late' })), tl.error.tooLate)
    }
  })

  it('the look-alike-name (impostor) warning is a code the UI words in both languages; the English sentence stays for the CLI', () => {
    const first = { peerId: '12D3KooWBenBenBenBenBen00ab12cd', name: 'Ben', since: 1 }
    const same = nameWarning('Ben', first)
    const like = nameWarning('Bеn', first) // Cyrillic е
    assert.equal(nameWarning('Ben', undefined), null)
    assert.deepEqual(same, { code: 'same-name', key: '00ab12cd', firstName: 'Ben', name: 'Ben' })
    assert.equal(like?.code, 'look-alike')
    const en = uiI18n('en').t
    const zh = uiI18n('zh-CN').t
    assert.match(en.nameWarning(like ?? same ?? assert.fail()), /Another key \(00ab12cd\) used the name “Ben”, which looks like “Bеn”, before\..*compare safety numbers/)
    for (const w of [same, like]) {
      const text = zh.nameWarning(w ?? assert.fail())
      assert.match(text, /00ab12cd.*安全码/)
      assert.doesNotMatch(text, /[A-Za-z]{4,}/, 'no English words in the Chinese warning')
    }
    assert.match(lookAlikeWarning('Ben', first) ?? '', /^Another key \(00ab12cd\) used the name "Ben" before\./)
  })

  it('the composer counts as the node does (UTF-16 units): 8,001 emoji are over the limit, shown with the count and refused', () => {
    const emoji = '😀'.repeat(8001)
    assert.equal(textLength(emoji), 16_002)
    assert.ok(textLength(emoji) > MAX_TEXT_CHARS, 'the node refuses it')
    assert.deepEqual(textCount(emoji), { length: 16_002, over: 2, shown: true })
    assert.deepEqual(textCount('😀'.repeat(7200)), { length: 14_400, over: -1600, shown: true })
    assert.deepEqual(textCount('a'.repeat(100)), { length: 100, over: -15_900, shown: false })
    assert.equal(textCount('x'.repeat(MAX_TEXT_CHARS)).over, 0, 'the limit itself is allowed')
  })
})
