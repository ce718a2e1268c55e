/**
 * parley-relay: run the relay, and administer a running one through its
 * admin socket. Usage errors exit 2, failures 1.
 */
import '../../core/polyfill.js'
import { parseArgs } from 'node:util'
import { request } from 'node:http'
import { toParleyError, ParleyError, type ErrorCode } from '../../core/errors.js'
import { createLogger } from '../../core/util/log.js'
import { RelayServer } from './relay-server.js'
import { redactUrl } from './store/pg-mailbox-store.js'
import type { RelayStats } from './types.js'
import { readRelayConfigFile, relayFiles } from './config.js'
import type { Invite, RelayUser } from './store/types.js'

const USAGE = `usage: parley-relay <command> --data DIR [options]

commands:
  start [--listen ADDR]... [--announce ADDR]... [--allow PEER_ID]... [--config FILE] [--store URL]
                          run the relay in the foreground (SIGTERM stops it cleanly);
                          --store postgres://user@host/db shares one PostgreSQL database
                          among several relay instances (default: LevelDB in --data)
  invite create [--uses N] [--hours H] [--note TEXT]
                          create an invite token for a user (default: 1 use, 168 hours)
  users [--json]          list admitted users
  allow PEER_ID           admit a peer without an invite (allow-list)
  remove PEER_ID          withdraw a user's admission
  stats [--json]          connections, reservations, mailbox and counters
  repair                  repair a damaged store (relay stopped): LevelDB's repair, keeps what it can read`

class UsageError extends Error {}
const out = (s: string): void => { process.stdout.write(s + '\n') }

type Options = Record<string, { type: 'string' | 'boolean', multiple?: boolean }>

function parse (args: string[], options: Options, positionals: number): { values: Record<string, unknown>, positionals: string[] } {
  let parsed
  try {
    parsed = parseArgs({ args, options: { data: { type: 'string' }, ...options }, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  if (parsed.positionals.length !== positionals) throw new UsageError(`expected ${positionals} argument(s), got ${parsed.positionals.length}`)
  if (typeof parsed.values.data !== 'string') throw new UsageError('--data DIR is required')
  return parsed as { values: Record<string, unknown>, positionals: string[] }
}

async function admin<T> (dataDir: string, method: string, path: string, body?: unknown): Promise<T> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
  return await new Promise<T>((resolve, reject) => {
    const headers = payload !== undefined ? { 'content-type': 'application/json', 'content-length': payload.byteLength } : {}
    const req = request({ socketPath: relayFiles(dataDir).adminSocket, method, path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code?: ErrorCode, message?: string }
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
      const many = { type: 'string', multiple: true } as const
      const { values } = parse(rest, { listen: many, announce: many, allow: many, config: { type: 'string' }, store: { type: 'string' } }, 0)
      const file = typeof values.config === 'string' ? await readRelayConfigFile(values.config) : {}
      const log = createLogger('parley-relay')
      const relay = new RelayServer({
        ...file,
        dataDir: values.data as string,
        ...(values.listen !== undefined ? { listen: values.listen as string[] } : {}),
        ...(values.announce !== undefined ? { announce: values.announce as string[] } : {}),
        ...(values.store !== undefined ? { store: values.store as string } : {}),
        allow: [...(file.allow ?? []), ...((values.allow as string[] | undefined) ?? [])]
      }, log)
      process.on('uncaughtException', (err) => { log.error('uncaught exception', { err: String(err?.stack ?? err) }) })
      process.on('unhandledRejection', (err) => { log.error('unhandled rejection', { err: String((err as Error)?.stack ?? err) }) })
      await relay.start()
      out(`Parley relay ${relay.peerId}`)
      for (const a of relay.addresses()) out(`  listening: ${a}`)
      out(`  store: ${relay.config.store === 'level' ? 'LevelDB in ' + relay.config.dataDir : redactUrl(relay.config.store)}`)
      out('ready')
      return await new Promise<number>((resolve) => {
        const stop = (): void => { log.info('stopping'); relay.stop().then(() => { resolve(0) }, () => { resolve(1) }) }
        process.once('SIGTERM', stop)
        process.once('SIGINT', stop)
      })
    }
    case 'invite': {
      const [sub, ...more] = rest
      if (sub !== 'create') throw new UsageError('expected `invite create`')
      const { values } = parse(more, { uses: { type: 'string' }, hours: { type: 'string' }, note: { type: 'string' } }, 0)
      const uses = values.uses === undefined ? undefined : Number(values.uses)
      const hours = values.hours === undefined ? undefined : Number(values.hours)
      if (uses !== undefined && (!Number.isInteger(uses) || uses < 1)) throw new UsageError('--uses must be a positive integer')
      if (hours !== undefined && (!Number.isFinite(hours) || hours <= 0)) throw new UsageError('--hours must be a positive number')
      const invite = await admin<Invite>(values.data as string, 'POST', '/invites', { uses, hours, note: values.note })
      out(invite.token)
      process.stderr.write(`valid until ${new Date(invite.expiresAt).toISOString()} for ${invite.maxUses} use(s); ` +
        `the user runs: parley start --relay <relay address> --invite ${invite.token}\n`)
      return 0
    }
    case 'users': {
      const { values } = parse(rest, { json: { type: 'boolean' } }, 0)
      const users = await admin<RelayUser[]>(values.data as string, 'GET', '/users')
      if (values.json === true) out(JSON.stringify(users))
      else for (const u of users) out(`${u.peerId} ${u.via} since ${new Date(u.admittedAt).toISOString()}`)
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
