/**
 * The relay's admin listener on loopback, with real nodes making real
 * traffic: login and its refusals (token, Host, Origin), /metrics parsed as
 * Prometheus text, /healthz and /readyz, invites, policy applied at once, the
 * audit log, and the CLI on the admin socket.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { adminRequest } from '../helpers/admin.js'
import { parsePrometheusText, promValue as sample, type PromFamily } from '../helpers/prometheus.js'
import { RELAY_BIN } from '../helpers/proc.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { InviteView, UserView } from '../../relay/src/admin/admin-service.js'
import type { AuditEntry } from '../../relay/src/admin/audit-log.js'
import { AUDIT_ACTIONS } from '../../core/protocol/admin-api.js'

describe('relay admin listener', () => {
  let dir: string
  let relay: RelayServer
  let relayAddr: string
  let port: number
  let token: string
  const nodes: ParleyNode[] = []
  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number, json: () => unknown }> =>
    await adminRequest(port, { method, path: `/api/v1${path}`, token, ...(body !== undefined ? { body } : {}) })
  // asynchronous: the relay answering the CLI runs in this process
  const cli = async (...args: string[]): Promise<string> =>
    (await promisify(execFile)(process.execPath, [RELAY_BIN, ...args, '--data', join(dir, 'relay')], { encoding: 'utf8' })).stdout.trim()

  const start = async (name: string, invite?: string): Promise<ParleyNode> => {
    const n = loopbackNode(join(dir, name), { name, relay: relayAddr, invite, messenger: { depositAfterMs: 100 }, relayClient: { mailboxPollMs: 300 } })
    await n.start()
    nodes.push(n)
    return n
  }
  const metrics = async (): Promise<PromFamily[]> => {
    const r = await adminRequest(port, { path: '/metrics', token })
    assert.equal(r.status, 200)
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/)
    return await parsePrometheusText(r.text)
  }

  before(async () => {
    dir = await tmpDir('parley-radm-')
    relay = new RelayServer({ dataDir: join(dir, 'relay'), listen: ['/ip4/127.0.0.1/tcp/0'], admin: { port: 0, sampleIntervalMs: 200 } }, createLogger('relay', 'error'))
    await relay.start()
    relayAddr = relay.addresses()[0] as string
    port = Number(new URL(relay.admin.consoleUrl as string).port)
    token = (await readFile(join(dir, 'relay', 'admin-token'), 'utf8')).trim()
  })
  after(async () => {
    for (const n of nodes) await n.stop()
    await relay?.stop()
    await removeDir(dir)
  })

  it('listens on 127.0.0.1 only, with the token in a 0600 file of the data dir', async () => {
    assert.match(relay.admin.consoleUrl as string, /^http:\/\/127\.0\.0\.1:\d+\/$/)
    assert.equal((await stat(join(dir, 'relay', 'admin-token'))).mode & 0o777, 0o600)
    assert.ok(token.length >= 32)
    // the public libp2p port does not serve the console
    assert.ok(relay.addresses().every(a => !a.includes(`/tcp/${port}/`)))
  })

  it('refuses requests without the token, with a wrong token, and from a non-loopback Host', async () => {
    assert.equal((await adminRequest(port, { path: '/api/v1/users' })).status, 401)
    assert.equal((await adminRequest(port, { path: '/api/v1/users', token: 'x'.repeat(43) })).status, 401)
    assert.equal((await adminRequest(port, { path: '/metrics' })).status, 401)
    assert.equal((await adminRequest(port, { path: '/api/v1/users', token })).status, 200)
    assert.equal((await adminRequest(port, { path: '/api/v1/users', token, host: `localhost:${port}` })).status, 200)
    // DNS rebinding: a name that resolves to 127.0.0.1 gets nothing, even with the token
    assert.equal((await adminRequest(port, { path: '/api/v1/users', token, host: `evil.example:${port}` })).status, 421)
    assert.equal((await adminRequest(port, { path: '/metrics', token, host: 'evil.example' })).status, 421)
    assert.equal((await adminRequest(port, { path: '/', host: `evil.example:${port}` })).status, 421)
    // a page elsewhere cannot make changes: foreign Origin, or a form body
    const foreign = await adminRequest(port, { path: '/api/v1/invites', token, body: {}, origin: 'http://evil.example' })
    assert.equal(foreign.status, 401)
    // said as what happened (another page), not as an ended session
    assert.deepEqual((foreign.json() as { detail?: unknown }).detail, { reason: 'foreignOrigin' })
    assert.equal((await adminRequest(port, { path: '/api/v1/invites', token, body: {}, contentType: 'application/x-www-form-urlencoded' })).status, 400)
    // health checks need no secret and say nothing else
    const h = await adminRequest(port, { path: '/healthz', host: 'probe.internal' })
    assert.equal(h.status, 200)
    assert.deepEqual(h.json(), { status: 'ok' })
  })

  it('a token or password login gives a session cookie; wrong ones are refused and audited', async () => {
    const bad = await adminRequest(port, { path: '/api/v1/login', body: { token: 'nope', name: 'Mallory' } })
    assert.equal(bad.status, 401)
    const ok = await adminRequest(port, { path: '/api/v1/login', body: { token, name: 'Dana 王' } })
    assert.equal(ok.status, 200)
    const setCookie = String(ok.headers['set-cookie'])
    assert.match(setCookie, /HttpOnly/)
    assert.match(setCookie, /SameSite=Strict/)
    const cookie = setCookie.split(';')[0] as string
    const session = await adminRequest(port, { path: '/api/v1/session', cookie })
    assert.deepEqual(session.json(), { who: 'console:Dana 王', password: false })
    assert.equal((await adminRequest(port, { method: 'PUT', path: '/api/v1/password', cookie, body: { password: 'short' } })).status, 400)
    assert.equal((await adminRequest(port, { method: 'PUT', path: '/api/v1/password', cookie, body: { password: '长城-correct horse' } })).status, 200)
    assert.equal((await adminRequest(port, { path: '/api/v1/login', body: { password: 'wrong password!' } })).status, 401)
    const byPassword = await adminRequest(port, { path: '/api/v1/login', body: { password: '长城-correct horse', name: 'Lee' } })
    assert.equal(byPassword.status, 200)
    await adminRequest(port, { path: '/api/v1/logout', cookie, body: {} })
    assert.equal((await adminRequest(port, { path: '/api/v1/session', cookie })).status, 401, 'a logged-out session is gone')
    const audit = (await (await api('GET', '/audit')).json()) as AuditEntry[]
    const logins = audit.filter(e => e.action === 'login')
    assert.ok(logins.some(e => !e.ok && e.who === 'console:Mallory'))
    assert.ok(logins.some(e => e.ok && e.who === 'console:Dana 王' && e.details?.how === 'token'))
    assert.ok(logins.some(e => e.ok && e.who === 'console:Lee' && e.details?.how === 'password'))
    assert.ok(audit.some(e => e.action === 'password.set' && e.ok && e.who === 'console:Dana 王'))
    assert.ok(!JSON.stringify(audit).includes('correct horse'), 'no password in the audit log')
    assert.ok(!(await readFile(join(dir, 'relay', 'admin-password'), 'utf8')).includes('correct horse'), 'the password is kept hashed')
  })

  it('invites: created with uses, expiry and note, listed with who redeemed them, revoked', async () => {
    const created = await api('POST', '/invites', { uses: 2, hours: 1, note: 'Ops, 两台电脑' })
    assert.equal(created.status, 201)
    const inv = created.json() as InviteView
    assert.equal(inv.maxUses, 2)
    assert.ok(Math.abs(inv.expiresAt - Date.now() - 3600_000) < 60_000)
    assert.match(inv.link, /^parley:\/\/join\?relay=.+&invite=/)
    assert.equal((await api('POST', '/invites', { uses: 0 })).status, 400)
    const a = await start('Ann', inv.token)
    await until(() => a.relay.status().admitted === true, 'Ann admitted')
    const listed = (await api('GET', '/invites')).json() as InviteView[]
    const mine = listed.find(i => i.id === inv.id)
    assert.equal(mine?.uses, 1)
    assert.deepEqual(mine?.redeemedBy?.map(r => r.peerId), [a.peerId])
    assert.equal(mine?.state, 'active')
    // revoked from the CLI: the second use is refused
    assert.match(await cli('invite', 'revoke', inv.id), /revoked$/)
    const stranger = await start('Stranger', inv.token)
    await until(() => stranger.relay.status().lastError?.code === 'ERR_INVITE_INVALID' || stranger.relay.status().lastError?.code === 'ERR_NOT_ADMITTED', 'redemption refused')
    assert.equal(relay.mailbox.isAdmitted(stranger.peerId), false)
    const viaCli = JSON.parse(await cli('invite', 'list', '--json')) as InviteView[]
    assert.equal(viaCli.find(i => i.id === inv.id)?.state, 'revoked')
  })

  it('/metrics, parsed as Prometheus text after real traffic, has the expected series and values', async () => {
    const inv = (await api('POST', '/invites', { uses: 2 })).json() as InviteView
    const s = await start('Sender', inv.token)
    let r = await start('Receiver', inv.token)
    for (const n of [s, r]) await until(() => n.relay.status().admitted === true, 'admitted')
    const rId = r.peerId
    await r.stop()
    nodes.splice(nodes.indexOf(r), 1)
    const sent = []
    for (let i = 0; i < 5; i++) sent.push(await s.messenger.sendMessage(rId, `offline ${i}`))
    await until(async () => (await relay.stats()).mailbox.messages === 5, 'five in the mailbox')
    let m = await metrics()
    assert.equal(sample(m, 'parley_relay_mailbox_messages'), 5)
    assert.equal(sample(m, 'parley_relay_mailbox_depth_max'), 5)
    assert.equal(sample(m, 'parley_relay_mailbox_recipients'), 1)
    assert.ok(sample(m, 'parley_relay_mailbox_bytes') > 0)
    r = await start('Receiver')
    await until(async () => (await r.messenger.history(s.peerId)).length === 5, 'drained', 15_000)
    await until(async () => (await relay.stats()).mailbox.messages === 0, 'acked')
    m = await metrics()
    assert.equal(sample(m, 'parley_relay_deposits_total', { result: 'stored' }), 5)
    assert.ok(sample(m, 'parley_relay_mail_fetched_total') >= 5)
    assert.equal(sample(m, 'parley_relay_deliveries_total'), 5)
    assert.ok(sample(m, 'parley_relay_invites_redeemed_total') >= 3)
    assert.ok(sample(m, 'parley_relay_connections') >= 2)
    assert.ok(sample(m, 'parley_relay_reservations') >= 2)
    assert.ok(sample(m, 'parley_relay_users') >= 3)
    assert.equal(sample(m, 'parley_relay_mailbox_messages'), 0)
    // the stranger from the invite test was refused by code
    assert.ok(sample(m, 'parley_relay_refusals_total', { code: 'ERR_INVITE_INVALID', op: 'redeem' }) >= 1)
    assert.ok(sample(m, 'parley_relay_refusals_total', { code: 'ERR_NOT_ADMITTED' }) >= 1)
    const latency = m.find(f => f.name === 'parley_relay_store_duration_seconds')
    assert.equal(latency?.type, 'histogram')
    const count = sample(m, 'parley_relay_store_duration_seconds_count', { op: 'deposit' })
    assert.ok(count >= 1)
    assert.ok(sample(m, 'parley_relay_store_duration_seconds_sum', { op: 'deposit' }) > 0)
    // how long the mail waited for its recipient: the five, each observed once (re-fetches are not counted again)
    assert.equal(m.find(f => f.name === 'parley_relay_mail_wait_seconds')?.type, 'histogram')
    assert.equal(sample(m, 'parley_relay_mail_wait_seconds_count'), 5)
    assert.ok(sample(m, 'parley_relay_mail_wait_seconds_sum') > 0, 'the receiver was away for a while')
    assert.equal(sample(m, 'parley_relay_mail_wait_seconds_bucket', { le: '+Inf' }), 5)
    assert.equal(sample(m, 'parley_relay_store_duration_seconds_bucket', { op: 'deposit', le: '+Inf' }), count)
    assert.equal(m.find(f => f.name === 'parley_relay_deposits')?.type, 'counter')
    assert.equal(m.find(f => f.name === 'parley_relay_connections')?.type, 'gauge')
    assert.ok(m.some(f => f.name === 'process_resident_memory_bytes'), 'process metrics are there too')
    // federation: the per-relay queue gauges exist, with no sample while nothing is paired
    assert.equal(m.find(f => f.name === 'parley_relay_federation_queue_depth')?.type, 'gauge')
    assert.deepEqual(m.find(f => f.name === 'parley_relay_federation_queue_depth')?.samples, [])
    // the console's traffic ring samples the same counters
    await until(async () => ((await api('GET', '/traffic')).json() as { samples: Array<{ deposited: number }> }).samples.some(x => x.deposited === 5), 'traffic sample')
  })

  it('users: admitted, last seen, online, mailbox size; removing one refuses it at once', async () => {
    const users = (await api('GET', '/users')).json() as UserView[]
    const ann = nodes.find(n => n.messenger.name === 'Ann') as ParleyNode
    const u = users.find(x => x.peerId === ann.peerId)
    assert.equal(u?.online, true)
    assert.ok(u?.lastSeen !== null && Date.now() - (u?.lastSeen ?? 0) < 30_000)
    assert.deepEqual(u?.mailbox, { messages: 0, bytes: 0 })
    assert.deepEqual((await api('DELETE', `/users/${ann.peerId}`)).json(), { removed: true })
    await until(() => ann.relay.status().admitted === false, 'Ann refused', 15_000)
  })

  it('policy: bad values get clear errors; a lower quota applies at once, without a restart', async () => {
    const bad = await api('PUT', '/policy', { set: { quotaMessages: 0 } })
    assert.equal(bad.status, 400)
    assert.match((bad.json() as { message: string }).message, /quotaMessages.*1 to 10,000,000/)
    assert.equal((await api('PUT', '/policy', { set: { mailboxTtl: 5 } })).status, 400)
    assert.equal((await api('PUT', '/policy', { set: { federationAllowed: 'yes' } })).status, 400)
    const set = await api('PUT', '/policy', { set: { quotaMessages: 1, federationAllowed: true } })
    assert.equal(set.status, 200)
    assert.equal((set.json() as { source: Record<string, string> }).source.quotaMessages, 'console')
    const s = nodes.find(n => n.messenger.name === 'Sender') as ParleyNode
    const r = nodes.find(n => n.messenger.name === 'Receiver') as ParleyNode
    const rId = r.peerId
    await r.stop()
    nodes.splice(nodes.indexOf(r), 1)
    await s.messenger.sendMessage(rId, 'one')
    await s.messenger.sendMessage(rId, 'two')
    await until(async () => sample(await metrics(), 'parley_relay_refusals_total', { code: 'ERR_QUOTA_EXCEEDED' }) >= 1, 'quota refusal', 15_000)
    assert.equal((await relay.stats()).mailbox.messages, 1)
    // from the CLI, back to the config file's value
    assert.match(await cli('policy', 'reset', 'quotaMessages'), /quotaMessages = 50000 \(config\)/)
    await until(async () => (await relay.stats()).mailbox.messages === 2, 'the second one deposited once the quota is back', 20_000)
    assert.match(await cli('policy'), /federationAllowed = true \(console\)/)
  })

  it('every change is in the audit log: who, what, when', async () => {
    const audit = JSON.parse(await cli('audit', '--json', '--limit', '500')) as AuditEntry[]
    const actions = audit.map(e => `${e.action}:${e.ok ? 'ok' : 'failed'}`)
    for (const a of ['invite.create:ok', 'invite.create:failed', 'invite.revoke:ok', 'user.remove:ok', 'policy.set:ok', 'policy.set:failed']) {
      assert.ok(actions.includes(a), `${a} audited`)
    }
    assert.ok(audit.some(e => e.action === 'invite.revoke' && e.who.startsWith('cli:')))
    assert.ok(audit.some(e => e.action === 'user.remove' && e.who === 'console:token'))
    assert.ok(audit.every(e => !Number.isNaN(Date.parse(e.t))))
    // each one is an action the console has words for
    assert.deepEqual(audit.filter(e => !(AUDIT_ACTIONS as readonly string[]).includes(e.action)).map(e => e.action), [])
    assert.equal((await stat(join(dir, 'relay', 'audit.log'))).mode & 0o777, 0o600)
  })

  it('/readyz is ready while the store answers and goes unready when it is unreachable; /healthz stays up', async () => {
    const ok = await adminRequest(port, { path: '/readyz' })
    assert.equal(ok.status, 200)
    assert.deepEqual((ok.json() as { checks: unknown }).checks, { listening: { ok: true }, store: { ok: true } })
    await relay.mailbox.stop()
    const down = await adminRequest(port, { path: '/readyz' })
    assert.equal(down.status, 503)
    const body = down.json() as { ready: boolean, checks: { store: { ok: boolean, detail: string } } }
    assert.equal(body.ready, false)
    assert.equal(body.checks.store.ok, false)
    assert.match(body.checks.store.detail, /store does not answer/)
    assert.equal((await adminRequest(port, { path: '/healthz' })).status, 200)
  })
})
