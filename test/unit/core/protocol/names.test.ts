import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { displayName, displayNameProblem, earlierLookAlikes, lookAlikeWarning, nameKey, normalizeName, skeleton } from '../../../../core/protocol/names.js'
import { parseDisplayName, parseGroupOp, parseProfile } from '../../../../core/protocol/envelope.js'
import { Checker } from '../../../../core/protocol/validate.js'
import { ParleyError } from '../../../../core/errors.js'

const code = (c: string) => (err: unknown): boolean => err instanceof ParleyError && err.code === c

describe('display names: invisible characters and normal form', () => {
  // the cases of issue 9: each reads as "Ben" on screen
  const invisible: Array<[string, string]> = [
    ['zero-width space', 'Be\u200Bn'],
    ['soft hyphen', 'Be\u00ADn'],
    ['zero-width joiner between letters', 'Be\u200Dn'],
    ['zero-width non-joiner', 'Be\u200Cn'],
    ['word joiner', 'Ben\u2060'],
    ['byte order mark', 'Be\uFEFFn'],
    ['left-to-right mark', 'Ben\u200E'],
    ['Hangul filler', 'Ben\u3164'],
    ['combining grapheme joiner', 'Be\u034Fn'],
    ['variation selector after a letter', 'Be\uFE0Fn'],
    ['tag character', 'Ben\u{E0041}']
  ]
  for (const [what, name] of invisible) {
    it(`refuses a ${what} with a typed error naming the code point`, () => {
      assert.throws(() => parseDisplayName(name), (err) => code('ERR_INVALID_ARGUMENT')(err) && /invisible character U\+/.test((err as Error).message))
      assert.match(displayNameProblem(name) ?? '', /invisible/)
    })
  }

  it('refuses lone surrogates, high and low', () => {
    for (const name of ['Ben\uD800', '\uDC00Ben', 'B\uDBFFen']) {
      assert.throws(() => parseDisplayName(name), (err) => code('ERR_INVALID_ARGUMENT')(err) && /lone surrogate/.test((err as Error).message))
    }
  })

  it('accepts a name from before the NFKC rule as signed, and shows it as NFKC', () => {
    // fullwidth letters and parentheses, ligatures, compatibility spaces: names stored and signed before the upgrade
    for (const [name, shown] of <Array<[string, string]>>[['Ｂｅｎ', 'Ben'], ['ﬁona', 'fiona'], ['Be\u00A0n', 'Be n'], ['Ben\u2163', 'BenIV'], ['张伟（销售）', '张伟(销售)']]) {
      assert.equal(parseDisplayName(name), name, name)
      assert.equal(displayName(name), shown)
      assert.equal(nameKey(name), nameKey(shown))
    }
  })

  it('still refuses invisible characters in a name NFKC would change', () => {
    assert.throws(() => parseDisplayName('Ｂ\u200Bｅｎ'), code('ERR_INVALID_ARGUMENT'))
    assert.throws(() => parseDisplayName('（\uD800）'), code('ERR_INVALID_ARGUMENT'))
  })

  it('shows group ops from before the NFKC rule with the NFKC name', () => {
    const admin = '12D3KooWAdminAdminAdminAdminAdminAdminAdminAdminAdmi'
    assert.deepEqual(parseGroupOp({ type: 'create', name: '销售部（北京）', members: [admin] }), { type: 'create', name: '销售部(北京)', members: [admin] })
    assert.deepEqual(parseGroupOp({ type: 'rename', name: 'Ｔｅａｍ' }), { type: 'rename', name: 'Team' })
    const add = parseGroupOp({ type: 'add', member: admin, snapshot: { name: '销售部（北京）', admin, members: [admin] } })
    assert.equal(add.type === 'add' ? add.snapshot?.name : undefined, '销售部(北京)')
  })

  it('normalises local input to NFKC, after which it passes', () => {
    assert.equal(parseDisplayName(normalizeName('Ｂｅｎ')), 'Ben')
    assert.equal(parseDisplayName(normalizeName('ﬁona')), 'fiona')
    // decomposed é becomes the composed one
    assert.equal(parseDisplayName(normalizeName('Rene\u0301')), 'Ren\u00E9')
  })

  it('refuses names with nothing visible, and piles of combining marks', () => {
    assert.throws(() => parseDisplayName('\u0301\u0301'), code('ERR_INVALID_ARGUMENT'))
    assert.throws(() => parseDisplayName('Z\u0300\u0301\u0302\u0303\u0304'), code('ERR_INVALID_ARGUMENT'))
  })

  it('keeps emoji sequences, CJK and other scripts', () => {
    for (const name of ['👩‍💻 Ana', '❤️ Li', '👨‍👩‍👧', '张伟', '山田 太郎', 'Zoë', 'Ελένη', 'Олег', 'محمد', '1️⃣ desk', '👋🏽 Sam']) {
      assert.equal(parseDisplayName(name), name, name)
    }
  })

  it('refuses the same on the wire, with the wire code (a profile carrying such a name)', () => {
    const profile = { v: 1, peerId: '12D3KooWLRPJAA5o6Z6Yx4ej7Hgmz5bzsNbMvmm5kiUxHz2nk1ni', name: 'Be\u200Bn', updatedAt: 1, sig: 'A'.repeat(86) }
    assert.throws(() => parseProfile(profile), code('ERR_INVALID_ENVELOPE'))
    assert.throws(() => parseDisplayName('Be\u00ADn', new Checker('ERR_INVALID_ENVELOPE', 'group op')), code('ERR_INVALID_ENVELOPE'))
  })
})

describe('confusable skeletons (UTS #39)', () => {
  it('maps look-alikes from other scripts to one skeleton', () => {
    // Cyrillic е, Greek ο, Cyrillic а, Latin m against "rn"
    assert.equal(skeleton('B\u0435n'), skeleton('Ben'))
    assert.equal(skeleton('J\u03BFhn'), skeleton('John'))
    assert.equal(skeleton('\u0430nna'), skeleton('anna'))
    assert.equal(skeleton('m'), skeleton('rn'))
    assert.equal(skeleton('paypal'), skeleton('paypa1'))
    assert.notEqual(skeleton('Ben'), skeleton('Ken'))
  })

  it('drops default ignorables, as the skeleton algorithm says', () => {
    assert.equal(skeleton('Be\u200Bn'), skeleton('Ben'))
  })

  it('name keys also ignore case and fold the I/l pair', () => {
    assert.equal(nameKey('B\u0435n'), nameKey('ben'))
    assert.equal(nameKey('BEN'), nameKey('Ben'))
    assert.equal(nameKey('Al'), nameKey('AI'))
    assert.equal(nameKey('Ｂｅｎ'), nameKey('Ben'))
    assert.notEqual(nameKey('张伟'), nameKey('张三'))
  })
})

describe('look-alike warnings', () => {
  const ben = { peerId: '12D3KooWBenRealRealRealRealRealRealRealRealReal1', name: 'Ben', since: 1 }
  const fake = { peerId: '12D3KooWFakeFakeFakeFakeFakeFakeFakeFakeFakeFak2', name: 'B\u0435n', since: 5 }
  const ken = { peerId: '12D3KooWKenKenKenKenKenKenKenKenKenKenKenKenKen3', name: 'Ken', since: 7 }

  it('the later key with a look-alike name is named against the first one', () => {
    const earlier = earlierLookAlikes([fake, ken, ben])
    assert.equal(earlier.get(fake.peerId), ben)
    assert.equal(earlier.has(ben.peerId), false)
    assert.equal(earlier.has(ken.peerId), false)
    const w = lookAlikeWarning(fake.name, earlier.get(fake.peerId)) ?? ''
    assert.match(w, /Another key \(.{8}\) used the name "Ben", which looks like "B\u0435n"/)
    assert.match(lookAlikeWarning('Ben', ben) ?? '', /used the name "Ben" before/)
    assert.equal(lookAlikeWarning('Ken', undefined), null)
  })
})
