/**
 * The file store on the admin side (issue 17's file part): /stats shows its
 * usage (files, bytes); the file retention, the per-user file quota and the
 * largest file are policy, set from the admin API like the mailbox's,
 * validated with their rule, applied to the next offer without a restart;
 * /users shows each device's files against the per-user quota in force;
 * the console words them in English and Chinese.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { removeDir, tmpDir } from '../helpers/nodes.js'
import { adminRequest } from '../helpers/admin.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'
import { chunkCount, chunkSizeFor } from '../../core/protocol/file-manifest.js'
import { POLICY_RANGES, type PolicyView, type RelayStats, type UserView } from '../../core/protocol/admin-api.js'
import { errorText } from '../../app/console/src/errors.js'
import { ApiError } from '../../app/shared/http.js'
import { createI18n } from '../../app/shared/i18n.js'
import { en, zhCN } from '../../app/console/src/messages.js'
import { bytes } from '../../app/console/src/i18n.js'
import { PEER_A, PEER_B } from '../unit/helpers/peer-ids.js'

const MiB = 1024 * 1024
const offer = (size: number): { size: number, chunkSize: number, hashes: string, recipients: string[] } => {
  const chunkSize = chunkSizeFor(size)
  return { size, chunkSize, hashes: Buffer.alloc(chunkCount(size, chunkSize) * 32, 7).toString('base64url'), recipients: [PEER_B] }
}

describe('the file store in the relay console', () => {
  let dir: string
  let relay: RelayServer
  let port: number
  let token: string
  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number, json: () => unknown }> =>
    await adminRequest(port, { method, path: `/api/v1${path}`, token, ...(body !== undefined ? { body } : {}) })

  before(async () => {
    dir = await tmpDir('parley-rfpol-')
    relay = new RelayServer({
      dataDir: join(dir, 'relay'), listen: ['/ip4/127.0.0.1/tcp/0'], admin: { port: 0 }, files: { quotaBytes: 8 * MiB, maxFileBytes: 4 * MiB }
    }, createLogger('relay', 'error'))
    await relay.start()
    port = Number(new URL(relay.admin.consoleUrl as string).port)
    token = (await readFile(join(dir, 'relay', 'admin-token'), 'utf8')).trim()
  })
  after(async () => {
    await relay?.stop()
    await removeDir(dir)
  })

  it('usage in /stats; retention, quota and largest file from the config, then set, refused and reset at run time', async () => {
    const stats = async (): Promise<RelayStats> => (await api('GET', '/stats')).json() as RelayStats
    assert.deepEqual((await stats()).files, { files: 0, bytes: 0 })
    await relay.fileStore.offer(PEER_A, 'AAAAAAAAAAAAAAAAAAAAAA', offer(3 * MiB))
    assert.deepEqual((await stats()).files, { files: 1, bytes: 3 * MiB })

    const view = (await api('GET', '/policy')).json() as PolicyView
    assert.equal(view.effective.fileQuotaBytes, 8 * MiB)
    assert.equal(view.effective.maxFileBytes, 4 * MiB)
    assert.equal(view.effective.fileTtlMs, 3 * 24 * 3600_000)
    assert.equal(view.source.fileQuotaBytes, 'config')

    // out of range: refused with its rule, as data the console words
    const bad = await api('PUT', '/policy', { set: { fileTtlMs: 5 } })
    assert.equal(bad.status, 400)
    const body = bad.json() as { code: string, message: string, detail?: Record<string, unknown> }
    assert.match(body.message, /file retention must be between 1 minute and 10 years/)
    assert.deepEqual(body.detail, { reason: 'policyRange', key: 'fileTtlMs', ...POLICY_RANGES.fileTtlMs })
    const refusal = new ApiError(body.code, body.message, 400, body.detail)
    assert.equal(errorText(createI18n({ en, 'zh-CN': zhCN }, 'zh-CN').t, refusal), '文件保留期须在 1 分钟到 3,650 天之间。请以天为单位填写（0.5 即 12 小时）。')
    assert.match(errorText(createI18n({ en, 'zh-CN': zhCN }, 'en').t, refusal), /File retention must be between 1 minute and 3,650 days/)

    // a smaller quota and a larger largest file apply to the next offer at once
    const set = await api('PUT', '/policy', { set: { fileQuotaBytes: 4 * MiB, maxFileBytes: 16 * MiB, fileTtlMs: 3600_000 } })
    assert.equal(set.status, 200)
    assert.equal((set.json() as PolicyView).source.fileQuotaBytes, 'console')
    await assert.rejects(relay.fileStore.offer(PEER_A, 'BBBBBBBBBBBBBBBBBBBBBB', offer(2 * MiB)),
      (e: Error & { code?: string }) => e.code === 'ERR_FILE_QUOTA_EXCEEDED' && /at most 4\.0 MiB/.test(e.message))
    const t0 = Date.now()
    await relay.fileStore.offer(PEER_B, 'CCCCCCCCCCCCCCCCCCCCCC', offer(1 * MiB))
    const meta = JSON.parse(await readFile(join(dir, 'relay', 'files', 'CCCCCCCCCCCCCCCCCCCCCC', 'meta.json'), 'utf8')) as { expiresAt: number }
    assert.ok(meta.expiresAt >= t0 + 3600_000 && meta.expiresAt < t0 + 2 * 3600_000, 'the new retention')
    // back to the config file's value
    const reset = (await api('PUT', '/policy', { reset: ['fileQuotaBytes'] })).json() as PolicyView
    assert.equal(reset.effective.fileQuotaBytes, 8 * MiB)
    await relay.fileStore.offer(PEER_A, 'BBBBBBBBBBBBBBBBBBBBBB', offer(2 * MiB))
    assert.deepEqual((await stats()).files, { files: 3, bytes: 6 * MiB })

    // per device, against the per-user quota in force (the console's users list)
    await relay.admit(PEER_A)
    await relay.admit(PEER_B)
    const filesOf = async (): Promise<Record<string, UserView['files'] | undefined>> => {
      const users = (await api('GET', '/users')).json() as UserView[]
      return Object.fromEntries(users.map(u => [u.peerId, u.files]))
    }
    assert.deepEqual(await filesOf(), {
      [PEER_A]: { files: 2, bytes: 5 * MiB, quotaBytes: 8 * MiB },
      [PEER_B]: { files: 1, bytes: 1 * MiB, quotaBytes: 8 * MiB }
    })
    assert.equal((await api('PUT', '/policy', { set: { fileQuotaBytes: 6 * MiB } })).status, 200)
    assert.deepEqual((await filesOf())[PEER_A], { files: 2, bytes: 5 * MiB, quotaBytes: 6 * MiB }, 'the quota the relay applies now')
    await assert.rejects(relay.fileStore.offer(PEER_A, 'DDDDDDDDDDDDDDDDDDDDDD', offer(2 * MiB)), { code: 'ERR_FILE_QUOTA_EXCEEDED' })
    await api('PUT', '/policy', { reset: ['fileQuotaBytes'] })
  })

  it('the console says the usage in both languages', () => {
    for (const [locale, want] of [['en', '3 files, 6 MiB'], ['zh-CN', '3 个文件，6 MiB']] as const) {
      const i = createI18n({ en, 'zh-CN': zhCN }, locale)
      assert.equal(i.t.filesKeptLine(3, bytes(6 * MiB, i.f)), want)
      assert.notEqual(i.t.fileQuotaMb, '')
    }
    const en_ = createI18n({ en, 'zh-CN': zhCN }, 'en')
    const zh = createI18n({ en, 'zh-CN': zhCN }, 'zh-CN')
    assert.equal(en_.t.filesOf(2, bytes(5 * MiB, en_.f), bytes(8 * MiB, en_.f)), '5 MiB of 8 MiB (2 files)')
    assert.equal(zh.t.filesOf(2, bytes(5 * MiB, zh.f), bytes(8 * MiB, zh.f)), '已用 5 MiB，共 8 MiB（2 个文件）')
    assert.equal(en_.t.mailboxUse(3, 1000, bytes(2048, en_.f), bytes(64 * MiB, en_.f)), '3 / 1,000 messages, 2 KiB of 64 MiB')
    assert.equal(zh.t.mailboxUse(3, 1000, bytes(2048, zh.f), bytes(64 * MiB, zh.f)), '3 / 1,000 条，已用 2 KiB，共 64 MiB')
  })
})
