/**
 * Test LANs in network namespaces: one "switch" namespace with a bridge, one
 * namespace per host joined to it by a veth pair. Nothing is created in the
 * root namespace, so no test traffic reaches the machine's real interfaces.
 * Names are exact and owned by the test: leftovers of a crashed run with the
 * same names are deleted first.
 */
import { execFileSync } from 'node:child_process'

export interface LanHost { name: string, ip: string }

function ip (...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function namespaces (): string[] {
  return ip('netns', 'list').split('\n').map(l => l.split(' ')[0] ?? '').filter(Boolean)
}

/**
 * Deletes the namespaces of `names` that exist, after killing what still runs
 * in them (`ip netns del` only removes the name; a crashed run's processes
 * would live on). Each one on its own: one failure does not keep the others.
 */
function removeNamespaces (names: string[]): void {
  const existing = new Set(namespaces())
  const errors: string[] = []
  for (const name of names) {
    if (!existing.has(name)) continue
    try {
      for (const pid of ip('netns', 'pids', name).split('\n').map(Number).filter(n => n > 0)) {
        try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
      }
      ip('netns', 'del', name)
    } catch (err) {
      errors.push(`${name}: ${(err as Error).message}`)
    }
  }
  if (errors.length > 0) throw new Error(`could not remove namespaces: ${errors.join('; ')}`)
}

export function canUseNamespaces (): string | null {
  if (process.getuid?.() !== 0) return 'network namespace tests need root (CI runs as root)'
  try { ip('-V') } catch { return 'iproute2 (`ip`) is not installed' }
  return null
}

export class NetnsLan {
  readonly hosts: LanHost[]
  readonly bridgeNs: string

  /** @param prefix short unique name prefix, e.g. "plan" -> plan-br, plan-h1 ... */
  constructor (readonly prefix: string, count: number, readonly subnet = '10.231.0') {
    this.bridgeNs = `${prefix}-br`
    this.hosts = Array.from({ length: count }, (_, i) => ({ name: `${prefix}-h${i + 1}`, ip: `${subnet}.${i + 1}` }))
  }

  up (): void {
    this.down()
    ip('netns', 'add', this.bridgeNs)
    ip('-n', this.bridgeNs, 'link', 'set', 'lo', 'up')
    ip('-n', this.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge')
    ip('-n', this.bridgeNs, 'link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0')
    ip('-n', this.bridgeNs, 'link', 'set', 'br0', 'up')
    this.hosts.forEach((h, i) => {
      ip('netns', 'add', h.name)
      ip('-n', h.name, 'link', 'set', 'lo', 'up')
      ip('-n', this.bridgeNs, 'link', 'add', `v${i + 1}`, 'type', 'veth', 'peer', 'name', 'lan0', 'netns', h.name)
      ip('-n', this.bridgeNs, 'link', 'set', `v${i + 1}`, 'master', 'br0')
      ip('-n', this.bridgeNs, 'link', 'set', `v${i + 1}`, 'up')
      ip('-n', h.name, 'addr', 'add', `${h.ip}/24`, 'dev', 'lan0')
      ip('-n', h.name, 'link', 'set', 'lan0', 'up')
      // without a route for multicast, mDNS sends fail with ENETUNREACH (no default route here)
      ip('-n', h.name, 'route', 'add', '224.0.0.0/4', 'dev', 'lan0')
    })
  }

  /** Takes a host's link down or up (the veth end on the bridge side). */
  link (host: LanHost, state: 'up' | 'down'): void {
    const i = this.hosts.indexOf(host)
    ip('-n', this.bridgeNs, 'link', 'set', `v${i + 1}`, state)
  }

  down (): void {
    removeNamespaces([...this.hosts.map(h => h.name), this.bridgeNs])
  }
}

function inNs (ns: string, ...cmd: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** A veth pair from `bridge`'s br0 (port `port`) to `host`'s `ifname`, with `cidr` on the host end, both up. */
function attachVeth (bridge: string, port: string, host: string, ifname: string, cidr: string): void {
  ip('-n', bridge, 'link', 'add', port, 'type', 'veth', 'peer', 'name', ifname, 'netns', host)
  ip('-n', bridge, 'link', 'set', port, 'master', 'br0')
  ip('-n', bridge, 'link', 'set', port, 'up')
  ip('-n', host, 'addr', 'add', cidr, 'dev', ifname)
  ip('-n', host, 'link', 'set', ifname, 'up')
}

/** true if `from` can open a TCP connection to ip:port */
function tcpReachable (from: string, ipAddr: string, port: number): boolean {
  try {
    inNs(from, process.execPath, '-e', `const s=require('net').connect(${port},'${ipAddr}');s.setTimeout(1500);s.on('connect',()=>process.exit(0));s.on('timeout',()=>process.exit(1));s.on('error',()=>process.exit(1))`)
    return true
  } catch { return false }
}

/**
 * Office LAN behind a NAT, a relay on the "internet" side, a remote user
 * behind another NAT. The NAT routers masquerade outgoing traffic and drop
 * new connections coming in from the WAN, like a home or office router.
 *
 *   office LAN 10.232.1.0/24: o1 .1, o2 .2, onat .254 (lan0)
 *   WAN        10.232.100.0/24: onat .1, hnat .2, relay .10 (wan0)
 *   home LAN   10.232.2.0/24: r1 .1, hnat .254 (lan0)
 */
export class NatLab {
  readonly ns: Record<'obr' | 'o1' | 'o2' | 'onat' | 'wbr' | 'relay' | 'hnat' | 'hbr' | 'r1', string>
  readonly ip = { o1: '10.232.1.1', o2: '10.232.1.2', relay: '10.232.100.10', r1: '10.232.2.1', onatWan: '10.232.100.1', hnatWan: '10.232.100.2' }

  constructor (readonly prefix = 'pnat') {
    const n = (s: string): string => `${prefix}-${s}`
    this.ns = { obr: n('obr'), o1: n('o1'), o2: n('o2'), onat: n('onat'), wbr: n('wbr'), relay: n('relay'), hnat: n('hnat'), hbr: n('hbr'), r1: n('r1') }
  }

  up (): void {
    this.down()
    for (const name of Object.values(this.ns)) { ip('netns', 'add', name); ip('-n', name, 'link', 'set', 'lo', 'up') }
    for (const br of [this.ns.obr, this.ns.wbr, this.ns.hbr]) {
      ip('-n', br, 'link', 'add', 'br0', 'type', 'bridge')
      ip('-n', br, 'link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0')
      ip('-n', br, 'link', 'set', 'br0', 'up')
    }
    let port = 0
    const attach = (bridge: string, host: string, ifname: string, cidr: string): void => { attachVeth(bridge, `p${++port}`, host, ifname, cidr) }
    attach(this.ns.obr, this.ns.o1, 'lan0', `${this.ip.o1}/24`)
    attach(this.ns.obr, this.ns.o2, 'lan0', `${this.ip.o2}/24`)
    attach(this.ns.obr, this.ns.onat, 'lan0', '10.232.1.254/24')
    attach(this.ns.wbr, this.ns.onat, 'wan0', `${this.ip.onatWan}/24`)
    attach(this.ns.wbr, this.ns.hnat, 'wan0', `${this.ip.hnatWan}/24`)
    attach(this.ns.wbr, this.ns.relay, 'wan0', `${this.ip.relay}/24`)
    attach(this.ns.hbr, this.ns.hnat, 'lan0', '10.232.2.254/24')
    attach(this.ns.hbr, this.ns.r1, 'lan0', `${this.ip.r1}/24`)
    for (const h of [this.ns.o1, this.ns.o2]) {
      ip('-n', h, 'route', 'add', 'default', 'via', '10.232.1.254')
      ip('-n', h, 'route', 'add', '224.0.0.0/4', 'dev', 'lan0')
    }
    ip('-n', this.ns.r1, 'route', 'add', 'default', 'via', '10.232.2.254')
    for (const router of [this.ns.onat, this.ns.hnat]) {
      inNs(router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')
      inNs(router, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan0', '-j', 'MASQUERADE')
      inNs(router, 'iptables', '-A', 'FORWARD', '-i', 'wan0', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT')
      inNs(router, 'iptables', '-A', 'FORWARD', '-i', 'wan0', '-j', 'DROP')
    }
    // the WAN routes to the private networks (as if the ISP would carry the packets): so what keeps the
    // relay and the remote user out of the office is the NAT's DROP rule, not a missing route
    ip('-n', this.ns.relay, 'route', 'add', '10.232.1.0/24', 'via', this.ip.onatWan)
    ip('-n', this.ns.relay, 'route', 'add', '10.232.2.0/24', 'via', this.ip.hnatWan)
    ip('-n', this.ns.hnat, 'route', 'add', '10.232.1.0/24', 'via', this.ip.onatWan)
    ip('-n', this.ns.onat, 'route', 'add', '10.232.2.0/24', 'via', this.ip.hnatWan)
  }

  /** Takes the NAT routers' DROP rule for new inbound connections out or back in (to prove it is what blocks). */
  inboundDrop (on: boolean): void {
    for (const router of [this.ns.onat, this.ns.hnat]) inNs(router, 'iptables', on ? '-A' : '-D', 'FORWARD', '-i', 'wan0', '-j', 'DROP')
  }

  /** true if `from` can open a TCP connection to ip:port (used to prove the NAT blocks inbound) */
  canConnect (from: string, ipAddr: string, port: number): boolean { return tcpReachable(from, ipAddr, port) }

  down (): void {
    removeNamespaces(Object.values(this.ns))
  }
}

/**
 * Two offices for federation (issue 12): each office LAN behind its own NAT,
 * each office's relay on the "internet" side, and a remote user of office A
 * behind a third NAT. The offices' NATs also drop traffic to the other
 * office's relay: only the two relays reach each other.
 *
 *   office A 10.234.1.0/24: a1 .1, anat .254      office B 10.234.2.0/24: b1 .1, bnat .254
 *   home (remote user of A) 10.234.3.0/24: h1 .1, hnat .254
 *   WAN 10.234.100.0/24: anat .1, bnat .2, hnat .3, relay A .10, relay B .11, a third relay C .12
 */
export class FedLab {
  readonly ns: Record<'abr' | 'a1' | 'anat' | 'bbr' | 'b1' | 'bnat' | 'hbr' | 'h1' | 'hnat' | 'wbr' | 'ra' | 'rb' | 'rc', string>
  readonly ip = { a1: '10.234.1.1', b1: '10.234.2.1', h1: '10.234.3.1', ra: '10.234.100.10', rb: '10.234.100.11', rc: '10.234.100.12' }

  constructor (readonly prefix = 'pfed') {
    const n = (s: string): string => `${prefix}-${s}`
    this.ns = { abr: n('abr'), a1: n('a1'), anat: n('anat'), bbr: n('bbr'), b1: n('b1'), bnat: n('bnat'), hbr: n('hbr'), h1: n('h1'), hnat: n('hnat'),
      wbr: n('wbr'), ra: n('ra'), rb: n('rb'), rc: n('rc') }
  }

  up (): void {
    this.down()
    for (const name of Object.values(this.ns)) { ip('netns', 'add', name); ip('-n', name, 'link', 'set', 'lo', 'up') }
    for (const br of [this.ns.abr, this.ns.bbr, this.ns.hbr, this.ns.wbr]) {
      ip('-n', br, 'link', 'add', 'br0', 'type', 'bridge')
      ip('-n', br, 'link', 'set', 'br0', 'up')
    }
    let port = 0
    const attach = (bridge: string, host: string, ifname: string, cidr: string): void => { attachVeth(bridge, `p${++port}`, host, ifname, cidr) }
    const lans = [[this.ns.abr, this.ns.a1, this.ns.anat, '1'], [this.ns.bbr, this.ns.b1, this.ns.bnat, '2'], [this.ns.hbr, this.ns.h1, this.ns.hnat, '3']] as const
    for (const [br, host, nat, net] of lans) {
      attach(br, host, 'lan0', `10.234.${net}.1/24`)
      attach(br, nat, 'lan0', `10.234.${net}.254/24`)
      attach(this.ns.wbr, nat, 'wan0', `10.234.100.${net}/24`)
      ip('-n', host, 'route', 'add', 'default', 'via', `10.234.${net}.254`)
      inNs(nat, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')
      inNs(nat, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan0', '-j', 'MASQUERADE')
      inNs(nat, 'iptables', '-A', 'FORWARD', '-i', 'wan0', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT')
      inNs(nat, 'iptables', '-A', 'FORWARD', '-i', 'wan0', '-j', 'DROP')
    }
    attach(this.ns.wbr, this.ns.ra, 'wan0', `${this.ip.ra}/24`)
    attach(this.ns.wbr, this.ns.rb, 'wan0', `${this.ip.rb}/24`)
    attach(this.ns.wbr, this.ns.rc, 'wan0', `${this.ip.rc}/24`)
    // each office reaches its own relay only (the remote user of A too): the offices meet through the relays
    for (const nat of [this.ns.anat, this.ns.hnat]) inNs(nat, 'iptables', '-A', 'FORWARD', '-o', 'wan0', '-d', this.ip.rb, '-j', 'DROP')
    inNs(this.ns.bnat, 'iptables', '-A', 'FORWARD', '-o', 'wan0', '-d', this.ip.ra, '-j', 'DROP')
  }

  /** true if `from` can open a TCP connection to ip:port */
  canConnect (from: string, ipAddr: string, port: number): boolean { return tcpReachable(from, ipAddr, port) }

  /**
   * Cuts or restores the link between relay A and relay B (iptables in relay A's namespace, both ways):
   * TCP to and from relay B is answered with a reset, so the relays see the link fail at once.
   */
  relayLink (state: 'up' | 'down'): void {
    const op = state === 'down' ? '-A' : '-D'
    inNs(this.ns.ra, 'iptables', op, 'OUTPUT', '-d', this.ip.rb, '-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset')
    inNs(this.ns.ra, 'iptables', op, 'INPUT', '-s', this.ip.rb, '-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset')
  }

  /** Runs a command inside one of the lab's namespaces. */
  exec (ns: string, ...cmd: string[]): string { return inNs(ns, ...cmd) }

  down (): void {
    removeNamespaces(Object.values(this.ns))
  }
}
