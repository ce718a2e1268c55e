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
    const existing = new Set(namespaces())
    for (const h of this.hosts) if (existing.has(h.name)) ip('netns', 'del', h.name)
    if (existing.has(this.bridgeNs)) ip('netns', 'del', this.bridgeNs)
  }
}
