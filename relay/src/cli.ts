/**
 * parley-relay: run the relay, and administer a running one through its
 * admin socket. Usage errors exit 2, failures 1.
 */
import '../../core/polyfill.js'
import { parseArgs } from 'node:util'
import { request } from 'node:http'
import { readFile, writeFile } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { toParleyError, ParleyError, type ErrorCode } from '../../core/errors.js'
import { createLogger, type LogLevel } from '../../core/util/log.js'
import { printable } from '../../core/util/printable.js'
import { RelayServer } from './relay-server.js'
import { redactUrl } from './store/pg-mailbox-store.js'
import type { RelayStats } from './types.js'
import { DEFAULT_ADMIN_PORT, readRelayConfigFile, relayFiles, type RelayInit } from './config.js'
import { adminFiles } from './admin/admin-room.js'
import { ADMIN_API_PREFIX } from './admin/routes.js'
import type { InviteView, PersonView, UserView } from './admin/admin-service.js'
import type { AuditEntry } from './admin/audit-log.js'
import type { InviteSheetRow } from './admin/directory.js'
import type { PolicyView } from './admin/policy.js'
import type { FedPeerView } from './federation/federation.js'

const USAGE = `usage: parley-relay <command> --data DIR [options]

commands:
  start [--listen ADDR]... [--announce ADDR]... [--allow PEER_ID]... [--config FILE] [--store URL]
        [--admin-port PORT] [--admin-host ADDR] [--log-level debug|info|warn|error]
        [--file-quota BYTES] [--file-ttl SECONDS] [--file-max BYTES]
                          run the relay in the foreground (SIGTERM stops it cleanly,
                          SIGHUP re-reads the config file's policy);
                          --store postgres://user@host/db shares one PostgreSQL database
                          among several relay instances (default: LevelDB in --data);
                          --file-*: files kept for offline recipients (per-user quota, default
                          2 GiB; time to live, default 3 days; largest file, default 1 GiB)
  invite create [--uses N] [--hours H] [--note TEXT]
                          create an invite (default: 1 use, 168 hours); prints the token and link
  invite list [--json]    invites with their state and who redeemed them
  invite revoke ID        revoke an invite (ID: its first 8 characters or more)
  users [--json]          admitted users: last seen, online, mailbox size
  allow PEER_ID           admit a peer without an invite (allow-list)
  remove PEER_ID          withdraw a user's admission
  stats [--json]          connections, reservations, mailbox and counters
  repair                  repair a damaged store (relay stopped): LevelDB's repair, keeps what it can read
  policy [--json]         retention, quotas and federation, and where each comes from
  policy set KEY=VALUE... change policy at once (mailboxTtlMs, quotaMessages, quotaBytes,
                          federationAllowed, fileTtlMs, fileQuotaBytes, maxFileBytes);
                          policy reset KEY... goes back to the config file
  directory import FILE.csv [--uses N] [--hours H] [--csv OUT.csv] [--sheet OUT.html]
                          import people (name, department, email or staff number): one invite each
  directory list [--json] the people, their departments and devices
  directory remove ID     remove a person: their invite is revoked and their devices lose admission
  audit [--limit N] [--json]
                          the admin audit log, newest first
  federation invite [--hours H]
                          a one-time pairing token for another office's relay (default: valid 24 hours)
  federation add TOKEN    pair with the relay that made TOKEN (both then pin each other's peer ID)
  federation list [--json]
                          paired relays: state, queue depth and age, last contact, counts
  federation remove ID    unpair (ID: its peer ID or first 8+ characters); its queue is dropped, its senders told
  federation policy ID KEY=VALUE...
                          per paired relay: directory=none|listed, quotaMessages, quotaBytes, ttlMs
  console-url             the console's address with the admin token, to open in a browser
  password [--remove]     set the console's admin password (read from standard input)`

class UsageError extends Error {}
const out = (s: string): void => { process.stdout.write(s + '\n') }

type Options = Record<string, { type: 'string' | 'boolean', multiple?: boolean }>

/** `positionals`: how many arguments besides the options (-1: any number) */
function parse (args: string[], options: Options, positionals: number): { values: Record<string, unknown>, positionals: string[] } {
  let parsed
  try {
    parsed = parseArgs({ args, options: { data: { type: 'string' }, ...options }, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  if (positionals >= 0 && parsed.positionals.length !== positionals) {
    throw new UsageError(`expected ${positionals} argument(s), got ${parsed.positionals.length}`)
  }
  if (typeof parsed.values.data !== 'string') throw new UsageError('--data DIR is required')
  return parsed as { values: Record<string, unknown>, positionals: string[] }
}

async function admin<T> (dataDir: string, method: string, path: string, body?: unknown, raw = false): Promise<T> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
  const headers: Record<string, string | number> = { 'x-parley-admin-user': userInfo().username }
  if (payload !== undefined) { headers['content-type'] = 'application/json'; headers['content-length'] = payload.byteLength }
  return await new Promise<T>((resolve, reject) => {
    const req = request({ socketPath: relayFiles(dataDir).adminSocket, method, path: ADMIN_API_PREFIX + path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        if ((res.statusCode ?? 500) < 400 && raw) { resolve(text as T); return }
        const v = JSON.parse(text) as { code?: ErrorCode, message?: string }
        if ((res.statusCode ?? 500) >= 400) reject(new ParleyError(v.code ?? 'ERR_INTERNAL', v.message ?? 'failed'))
        else resolve(v as T)
      })
    })
    req.on('error', (err) => {
      reject(new ParleyError('ERR_API_UNAVAILABLE', `no relay is running with data dir ${dataDir} (${err.message})`, { cause: err }))
    })
    req.end(payload)
  })
}

async function main (argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  if (cmd === undefined || cmd === '--help' || cmd === '-h') {
    (cmd === undefined ? process.stderr : process.stdout).write(USAGE + '\n')
    return cmd === undefined ? 2 : 0
  }
  switch (cmd) {
    case 'start': {
      const { values } = parse(rest, {
        listen: { type: 'string', multiple: true },
        announce: { type: 'string', multiple: true },
        allow: { type: 'string', multiple: true },
        config: { type: 'string' },
        store: { type: 'string' },
        'admin-port': { type: 'string' },
        'admin-host': { type: 'string' },
        'log-level': { type: 'string' },
        'file-quota': { type: 'string' },
        'file-ttl': { type: 'string' },
        'file-max': { type: 'string' }
      }, 0)
      const num = (flag: string): number | undefined => {
        const v = values[flag]
        if (v === undefined) return undefined
        if (!/^\d{1,16}$/.test(v as string)) throw new UsageError(`--${flag} must be a whole number`)
        return Number(v)
      }
      const fileFlags = {
        ...(num('file-quota') !== undefined ? { quotaBytes: num('file-quota') } : {}),
        ...(num('file-ttl') !== undefined ? { ttlMs: (num('file-ttl') as number) * 1000 } : {}),
        ...(num('file-max') !== undefined ? { maxFileBytes: num('file-max') } : {})
      }
      const configPath = values.config as string | undefined
      const file = configPath !== undefined ? await readRelayConfigFile(configPath) : {}
      const port = values['admin-port'] === undefined ? undefined : Number(values['admin-port'])
      if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new UsageError('--admin-port must be a port number (0 picks one)')
      const level = (values['log-level'] as LogLevel | undefined) ?? file.logLevel
      if (level !== undefined && !['debug', 'info', 'warn', 'error'].includes(level)) throw new UsageError('--log-level must be debug, info, warn or error')
      const log = createLogger('parley-relay', (process.env.PARLEY_LOG as LogLevel | undefined) ?? level ?? 'info')
      const init = (f: Omit<RelayInit, 'dataDir'>): RelayInit => ({
        ...f,
        dataDir: values.data as string,
        ...(values.listen !== undefined ? { listen: values.listen as string[] } : {}),
        ...(values.announce !== undefined ? { announce: values.announce as string[] } : {}),
        ...(values.store !== undefined ? { store: values.store as string } : {}),
        allow: [...(f.allow ?? []), ...((values.allow as string[] | undefined) ?? [])],
        files: { ...f.files, ...fileFlags },
        admin: {
          port: DEFAULT_ADMIN_PORT,
          ...f.admin,
          ...(port !== undefined ? { port } : {}),
          ...(values['admin-host'] !== undefined ? { host: values['admin-host'] as string } : {})
        }
      })
      const relay = new RelayServer(init(file), log)
      process.on('uncaughtException', (err) => { log.error('uncaught exception', { err: String(err?.stack ?? err) }) })
      process.on('unhandledRejection', (err) => { log.error('unhandled rejection', { err: String((err as Error)?.stack ?? err) }) })
      await relay.start()
      out(`Parley relay ${relay.peerId}`)
      for (const a of relay.addresses()) out(`  listening: ${a}`)
      const consoleUrl = relay.admin.consoleUrl
      const tokenFile = adminFiles(values.data as string).token
      if (consoleUrl !== undefined) out(`  console: ${consoleUrl} (token in ${tokenFile}; parley-relay console-url prints a login link)`)
      out(`  store: ${relay.config.store === 'level' ? 'LevelDB in ' + relay.config.dataDir : redactUrl(relay.config.store)}`)
      out('ready')
      process.on('SIGHUP', () => {
        if (configPath === undefined) { log.info('SIGHUP: no config file to re-read'); return }
        readRelayConfigFile(configPath).then((f) => {
          relay.reloadPolicy(init(f))
          log.info('config file re-read: policy applied', { policy: relay.admin.policy.effective() })
        },
          (err) => { log.error('config file not applied', { err: toParleyError(err).message }) })
      })
      return await new Promise<number>((resolve) => {
        const stop = (): void => { log.info('stopping'); relay.stop().then(() => { resolve(0) }, () => { resolve(1) }) }
        process.once('SIGTERM', stop)
        process.once('SIGINT', stop)
      })
    }
    case 'invite': {
      const [sub, ...more] = rest
      if (sub === 'create') {
        const { values } = parse(more, { uses: { type: 'string' }, hours: { type: 'string' }, note: { type: 'string' } }, 0)
        const uses = values.uses === undefined ? undefined : Number(values.uses)
        const hours = values.hours === undefined ? undefined : Number(values.hours)
        if (uses !== undefined && (!Number.isInteger(uses) || uses < 1)) throw new UsageError('--uses must be a positive integer')
        if (hours !== undefined && (!Number.isFinite(hours) || hours <= 0)) throw new UsageError('--hours must be a positive number')
        const invite = await admin<InviteView>(values.data as string, 'POST', '/invites', { uses, hours, note: values.note })
        out(invite.token)
        process.stderr.write(`invite ${invite.id}: valid until ${new Date(invite.expiresAt).toISOString()} for ${invite.maxUses} use(s)\n` +
          `link: ${invite.link}\nthe user runs: parley start --relay <relay address> --invite ${invite.token}\n`)
        return 0
      }
      if (sub === 'list') {
        const { values } = parse(more, { json: { type: 'boolean' } }, 0)
        const list = await admin<InviteView[]>(values.data as string, 'GET', '/invites')
        if (values.json === true) { out(JSON.stringify(list)); return 0 }
        for (const i of list) {
          const by = (i.redeemedBy ?? []).map(r => r.peerId).join(' ')
          const until = new Date(i.expiresAt).toISOString()
          out(`${i.id} ${i.state} ${i.uses}/${i.maxUses} until ${until} ${printable(i.note)}${by !== '' ? ` redeemed by ${by}` : ''}`)
        }
        return 0
      }
      if (sub === 'revoke') {
        const { values, positionals } = parse(more, {}, 1)
        const i = await admin<InviteView>(values.data as string, 'POST', `/invites/${encodeURIComponent(positionals[0] as string)}/revoke`, {})
        out(`${i.id} ${i.state}`)
        return 0
      }
      throw new UsageError('expected `invite create|list|revoke`')
    }
    case 'users': {
      const { values } = parse(rest, { json: { type: 'boolean' } }, 0)
      const users = await admin<UserView[]>(values.data as string, 'GET', '/users')
      if (values.json === true) out(JSON.stringify(users))
      else {
        for (const u of users) {
          const seen = u.lastSeen === null ? 'never seen' : `seen ${new Date(u.lastSeen).toISOString()}`
          const who = u.person !== undefined ? ` (${printable(u.person.name)})` : ''
          const since = new Date(u.admittedAt).toISOString()
          const files = `files ${u.files.files} (${u.files.bytes} of ${u.files.quotaBytes} bytes)`
          out(`${u.peerId}${who} ${u.via} since ${since}, ${u.online ? 'online' : seen}, mailbox ${u.mailbox.messages} (${u.mailbox.bytes} bytes), ${files}`)
        }
      }
      return 0
    }
    case 'allow':
    case 'remove': {
      const { values, positionals } = parse(rest, {}, 1)
      const peer = positionals[0] as string
      const dir = values.data as string
      const r = cmd === 'allow' ? await admin(dir, 'POST', '/users', { peerId: peer }) : await admin(dir, 'DELETE', `/users/${encodeURIComponent(peer)}`)
      out(JSON.stringify(r))
      return 0
    }
    case 'repair': {
      const { values } = parse(rest, {}, 0)
      const { repairRelayStore } = await import('./store/open-level-store.js')
      await repairRelayStore(relayFiles(values.data as string).db)
      out('repaired: start the relay again (unreadable files, if any, were set aside in db/lost/)')
      return 0
    }
    case 'stats': {
      const { values } = parse(rest, { json: { type: 'boolean' } }, 0)
      const s = await admin<RelayStats>(values.data as string, 'GET', '/stats')
      if (values.json === true) { out(JSON.stringify(s)); return 0 }
      out(`relay ${s.peerId}, up ${Math.round(s.uptimeMs / 1000)} s`)
      out(`connections ${s.connections}, reservations ${s.reservations}, users ${s.users}`)
      out(`mailbox: ${s.mailbox.messages} messages, ${s.mailbox.bytes} bytes for ${s.mailbox.recipients} recipients`)
      out(`counters: ${Object.entries(s.counters).map(([k, v]) => `${k} ${v}`).join(', ')}`)
      // who fills whose mailbox: a sender at 100 % of its share, with refusals, is flooding that recipient
      const heavy = (s.senders ?? []).filter(u => u.shareUsed >= 0.5 || u.refused > 0)
      if (heavy.length > 0) out('senders holding the most of a mailbox (share: the part of one mailbox one sender may fill):')
      for (const u of heavy) {
        const refused = u.refused > 0 ? `, ${u.refused} refused (share full)` : ''
        out(`  ${u.sender} -> ${u.recipient}: ${u.messages} messages, ${u.bytes} bytes, ${Math.round(u.shareUsed * 100)} % of the share${refused}`)
      }
      return 0
    }
    case 'policy': return await policyCommand(rest)
    case 'directory': return await directoryCommand(rest)
    case 'federation': return await federationCommand(rest)
    case 'audit': {
      const { values } = parse(rest, { limit: { type: 'string' }, json: { type: 'boolean' } }, 0)
      const list = await admin<AuditEntry[]>(values.data as string, 'GET', `/audit?limit=${encodeURIComponent(String(values.limit ?? 50))}`)
      if (values.json === true) { out(JSON.stringify(list)); return 0 }
      for (const e of list) {
        const target = e.target !== undefined ? ' ' + printable(e.target) : ''
        out(`${e.t} ${printable(e.who)} ${e.action}${target} ${e.ok ? 'ok' : 'FAILED'} ${e.details !== undefined ? printable(JSON.stringify(e.details)) : ''}`)
      }
      return 0
    }
    case 'console-url': {
      const { values } = parse(rest, {}, 0)
      const dataDir = values.data as string
      const info = JSON.parse(await readFile(relayFiles(dataDir).info, 'utf8').catch(() => '{}')) as { console?: string | null }
      if (typeof info.console !== 'string') throw new ParleyError('ERR_API_UNAVAILABLE', `no relay with a console is running with data dir ${dataDir}`)
      const token = (await readFile(adminFiles(dataDir).token, 'utf8')).trim()
      out(`${info.console}#token=${token}`)
      return 0
    }
    case 'password': {
      const { values } = parse(rest, { remove: { type: 'boolean' } }, 0)
      if (values.remove === true) { await admin(values.data as string, 'PUT', '/password', { password: null }); out('password removed'); return 0 }
      const chunks: Buffer[] = []
      for await (const c of process.stdin) chunks.push(c as Buffer)
      const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
      await admin(values.data as string, 'PUT', '/password', { password })
      out('password set')
      return 0
    }
    default:
      throw new UsageError(`unknown command "${cmd}"`)
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
  if (err instanceof UsageError) { process.stderr.write(`parley-relay: ${err.message}\n\n${USAGE}\n`); process.exitCode = 2; return }
  const e = toParleyError(err)
  process.stderr.write(`parley-relay: ${e.code}: ${e.message}\n`)
  process.exitCode = e.code === 'ERR_INVALID_ARGUMENT' ? 2 : 1
})

async function policyCommand (rest: string[]): Promise<number> {
  const [sub, ...more] = rest
  if (sub === 'set' || sub === 'reset') {
    const { values, positionals } = parse(more, {}, -1)
    if (positionals.length === 0) throw new UsageError(`policy ${sub} needs at least one ${sub === 'set' ? 'KEY=VALUE' : 'KEY'}`)
    const body: { set: Record<string, unknown>, reset: string[] } = { set: {}, reset: [] }
    for (const p of positionals) {
      if (sub === 'reset') { body.reset.push(p); continue }
      const eq = p.indexOf('=')
      if (eq < 1) throw new UsageError(`expected KEY=VALUE, got "${p}"`)
      const v = p.slice(eq + 1)
      body.set[p.slice(0, eq)] = v === 'true' ? true : v === 'false' ? false : Number(v)
    }
    printPolicy(await admin<PolicyView>(values.data as string, 'PUT', '/policy', body), false)
    return 0
  }
  const { values } = parse(sub === undefined || sub.startsWith('--') ? rest : more, { json: { type: 'boolean' } }, 0)
  printPolicy(await admin<PolicyView>(values.data as string, 'GET', '/policy'), values.json === true)
  return 0
}

function printPolicy (p: PolicyView, json: boolean): void {
  if (json) { out(JSON.stringify(p)); return }
  for (const [k, v] of Object.entries(p.effective)) out(`${k} = ${String(v)} (${p.source[k as keyof PolicyView['source']]})`)
}

async function directoryCommand (rest: string[]): Promise<number> {
  const [sub, ...more] = rest
  if (sub === 'import') {
    const { values, positionals } = parse(more, { uses: { type: 'string' }, hours: { type: 'string' }, csv: { type: 'string' }, sheet: { type: 'string' } }, 1)
    const dataDir = values.data as string
    let csv: string
    try {
      csv = await readFile(positionals[0] as string, 'utf8')
    } catch (err) {
      throw new UsageError(`cannot read ${positionals[0] as string}: ${(err as Error).message}`)
    }
    const uses = values.uses === undefined ? undefined : Number(values.uses)
    const hours = values.hours === undefined ? undefined : Number(values.hours)
    const r = await admin<{ added: InviteSheetRow[], skipped: string[] }>(dataDir, 'POST', '/directory/import', { csv, uses, hours })
    out(`imported ${r.added.length} people, one invite each${r.skipped.length > 0 ? `; ${r.skipped.length} already in the directory were skipped` : ''}`)
    const ids = r.added.length > 0 ? `?ids=${encodeURIComponent(r.added.map(a => a.id).join(','))}` : '?ids='
    if (typeof values.csv === 'string') {
      await writeFile(values.csv, await admin<string>(dataDir, 'GET', `/directory/invites.csv${ids}`, undefined, true), { mode: 0o600 })
      out(`links: ${values.csv}`)
    }
    if (typeof values.sheet === 'string') {
      await writeFile(values.sheet, await admin<string>(dataDir, 'GET', `/directory/sheet.html${ids}`, undefined, true), { mode: 0o600 })
      out(`printable sheet: ${values.sheet}`)
    }
    return 0
  }
  if (sub === 'list') {
    const { values } = parse(more, { json: { type: 'boolean' } }, 0)
    const people = await admin<PersonView[]>(values.data as string, 'GET', '/directory')
    if (values.json === true) { out(JSON.stringify(people)); return 0 }
    for (const p of people) {
      out(`${printable(p.id)} ${printable(p.name)} [${printable(p.department.join('/'))}] invite ${p.inviteState}, ${p.devices.length} device(s)`)
    }
    return 0
  }
  if (sub === 'remove') {
    const { values, positionals } = parse(more, {}, 1)
    const r = await admin<{ devices: string[] }>(values.data as string, 'DELETE', `/directory/${encodeURIComponent(positionals[0] as string)}`)
    out(`removed; ${r.devices.length} device(s) lost admission${r.devices.length > 0 ? ': ' + r.devices.join(' ') : ''}`)
    return 0
  }
  throw new UsageError('expected `directory import|list|remove`')
}

async function federationCommand (rest: string[]): Promise<number> {
  const [sub, ...more] = rest
  if (sub === 'invite') {
    const { values } = parse(more, { hours: { type: 'string' } }, 0)
    const hours = values.hours === undefined ? undefined : Number(values.hours)
    if (hours !== undefined && (!Number.isFinite(hours) || hours <= 0)) throw new UsageError('--hours must be a positive number')
    const r = await admin<{ token: string, id: string, expiresAt: number }>(values.data as string, 'POST', '/federation/invite', { hours })
    out(r.token)
    process.stderr.write(`pairing invite ${r.id}: one use, valid until ${new Date(r.expiresAt).toISOString()}\n` +
      'give it to the other office\'s admin over a channel you trust; they run: parley-relay federation add TOKEN --data DIR\n')
    return 0
  }
  if (sub === 'add') {
    const { values, positionals } = parse(more, {}, 1)
    const p = await admin<FedPeerView>(values.data as string, 'POST', '/federation/peers', { token: positionals[0] })
    out(`paired with ${printable(p.name)} (${p.peerId})`)
    return 0
  }
  if (sub === 'list') {
    const { values } = parse(more, { json: { type: 'boolean' } }, 0)
    const list = await admin<FedPeerView[]>(values.data as string, 'GET', '/federation')
    if (values.json === true) { out(JSON.stringify(list)); return 0 }
    if (list.length === 0) out('no paired relays (parley-relay federation invite | add)')
    for (const p of list) {
      const last = p.lastContact === null ? 'no contact yet' : `last contact ${new Date(p.lastContact).toISOString()}`
      const age = p.queue.depth > 0 ? `, oldest ${Math.round(p.queue.oldestAgeMs / 1000)} s` : ''
      const c = p.counts
      out(`${p.peerId} ${printable(p.name)} ${p.state}, queue ${p.queue.depth} (${p.queue.bytes} bytes${age}), ${last}, ` +
        `forwarded ${c.forwarded}, received ${c.received}, refused ${c.refused}, expired ${c.expired}, listed ${c.listed}` +
        ((p.instances?.length ?? 0) > 0 ? `, ${p.instances!.length + 1} instances` : '') +
        (p.lastError !== null ? `; last error: ${printable(p.lastError)}` : ''))
    }
    return 0
  }
  if (sub === 'remove') {
    const { values, positionals } = parse(more, {}, 1)
    const r = await admin<{ peerId: string, dropped: number }>(values.data as string, 'DELETE',
      `/federation/peers/${encodeURIComponent(positionals[0] as string)}`)
    out(`unpaired ${r.peerId}${r.dropped > 0 ? `; ${r.dropped} queued item(s) dropped (their senders are told: failed, not paired)` : ''}`)
    return 0
  }
  if (sub === 'policy') {
    const { values, positionals } = parse(more, {}, -1)
    const [id, ...pairs] = positionals
    if (id === undefined || pairs.length === 0) throw new UsageError('federation policy ID KEY=VALUE...')
    const body: Record<string, unknown> = {}
    for (const p of pairs) {
      const eq = p.indexOf('=')
      if (eq < 1) throw new UsageError(`expected KEY=VALUE, got "${p}"`)
      const v = p.slice(eq + 1)
      body[p.slice(0, eq)] = /^\d+$/.test(v) ? Number(v) : v
    }
    const r = await admin<FedPeerView>(values.data as string, 'PUT', `/federation/peers/${encodeURIComponent(id)}/policy`, body)
    out(JSON.stringify(r.policy))
    return 0
  }
  throw new UsageError('expected `federation invite|add|list|remove|policy`')
}
