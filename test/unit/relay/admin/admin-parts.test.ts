import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'csv-parse/sync'
import { parsePolicyOverrides, PolicyLayers, type Policy } from '../../../../relay/src/admin/policy.js'
import { departmentTree, invitesCsv, parseDirectoryCsv, splitDepartment } from '../../../../relay/src/admin/directory.js'
import { AuditLog } from '../../../../relay/src/admin/audit-log.js'
import { AdminAuth, loadOrCreateToken } from '../../../../relay/src/admin/auth.js'
import { inviteLink, parseInviteLink } from '../../../../core/protocol/invite-link.js'
import { parseDirectory } from '../../../../core/protocol/directory.js'

const BASE: Policy = {
  mailboxTtlMs: 86_400_000, quotaMessages: 100, quotaBytes: 2 ** 20, federationAllowed: false, fileTtlMs: 86_400_000, fileQuotaBytes: 2 ** 30, maxFileBytes: 2 ** 30
}

describe('relay admin parts', () => {
  it('policy: names the wrong key and why; console values win over the config file until reset', () => {
    assert.throws(() => parsePolicyOverrides({ quotaMessages: 1.5 }), /quotaMessages: the message quota must be a whole number/)
    assert.throws(() => parsePolicyOverrides({ quotaBytes: 10 }), /from 1 MiB to 1 TiB/)
    assert.throws(() => parsePolicyOverrides({ mailboxTtlMs: 1000 }), /between 1 minute and 10 years/)
    assert.throws(() => parsePolicyOverrides({ federation: true }), /unknown setting "federation"/)
    assert.throws(() => parsePolicyOverrides([]), /must be an object/)
    const applied: Policy[] = []
    const layers = new PolicyLayers(BASE, { quotaMessages: 5 }, (p) => { applied.push(p) })
    assert.equal(applied.at(-1)?.quotaMessages, 5)
    assert.equal(layers.view().source.quotaMessages, 'console')
    layers.setBase({ ...BASE, quotaMessages: 7, mailboxTtlMs: 60_000 })
    assert.equal(applied.at(-1)?.quotaMessages, 5, 'the console value still wins after a config reload')
    assert.equal(applied.at(-1)?.mailboxTtlMs, 60_000)
    layers.update({}, ['quotaMessages'])
    assert.equal(applied.at(-1)?.quotaMessages, 7)
    assert.equal(layers.view().source.quotaMessages, 'config')
  })

  it('directory CSV: BOM, Chinese or English headers, quoted commas and quotes, nested departments', () => {
    const rows = parseDirectoryCsv('\uFEFF姓名,部门,工号\n"Wang, Li","销售部 > 华东",007\n"Li ""Lee"" Na",R&D/Core,008\n')
    assert.deepEqual(rows.map(r => r.name), ['Wang, Li', 'Li "Lee" Na'])
    assert.deepEqual(rows[0]?.department, ['销售部', '华东'])
    assert.deepEqual(splitDepartment(' A / B //C '), ['A', 'B', 'C'])
    assert.throws(() => parseDirectoryCsv('department,email\nOps,a@example.com\n'), /no name column/)
    assert.throws(() => parseDirectoryCsv('name,department\nAnn,Ops\n'), /email \(邮箱\) or a staff number/)
    assert.throws(() => parseDirectoryCsv(''), /empty/)
    assert.throws(() => parseDirectoryCsv('name,email\nAnn,not-an-address\n'), /line 2: "not-an-address" is not an email address/)
  })

  it('invite CSV keeps formulas out of spreadsheets but tokens intact', () => {
    const csv = invitesCsv([{ id: 'x', name: '=HYPERLINK("evil")', department: ['+1'], email: '', staffNo: '', token: '-abcdefghijklmnop', link: 'parley://join?x', expiresAt: 0 }])
    const [, row] = parse(csv) as string[][]
    assert.equal(row?.[0], '\'=HYPERLINK("evil")')
    assert.equal(row?.[1], "'+1")
    assert.equal(row?.[4], '-abcdefghijklmnop')
  })

  it('department tree: nested, sorted, people under their department', () => {
    const p = (name: string, department: string[]) => ({ id: name, name, department, email: '', staffNo: '', invite: '', addedAt: 0, devices: [] })
    const tree = departmentTree([p('Zoe', ['B']), p('Amy', ['B']), p('Ken', ['A', 'X']), p('Top', [])])
    assert.deepEqual(tree.departments.map(d => d.name), ['A', 'B'])
    assert.deepEqual(tree.departments[1]?.people.map(x => x.name), ['Amy', 'Zoe'])
    assert.equal(tree.departments[0]?.departments[0]?.people[0]?.name, 'Ken')
    assert.equal(tree.people[0]?.name, 'Top')
    assert.deepEqual(parseDirectory(JSON.parse(JSON.stringify(tree))), tree)
  })

  it('the node refuses a directory nested too deep or with bad peer IDs', () => {
    let deep: unknown = { name: 'x', people: [], departments: [] }
    for (let i = 0; i < 20; i++) deep = { name: 'x', people: [], departments: [deep] }
    assert.throws(() => parseDirectory({ name: '', people: [], departments: [deep] }), { code: 'ERR_MALFORMED_FRAME' })
    assert.throws(() => parseDirectory({ name: '', people: [{ id: 'a', name: 'A', email: '', staffNo: '', devices: ['nope'] }], departments: [] }), { code: 'ERR_MALFORMED_FRAME' })
  })

  it('invite links round-trip; other links are refused', () => {
    const link = inviteLink('/ip4/1.2.3.4/tcp/4100/p2p/12D3KooWabc', 'abcdefghijklmnopqrstuv')
    assert.deepEqual(parseInviteLink(link), { relay: '/ip4/1.2.3.4/tcp/4100/p2p/12D3KooWabc', invite: 'abcdefghijklmnopqrstuv' })
    assert.throws(() => parseInviteLink('https://example.com/?invite=abcdefghijklmnopqrstuv'), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => parseInviteLink('parley://join?relay=x&invite=short'), { code: 'ERR_INVALID_ARGUMENT' })
  })

  it('audit log: append-only JSON lines (0600), newest first', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-audit-'))
    try {
      const log = new AuditLog(join(dir, 'audit.log'))
      await log.start()
      for (let i = 0; i < 5; i++) await log.append({ who: 'cli:root', action: `a${i}`, ok: true })
      await log.stop()
      assert.equal((await stat(join(dir, 'audit.log'))).mode & 0o777, 0o600)
      assert.deepEqual((await log.recent(3)).map(e => e.action), ['a4', 'a3', 'a2'])
      const again = new AuditLog(join(dir, 'audit.log'))
      await again.start()
      await again.append({ who: 'cli:root', action: 'later', ok: false })
      await again.stop()
      assert.equal((await readFile(join(dir, 'audit.log'), 'utf8')).trim().split('\n').length, 6, 'reopened for appending, nothing lost')
    } finally { await rm(dir, { recursive: true, force: true }) }
  })

  it('auth: token file made once (0600); five wrong logins pause logins; sessions expire', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-auth-'))
    try {
      const token = await loadOrCreateToken(join(dir, 'admin-token'))
      assert.equal(await loadOrCreateToken(join(dir, 'admin-token')), token)
      assert.equal((await stat(join(dir, 'admin-token'))).mode & 0o777, 0o600)
      const auth = new AdminAuth(token, join(dir, 'admin-password'), 1000)
      const t0 = 1_000_000
      for (let i = 0; i < 5; i++) await assert.rejects(auth.login({ token: 'wrong' }, t0), /wrong admin token/)
      await assert.rejects(auth.login({ token }, t0 + 1), /too many failed logins/)
      const { session, who } = await auth.login({ token, name: 'Ann\u202E' }, t0 + 31_000)
      assert.equal(who, 'console:Ann', 'control and format characters are dropped from the name')
      assert.equal(auth.session(session, t0 + 31_500), 'console:Ann')
      assert.equal(auth.session(session, t0 + 40_000), undefined, 'expired')
      await auth.setPassword('a long passphrase')
      assert.ok(!(await readFile(join(dir, 'admin-password'), 'utf8')).includes('passphrase'))
      assert.equal((await auth.login({ password: 'a long passphrase' }, t0 + 50_000)).who, 'console:admin')
    } finally { await rm(dir, { recursive: true, force: true }) }
  })
})
