/**
 * Admin API refusals carry their rule as data (`detail`), and the console words them from its own catalogs:
 * the Chinese console never shows the relay's English, and policy ranges are said in the form's units.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ParleyError } from '../../../../core/errors.js'
import { AUDIT_ACTIONS, POLICY_RANGES } from '../../../../core/protocol/admin-api.js'
import { parsePolicyOverrides } from '../../../../relay/src/admin/policy.js'
import { parseDirectoryCsv } from '../../../../relay/src/admin/directory.js'
import { AdminAuth } from '../../../../relay/src/admin/auth.js'
import { errorText } from '../../../../app/console/src/errors.js'
import { ApiError } from '../../../../app/shared/http.js'
import { createI18n } from '../../../../app/shared/i18n.js'
import { en, zhCN } from '../../../../app/console/src/messages.js'

const zh = createI18n({ en, 'zh-CN': zhCN }, 'zh-CN').t
const eng = createI18n({ en, 'zh-CN': zhCN }, 'en').t

/** what the thrown error answers over HTTP, as the console's client reads it */
function answered (fn: () => unknown): ApiError {
  try { fn() } catch (err) {
    assert.ok(err instanceof ParleyError)
    const json = JSON.parse(JSON.stringify(err)) as { code: string, message: string, detail?: Record<string, unknown> }
    return new ApiError(json.code, json.message, 400, json.detail)
  }
  assert.fail('did not throw')
}

describe('admin refusals in the admin\'s language', () => {
  it('a policy out of range names its rule and range; the console says it in days and MiB, in Chinese and English', () => {
    const ttl = answered(() => parsePolicyOverrides({ mailboxTtlMs: 1000 }, 'set'))
    assert.match(ttl.message, /between 1 minute and 10 years/, 'the CLI keeps its English')
    assert.deepEqual(ttl.detail, { reason: 'policyRange', key: 'mailboxTtlMs', ...POLICY_RANGES.mailboxTtlMs })
    assert.equal(errorText(zh, ttl), '邮件保留期须在 1 分钟到 3,650 天之间。请以天为单位填写（0.5 即 12 小时）。')
    assert.match(errorText(eng, ttl), /between 1 minute and 3,650 days/)
    const bytes = answered(() => parsePolicyOverrides({ quotaBytes: 10 }))
    assert.match(errorText(zh, bytes), /1 到 1,048,576 之间的整数（单位 MiB/)
    assert.match(errorText(eng, bytes), /whole number of MiB from 1 to 1,048,576/)
    assert.match(errorText(zh, answered(() => parsePolicyOverrides({ quotaMessages: 2e7 }))), /消息配额须为 1 到 10,000,000 之间的整数/)
    assert.match(errorText(zh, answered(() => parsePolicyOverrides({ federation: true }))), /不认识设置项“federation”/)
  })

  it('a CSV with bad lines: every line named, in Chinese, nothing of the relay\'s English', () => {
    const e = answered(() => parseDirectoryCsv('姓名,邮箱\n,a@example.com\n王小明,not-an-address\n王小明,wang@example.com\n李娜,wang@example.com\n'))
    assert.match(e.message, /line 2: the name is empty/)
    const text = errorText(zh, e)
    assert.equal(text, '未导入任何人：有 3 处问题需要先修正。第 2 行：姓名为空。第 3 行：“not-an-address”不是邮箱地址。第 5 行：与第 4 行是同一个人。')
    assert.doesNotMatch(text, /[a-z]{4,} [a-z]{3,}/, 'no English words')
    assert.match(errorText(eng, e), /^Nothing was imported: 3 problems to fix first\. Line 2: the name is empty\./)
    assert.equal(errorText(zh, answered(() => parseDirectoryCsv('department,email\nOps,a@example.com\n'))), '表头没有姓名列（姓名 或 name）。')
  })

  it('login: wrong and locked out, in the admin\'s language; a code without words of its own still gets a sentence', async () => {
    const auth = new AdminAuth('the-token', '/nonexistent/password')
    const tries: ApiError[] = []
    for (let i = 0; i < 6; i++) {
      await auth.login({ token: 'wrong' }).catch((err: ParleyError) => { tries.push(new ApiError(err.code, err.message, 401, err.detail)) })
    }
    assert.equal(errorText(zh, tries[0]), '管理员令牌或密码错误。')
    assert.match(errorText(zh, tries[5] as ApiError), /^登录失败次数过多：请 \d+ 秒后再试。$/)
    assert.equal(errorText(zh, new ApiError('ERR_UNREACHABLE', 'Failed to fetch')), '中继没有响应。它在运行吗？请稍后再试。')
    assert.equal(errorText(zh, new ApiError('ERR_SOMETHING_NEW', 'x', 500, { reason: 'fromTheFuture' })), '中继出错了（ERR_SOMETHING_NEW）。请重试；详情见中继日志。')
  })

  it('a change from another web page is said as that (not as an ended session); audit actions have words in both languages', () => {
    const e = new ApiError('ERR_UNAUTHORIZED', 'a change must come from the console itself (foreign Origin)', 401, { reason: 'foreignOrigin' })
    assert.match(errorText(zh, e), /另一个网页/)
    assert.match(errorText(eng, e), /another web page/)
    assert.notEqual(errorText(eng, e), errorText(eng, new ApiError('ERR_UNAUTHORIZED', 'log in', 401)))
    for (const a of AUDIT_ACTIONS) {
      assert.ok(zh.auditAction[a].length > 0 && eng.auditAction[a].length > 0, a)
      assert.doesNotMatch(zh.auditAction[a], /[a-z]{3,}/, `${a} in Chinese`)
    }
  })
})
