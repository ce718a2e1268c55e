/**
 * Coexistence on UDP 5353 (namespaces, real processes): avahi-daemon and a
 * Parley node share host 1, a second Parley node is on host 2, and an
 * independent browser (python3-zeroconf) on host 3 must see both Parley
 * services (resolved to their addresses and port, with the libp2p addresses
 * in TXT) and avahi's own workstation service, while the two Parley nodes
 * still see each other.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NetnsLan, canUseNamespaces } from '../helpers/netns.js'
import { NodeProc, stopChild } from '../helpers/proc.js'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import type { IdentityView } from '../../node/src/api/contract.js'
import type { PeerView } from '../../node/src/messaging/messenger.js'

const BROWSER = new URL('../fixtures/zeroconf-browse.py', import.meta.url).pathname
const AVAHI_PID = '/run/avahi-daemon/pid'

interface Browsed { name: string, resolved: boolean, addresses?: string[], port?: number, txt?: string[] }

describe('LAN: Parley next to avahi-daemon, seen by an independent browser', () => {
  const lan = new NetnsLan('pavh', 3, '10.231.31')
  let dir: string
  let nodes: NodeProc[] = []
  let avahi: ChildProcess | undefined
  let failed = false
  const guard = async (fn: () => Promise<void>): Promise<void> => { try { await fn() } catch (e) { failed = true; throw e } }

  before(async () => {
    try {
      const why = canUseNamespaces()
      if (why !== null) throw new Error(why)
      execFileSync('/usr/bin/python3', ['-c', 'import zeroconf'])
      execFileSync('avahi-daemon', ['--version'])
      dir = await tmpDir('parley-avahi-')
      lan.up()
      // avahi refuses to start while its pid file names a live process; a stale one (a killed run) is removed
      if (existsSync(AVAHI_PID)) {
        const pid = Number(readFileSync(AVAHI_PID, 'utf8').trim())
        let alive = false
        try { process.kill(pid, 0); alive = true } catch {}
        if (alive) throw new Error(`an avahi-daemon (pid ${pid}) already runs on this machine; stop it to run this test`)
        rmSync(AVAHI_PID, { force: true })
      }
      const conf = join(dir, 'avahi.conf')
      writeFileSync(conf, '[server]\nhost-name=avahi-h1\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces=lan0\nenable-dbus=no\n[publish]\npublish-workstation=yes\npublish-hinfo=no\n')
      avahi = spawn('ip', ['netns', 'exec', lan.hosts[0]!.name, 'avahi-daemon', '--no-drop-root', '--no-chroot', '--no-rlimits', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
      let avahiLog = ''
      avahi.stderr?.on('data', (d: Buffer) => { avahiLog += d.toString() })
      await until(() => avahiLog.includes('Server startup complete'), `avahi-daemon started (${avahiLog.slice(-300)})`, 30_000, 100)
      nodes = lan.hosts.slice(0, 2).map((h, i) => new NodeProc({ dataDir: join(dir, h.name), name: ['Ann', 'Bao'][i] as string, netns: h.name, args: ['--listen', '/ip4/0.0.0.0/tcp/4001'], logFile: join(dir, `${h.name}.log`) }))
      await Promise.all(nodes.map(async n => { await n.start() }))
    } catch (e) { failed = true; throw e }
  })

  after(async () => {
    await Promise.all(nodes.map(async n => { await n.stop() }))
    await stopChild(avahi)
    lan.down()
    if (failed || process.env.KEEP_LOGS === '1') console.error(`avahi test logs kept in ${dir}`)
    else await removeDir(dir)
  })

  it('both Parley nodes see each other with avahi on the same 5353', async () => guard(async () => {
    for (const n of nodes) await until(async () => (await n.api!.call<PeerView[]>('GET', '/peers')).filter(p => p.online && p.name !== null).length === 1, 'the other Parley node online by name', 30_000, 200)
  }))

  it('python3-zeroconf sees and resolves both Parley services and avahi\'s workstation', async () => guard(async () => {
    const out = execFileSync('ip', ['netns', 'exec', lan.hosts[2]!.name, '/usr/bin/python3', BROWSER, '6'], { encoding: 'utf8', timeout: 60_000 })
    const found = JSON.parse(out) as Record<string, Browsed[]>
    const parley = found['_parley._tcp.local.'] ?? []
    for (const [i, n] of nodes.entries()) {
      const me = await n.api!.call<IdentityView>('GET', '/identity')
      const s = parley.find(x => x.name.startsWith(me.peerId))
      assert.ok(s !== undefined, `browser lists ${me.peerId}: ${out}`)
      assert.ok(s.resolved, `resolved: ${JSON.stringify(s)}`)
      assert.deepEqual(s.addresses, [lan.hosts[i]!.ip])
      assert.equal(s.port, 4001)
      assert.ok(s.txt?.some(t => t.startsWith('dnsaddr=/ip4/')), JSON.stringify(s.txt))
    }
    assert.ok((found['_workstation._tcp.local.'] ?? []).some(x => x.name.startsWith('avahi-h1')), `avahi's own service is seen too: ${out}`)
  }))
})
