/**
 * Issue 9 in the UI's words, both languages: a full disk is said to be full,
 * a damaged store at start is told with its loss count (never "0 lost" when
 * it is not known), and a held message says why it waits.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { errorText } from '../../../app/ui/src/views/words.js'
import { STATUS_RECHECK_MS, heldNote, pollStoreHealth, storeDamageText } from '../../../app/ui/src/views/StoreHealth.js'
import { uiI18n } from '../../../app/ui/src/i18n/index.js'
import { ApiError } from '../../../app/ui/src/api.js'
import type { StoreHealthView } from '../../../node/src/api/contract.js'

const en = uiI18n('en').t
const zh = uiI18n('zh-CN').t
const health = (over: Partial<StoreHealthView>): StoreHealthView => ({ damaged: true, reasons: ['x'], lost: 3, uncounted: [], kept: 5, checking: true, ...over })

describe('damaged store, full disk and held messages in the UI', () => {
  it('the disk-full refusal (507 ERR_DISK_FULL, as the API answers it) says the disk is full and that Parley recovers by itself', () => {
    const err = new ApiError('ERR_DISK_FULL', 'the disk holding Parley\'s data is full, so nothing new can be saved.')
    assert.match(errorText(en, err), /disk is full.*Free some space.*by itself/)
    assert.match(errorText(zh, err), /磁盘已满.*释放.*自动/)
  })

  it('the start-up banner: the count when known, "at least" or "some" when not, and whether new messages wait', () => {
    assert.equal(storeDamageText(en, undefined), null)
    assert.equal(storeDamageText(en, health({ damaged: false })), null)
    assert.equal(storeDamageText(en, health({})),
      'Parley found its message store damaged when it started. 3 messages were lost here. They come back from your colleagues when they connect. ' +
      'New messages wait until your colleagues have confirmed your message numbers.')
    assert.match(storeDamageText(en, health({ uncounted: ['LevelDB dropped 120 bytes'], checking: false })) ?? '', /At least 3 messages were lost here\. They come back[^.]*\.$/)
    assert.match(storeDamageText(en, health({ lost: 0, uncounted: ['a write-ahead log was cut short'] })) ?? '', /Some messages may have been lost/)
    assert.equal(storeDamageText(zh, health({ lost: 1 })), 'Parley 启动时发现消息库已损坏。 本机丢失了 1 条消息。 同事上线后会自动把它们发回来。 在同事确认你的消息序号之前，新消息会暂缓发送。')
    assert.match(storeDamageText(zh, health({ lost: 0, uncounted: ['x'] })) ?? '', /可能丢失/)
  })

  it('the banner reads /status again while the node checks its numbers, and stops once it is done (so "new messages wait" goes away)', async () => {
    const answers = [health({ checking: true }), health({ checking: true }), health({ checking: false })]
    let reads = 0
    const shown: Array<StoreHealthView | undefined> = []
    const timers: Array<{ f: () => void, ms: number }> = []
    const stop = pollStoreHealth(async () => ({ store: answers[Math.min(reads++, answers.length - 1)] }), (h) => { shown.push(h) },
      { setTimeout: (f, ms) => { timers.push({ f, ms }); return timers.length }, clearTimeout: () => {} })
    const tick = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }
    await tick()
    assert.equal(reads, 1)
    assert.match(storeDamageText(en, shown.at(-1)) ?? '', /New messages wait/)
    timers.shift()!.f(); await tick()
    timers.shift()!.f(); await tick()
    assert.equal(reads, 3)
    assert.doesNotMatch(storeDamageText(en, shown.at(-1)) ?? '', /New messages wait/, 'the banner no longer says new messages wait')
    assert.equal(timers.length, 0, 'no further reads once checking ended')
    assert.ok(timers.every(t => t.ms === STATUS_RECHECK_MS))
    stop()
  })

  it('a held message says it waits for colleagues to confirm its number; one not held says nothing more', () => {
    assert.deepEqual(heldNote(en, { outgoing: true, held: true })?.text, 'checking message numbers with colleagues')
    assert.match(heldNote(en, { outgoing: true, held: true })?.hint ?? '', /no message number is used twice/)
    assert.equal(heldNote(zh, { outgoing: true, held: true })?.text, '正在与同事核对消息序号')
    assert.equal(heldNote(en, { outgoing: true }), null)
    assert.equal(heldNote(en, { outgoing: false, held: true }), null)
  })

  it('a relay refusal (a mailbox flood: the sender\'s share used up) is said on the queued message in both languages', () => {
    for (const code of ['ERR_SENDER_SHARE_FULL', 'ERR_QUOTA_EXCEEDED', 'ERR_UNKNOWN_RECIPIENT']) {
      assert.ok((en.relayRefusal[code] ?? '').length > 0 && (zh.relayRefusal[code] ?? '').length > 0, code)
      assert.notEqual(en.relayRefusal[code], zh.relayRefusal[code])
    }
    assert.match(en.relayRefusal.ERR_SENDER_SHARE_FULL ?? '', /your share of their relay mailbox is full/)
  })
})
