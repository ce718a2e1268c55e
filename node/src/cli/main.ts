/**
 * parley: the command line. `start` runs a node in the foreground; every other
 * command talks to that node's local API. Usage errors exit 2, failures 1.
 */
import '../../../core/polyfill.js'
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { RELAY_OPTIONS, START_OPTIONS, UsageError, changeWindowsOption, parse } from './args.js'
import { defaultDataDir } from '../config.js'
import { ApiClient } from './client.js'
import { RELAY_REFUSAL_NEXT, RELAY_REFUSAL_TEXT, type MessageView, type IdentityView, type GroupView } from '../api/contract.js'
import type { PeerView } from '../messaging/messenger.js'
import { printable } from '../../../core/util/printable.js'
import { parseInviteLink } from '../../../core/protocol/invite-link.js'
import { resolve } from 'node:path'
import type { AccountView, TransferView } from '../api/contract.js'

const USAGE = `usage: parley <command> [options]

commands:
  start [--name NAME] [--listen ADDR]... [--peer ADDR]... [--no-mdns] [--api-port N] [--log-format file|json]
        [--relay ADDR[,ADDR...]] [--invite TOKEN] [--join LINK] [--announce-loopback] [--mdns-ttl SECONDS] [--max-connections N]
        [--downloads DIR]
        [--edit-minutes N] [--recall-minutes N]
                              run a node in the foreground (UI and API on 127.0.0.1)
  id                          print this device's peer ID
  peers [--json]              list known peers and presence
  send PEER|GROUP TEXT [--wait sent|delivered|read] [--timeout SECONDS]
                              send a message (PEER: peer ID, ID prefix or name;
                              GROUP: group id or name); --timeout: at most 120 s
  send PEER|GROUP --file PATH [--file PATH...]
                              send files (a folder: every file in it, keeping its layout)
  transfers [--json]
                              file transfers: state, progress, speed, time left
  transfers pause|resume|cancel ID
                              pause, resume or cancel a transfer (ID as listed, or the message id)
  history PEER|GROUP [--json] [--limit N] [--search TEXT]
                              show a conversation
  group create NAME --members PEER[,PEER...]
  group list [--json]
  group add GROUP PEER | group remove GROUP PEER | group rename GROUP NAME | group leave GROUP
                              manage groups (changes: the group's creator only)
  name NAME                   change the display name
  dial ADDR                   connect to a multiaddr (…/p2p/<peer id>)
  relay [ADDR|none] [--invite TOKEN] [--json]
                              show the relay status, or set (none: remove) the relay
  link [CODE] [--label NAME]  on your first device: show a one-time code (text and QR) to link another device;
                              on the new device: join that account with the code (--label: this device's name)
  devices [--json]            list the devices of your account, with last seen
  devices revoke ID           revoke a device (a lost laptop): nothing is sealed to it any more
  join LINK [--json]          use the relay and invite of an invite link (parley://join?…) from the relay admin
  watch                       print events as JSON lines until interrupted
  doctor [--repair] [--json]  check the data dir of a stopped node (device key, message store);
                              --repair: run LevelDB's repair and say what was recovered and lost

every command takes --data DIR (default: ${defaultDataDir()})`

/** the node caps waits at this (POST /messages timeoutMs ≤ 120000) */
const MAX_WAIT_SECONDS = 120

const refusalWords = (code: string): string => RELAY_REFUSAL_TEXT[code] ?? `refused by the relay (${code})`
/** a held message (see node/src/messaging/reconcile.ts), in words */
const HELD_WORDS = 'held: Parley first checks its message numbers with your colleagues (after a damaged message store, ' +
  'or in a group after a restart); it goes out as soon as they answer, or within a minute'
const stateWords = (m: MessageView): string => m.held === true ? `${m.state}, held: checking message numbers with colleagues`
  : m.relayRefusal !== undefined ? `${m.state}: ${refusalWords(m.relayRefusal)}` : m.state
const dataDir = (v: Record<string, unknown>): string => (v.data as string | undefined) ?? defaultDataDir()
const out = (s: string): void => { process.stdout.write(s + '\n') }

/** An optional whole-number option within [min, max]; a clear usage error otherwise. */
function intOption (value: unknown, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  const n = /^\d{1,6}$/.test(String(value)) ? Number(value) : NaN
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}`)
  return n
}

async function main (argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  if (cmd === undefined) { process.stderr.write(USAGE + '\n'); return 2 }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help' || rest.includes('--help') || rest.includes('-h')) { out(USAGE); return 0 }
  switch (cmd) {
    case 'start': {
      const { values } = parse(rest, START_OPTIONS, 0)
      if (typeof values.join === 'string') {
        if (values.relay !== undefined || values.invite !== undefined) {
          throw new UsageError('--join carries the relay and the invite: give it alone, or --relay and --invite')
        }
        const link = joinLink(values.join)
        values.relay = link.relay
        values.invite = link.invite
      }
      const logFormat = values['log-format'] ?? 'file'
      if (logFormat !== 'file' && logFormat !== 'json') throw new UsageError('--log-format must be "file" (DATA/parley.log) or "json" (stderr)')
      const port = values['api-port'] === undefined ? undefined : /^\d{1,5}$/.test(values['api-port'] as string) ? Number(values['api-port']) : NaN
      if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new UsageError('--api-port must be an integer 0..65535')
      const mdnsTtl = intOption(values['mdns-ttl'], '--mdns-ttl', 1, 4500)
      const maxConnections = intOption(values['max-connections'], '--max-connections', 1, 10_000)
      const changeWindows = changeWindowsOption(values)
      const { runDaemon } = await import('./daemon.js')
      return await runDaemon({
        dataDir: dataDir(values),
        name: values.name as string | undefined,
        apiPort: port,
        relay: values.relay as string | undefined,
        invite: values.invite as string | undefined,
        ...(changeWindows !== undefined ? { changeWindows } : {}),
        host: {
          listen: values.listen as string[] | undefined,
          peers: values.peer as string[] | undefined,
          mdns: values['no-mdns'] !== true,
          announceLoopback: values['announce-loopback'] === true,
          // a fixed TTL: the records do not grow with the office
          ...(mdnsTtl !== undefined ? { discovery: { minTtlS: mdnsTtl, ttlPerPeerS: 0 } } : {}),
          ...(maxConnections !== undefined ? { connections: { maxConnections } } : {})
        },
        ...(typeof values.downloads === 'string' ? { files: { downloads: resolve(values.downloads) } } : {})
      }, logFormat)
    }
    case 'id': {
      const { values } = parse(rest, {}, 0)
      const me = await (await ApiClient.open(dataDir(values))).call<IdentityView>('GET', '/identity')
      out(me.peerId)
      return 0
    }
    case 'peers': {
      const { values } = parse(rest, { json: { type: 'boolean' } }, 0)
      const peers = await (await ApiClient.open(dataDir(values))).call<PeerView[]>('GET', '/peers')
      if (values.json === true) { out(JSON.stringify(peers)); return 0 }
      if (peers.length === 0) out('no peers yet')
      for (const p of peers) {
        // issue 11: a person on several computers, and a colleague on Parley from before accounts
        const extra = `${p.devices.length > 1 ? `, ${p.devices.length} devices` : ''}${p.needsUpdate ? ', needs an update (older Parley)' : ''}`
        const presence = p.online ? `online (${p.reach ?? 'lan'})` : 'offline'
        out(`${p.online ? '●' : '○'} ${printable(p.name ?? '(unnamed)').padEnd(24)} ${p.peerId} ${presence}${extra}`)
      }
      return 0
    }
    case 'send': {
      if (rest.includes('--file')) return await sendFiles(rest)
      const { values, positionals } = parse(rest, { wait: { type: 'string' }, timeout: { type: 'string' } }, 2)
      const wait = values.wait as string | undefined
      if (wait !== undefined && wait !== 'sent' && wait !== 'delivered' && wait !== 'read') throw new UsageError('--wait must be "sent", "delivered" or "read"')
      const timeout = values.timeout === undefined ? 30 : Number(values.timeout)
      if (!Number.isFinite(timeout) || timeout < 0.001 || timeout > MAX_WAIT_SECONDS) {
        throw new UsageError(`--timeout must be a number of seconds from 0.001 to ${MAX_WAIT_SECONDS}`)
      }
      const [to, text] = positionals as [string, string]
      if (text === '') throw new UsageError('TEXT must not be empty')
      const m = await (await ApiClient.open(dataDir(values))).call<MessageView>('POST', '/messages', { to, text, wait, timeoutMs: Math.round(timeout * 1000) })
      out(`${m.id} ${m.state}`)
      if (m.relayRefusal !== undefined) process.stderr.write(`parley: ${refusalWords(m.relayRefusal)}; ${RELAY_REFUSAL_NEXT}\n`)
      if (m.held === true) process.stderr.write(`parley: ${HELD_WORDS}\n`)
      if (m.state === 'failed') { process.stderr.write(`parley: the recipient refused the message (${m.error ?? 'unknown reason'})\n`); return 1 }
      return 0
    }
    case 'transfers': return await transfers(rest)
    case 'history': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' }, limit: { type: 'string' }, search: { type: 'string' } }, 1)
      const q = new URLSearchParams()
      if (values.limit !== undefined) q.set('limit', values.limit as string)
      if (values.search !== undefined) q.set('search', values.search as string)
      const api = await ApiClient.open(dataDir(values))
      const msgs = await api.call<MessageView[]>('GET', `/conversations/${encodeURIComponent(positionals[0] as string)}/messages?${q.toString()}`)
      if (values.json === true) { out(JSON.stringify(msgs)); return 0 }
      // text from the network never reaches the terminal raw: control characters are shown escaped
      for (const m of msgs) {
        out(`${new Date(m.hlc.w).toISOString()} ${m.outgoing ? 'me' : m.author.slice(-12)} [${stateWords(m)}] ${printable(m.text)}`)
      }
      return 0
    }
    case 'name': {
      const { values, positionals } = parse(rest, {}, 1)
      const r = await (await ApiClient.open(dataDir(values))).call<{ name: string }>('PUT', '/profile', { name: positionals[0] })
      out(r.name)
      return 0
    }
    case 'dial': {
      const { values, positionals } = parse(rest, {}, 1)
      const r = await (await ApiClient.open(dataDir(values))).call<{ peerId: string }>('POST', '/peers/dial', { addr: positionals[0] })
      out(r.peerId)
      return 0
    }
    case 'link': {
      const { values, positionals } = parse(rest, { label: { type: 'string' } }, [0, 1])
      const api = await ApiClient.open(dataDir(values))
      const code = positionals[0]
      if (code === undefined) {
        const r = await api.call<{ code: string, expiresAt: number }>('POST', '/link')
        const { default: QRCode } = await import('qrcode')
        out(await QRCode.toString(r.code, { type: 'utf8', errorCorrectionLevel: 'M' }))
        out(`link code (one use, until ${new Date(r.expiresAt).toLocaleTimeString()}):\n  ${r.code}`)
        out('on the new device run: parley link <code>   (or paste it in the first-run screen)')
        return 0
      }
      const a = await api.call<AccountView>('POST', '/link/join', { code, ...(values.label !== undefined ? { label: values.label } : {}) })
      out(`linked: this device is now part of account ${a.account} (${a.devices.length} devices)`)
      out('messages from before the link stay on your other devices: they were not sealed to this one')
      return 0
    }
    case 'devices': {
      const [sub, ...more] = rest
      if (sub === 'revoke') {
        const { values, positionals } = parse(more, {}, 1)
        const a = await (await ApiClient.open(dataDir(values))).call<AccountView>('POST', `/devices/${encodeURIComponent(positionals[0] as string)}/revoke`)
        out(`revoked; the account has ${a.devices.length} device(s) now`)
        return 0
      }
      const { values } = parse(rest, { json: { type: 'boolean' } }, 0)
      const a = await (await ApiClient.open(dataDir(values))).call<AccountView>('GET', '/account')
      if (values.json === true) { out(JSON.stringify(a)); return 0 }
      out(`account ${a.account}`)
      for (const d of a.devices) {
        const seen = d.self ? 'this device' : d.online ? 'online' : d.lastSeen === null ? 'never seen' : `last seen ${new Date(d.lastSeen).toISOString()}`
        out(`  ${d.online ? '●' : '○'} ${d.peerId} ${printable(d.label ?? '').padEnd(12)} ${seen}${d.accountKey ? ' (account key)' : ''}`)
      }
      for (const r of a.revoked) out(`  ✕ ${r} revoked`)
      if (a.pendingLink !== null) out(`link pending with ${a.pendingLink.device} until ${new Date(a.pendingLink.expiresAt).toISOString()}`)
      return 0
    }
    case 'join': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' } }, [1, 1])
      const link = joinLink(positionals[0] as string)
      const api = await ApiClient.open(dataDir(values))
      const r = await api.call<{ relay: unknown }>('PUT', '/settings', { relay: link.relay, invite: link.invite })
      out(JSON.stringify(r.relay, null, values.json === true ? 0 : 2))
      return 0
    }
    case 'relay': {
      const { values, positionals } = parse(rest, RELAY_OPTIONS, [0, 1])
      const api = await ApiClient.open(dataDir(values))
      const target = positionals[0]
      if (target === undefined && values.invite !== undefined) throw new UsageError('--invite goes with a relay address: parley relay ADDR --invite TOKEN')
      const r = target === undefined
        ? await api.call<{ relay: unknown }>('GET', '/settings')
        : await api.call<{ relay: unknown }>('PUT', '/settings', { relay: target === 'none' ? null : target, invite: values.invite ?? null })
      out(JSON.stringify(r.relay, null, values.json === true ? 0 : 2))
      return 0
    }
    case 'group': {
      const [sub, ...more] = rest
      const print = (g: GroupView): void => { out(`${g.id} "${printable(g.name)}" ${g.members.length} members${g.member ? '' : ' (you are not a member)'}`) }
      switch (sub) {
        case 'create': {
          const { values, positionals } = parse(more, { members: { type: 'string' } }, 1)
          if (typeof values.members !== 'string' || values.members.trim() === '') throw new UsageError('--members PEER[,PEER...] is required')
          const members = values.members.split(',').map(m => m.trim()).filter(Boolean)
          print(await (await ApiClient.open(dataDir(values))).call<GroupView>('POST', '/groups', { name: positionals[0], members }))
          return 0
        }
        case 'list': {
          const { values } = parse(more, { json: { type: 'boolean' } }, 0)
          const groups = await (await ApiClient.open(dataDir(values))).call<GroupView[]>('GET', '/groups')
          if (values.json === true) out(JSON.stringify(groups))
          else if (groups.length === 0) out('no groups')
          else groups.forEach(print)
          return 0
        }
        case 'add':
        case 'remove':
        case 'rename': {
          const { values, positionals } = parse(more, {}, 2)
          const [g, arg] = positionals.map(encodeURIComponent) as [string, string]
          const api = await ApiClient.open(dataDir(values))
          print(sub === 'add'
            ? await api.call<GroupView>('POST', `/groups/${g}/members`, { peer: positionals[1] })
            : sub === 'remove'
              ? await api.call<GroupView>('DELETE', `/groups/${g}/members/${arg}`)
              : await api.call<GroupView>('PUT', `/groups/${g}`, { name: positionals[1] }))
          return 0
        }
        case 'leave': {
          const { values, positionals } = parse(more, {}, 1)
          print(await (await ApiClient.open(dataDir(values))).call<GroupView>('POST', `/groups/${encodeURIComponent(positionals[0] as string)}/leave`))
          return 0
        }
        default: throw new UsageError('group needs one of: create, list, add, remove, rename, leave')
      }
    }
    case 'watch': {
      const { values } = parse(rest, {}, 0)
      const ws = (await ApiClient.open(dataDir(values))).events()
      return await new Promise<number>((resolve) => {
        ws.on('message', (data) => { out(String(data)) })
        ws.on('error', (err) => { process.stderr.write(`parley: cannot watch events: ${err.message}\n`); resolve(1) })
        ws.on('close', () => { resolve(0) })
        process.once('SIGINT', () => { ws.close(); resolve(0) })
        process.once('SIGTERM', () => { ws.close(); resolve(0) })
      })
    }
    case 'doctor': {
      const { values } = parse(rest, { repair: { type: 'boolean' }, json: { type: 'boolean' } }, 0)
      const { doctor, describeReport, doctorExitCode } = await import('./doctor.js')
      const repair = values.repair === true
      const report = await doctor(dataDir(values), repair)
      out(values.json === true ? JSON.stringify(report) : describeReport(report, repair))
      return doctorExitCode(report)
    }
    default:
      throw new UsageError(`unknown command "${cmd}"`)
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`parley: ${err.message}\n\n${USAGE}\n`)
    process.exitCode = 2
    return
  }
  const e = toParleyError(err)
  process.stderr.write(`parley: ${e.code}: ${e.message}\n`)
  process.exitCode = e.code === 'ERR_INVALID_ARGUMENT' ? 2 : 1
})

export { ParleyError }

/** An invite link from the relay admin, or a usage error saying what it should look like. */
function joinLink (text: string): { relay: string, invite: string } {
  try { return parseInviteLink(text) } catch (err) { throw new UsageError((err as Error).message) }
}

/** `parley send PEER|GROUP --file PATH [--file PATH…]` */
async function sendFiles (rest: string[]): Promise<number> {
  const { values, positionals } = parse(rest, { file: { type: 'string', multiple: true } }, 1)
  const paths = (values.file as string[]).map(p => resolve(p))
  const views = await (await ApiClient.open(dataDir(values))).call<TransferView[]>('POST', '/files', { to: positionals[0], paths })
  for (const v of views) out(`${v.id} ${v.msgId} ${printable(v.name)} ${v.size} bytes ${v.state}`)
  return 0
}

const human = (n: number): string =>
  n >= 1024 ** 3
    ? `${(n / 1024 ** 3).toFixed(1)} GiB`
    : n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(0)} KiB` : `${n} B`

export function describeTransfer (v: TransferView): string {
  const pct = v.size === 0 ? 100 : Math.floor(v.bytes * 100 / v.size)
  const speed = v.speed > 0 ? ` ${human(v.speed)}/s` : ''
  const eta = v.etaS !== null && v.state === 'active' ? ` ${v.etaS} s left` : ''
  const relay = v.relay?.state === 'refused'
    ? ` (relay: ${v.relay.message ?? v.relay.code ?? 'refused'})`
    : v.relay !== undefined ? ` (relay copy: ${v.relay.state})` : ''
  const note = v.note !== undefined ? ` (${v.note})` : ''
  const where = v.path !== null ? ` → ${printable(v.path)}` : ''
  return `${v.id} ${v.direction === 'out' ? '↑' : '↓'} ${printable(v.name)} ${v.state} ${pct}% of ${human(v.size)}${speed}${eta}${relay}${note}${where}`
}

/** `parley transfers [--json]`, `parley transfers pause|resume|cancel ID` */
async function transfers (rest: string[]): Promise<number> {
  const [sub, ...more] = rest
  if (sub === 'pause' || sub === 'resume' || sub === 'cancel') {
    const { values, positionals } = parse(more, {}, 1)
    const v = await (await ApiClient.open(dataDir(values))).call<TransferView>('POST', `/transfers/${encodeURIComponent(positionals[0] as string)}/${sub}`)
    out(describeTransfer(v))
    return 0
  }
  const { values } = parse(rest, { json: { type: 'boolean' } }, 0)
  const list = await (await ApiClient.open(dataDir(values))).call<TransferView[]>('GET', '/transfers')
  if (values.json === true) { out(JSON.stringify(list)); return 0 }
  if (list.length === 0) out('no transfers')
  for (const v of list) out(describeTransfer(v))
  return 0
}
