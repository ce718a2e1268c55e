/**
 * In-process Parley nodes on loopback for integration tests: no mDNS (it would
 * multicast on the host's interface), explicit peer addresses instead.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ParleyNode } from '../../node/src/parley-node.js'
import { createLogger } from '../../core/util/log.js'
import type { NodeInit } from '../../node/src/config.js'

export interface TestNodes { nodes: ParleyNode[], dir: string, cleanup: () => Promise<void> }

export async function tmpDir (prefix = 'parley-test-'): Promise<string> {
  return await mkdtemp(join(tmpdir(), prefix))
}

export function loopbackNode (dataDir: string, init: NodeInit = {}): ParleyNode {
  return new ParleyNode({
    dataDir,
    apiPort: 0,
    ...init,
    host: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, announceLoopback: true, redialIntervalMs: 500, ...init.host },
    messenger: { retryIntervalMs: 200, maxRedialBackoffMs: 1000, ...init.messenger }
  }, createLogger('test', (process.env.PARLEY_LOG as 'debug' | undefined) ?? 'error'))
}

/** Polls `fn` until it returns truthy; fails with `what` after `ms`. */
export async function until<T> (fn: () => Promise<T> | T, what: string, ms = 10_000, stepMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== null && v !== false) return v as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, stepMs))
  }
}

export async function connect (a: ParleyNode, b: ParleyNode): Promise<void> {
  const addr = b.host.addresses().find(x => x.includes('/127.0.0.1/'))
  if (addr === undefined) throw new Error('node b has no loopback address')
  await a.host.dial(addr)
  await until(() => a.host.isConnected(b.peerId) && b.host.isConnected(a.peerId), 'connection')
}

export async function removeDir (dir: string | undefined): Promise<void> {
  // undefined when a `before` failed before making it: nothing to remove, and the real error stays visible
  if (dir === undefined) return
  await rm(dir, { recursive: true, force: true })
}

/** Files under `dir` whose bytes contain `needle` (the ciphertext-only checks). */
export async function filesContaining (dir: string, needle: string): Promise<string[]> {
  const hits: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    const path = join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)
    if ((await readFile(path)).includes(needle)) hits.push(path)
  }
  return hits
}

/**
 * Makes `node` answer as Parley 0.1.0 did: its profile without `accounts` (nor status, nor account record).
 * The test stands in for an old binary this way; the profile stays signed and valid.
 */
export function speakV01 (node: ParleyNode): void {
  const peers = (node.messenger as unknown as { peers: { published: (withRecord?: boolean) => Record<string, unknown> | undefined } }).peers
  const published = peers.published.bind(peers)
  peers.published = (withRecord) => {
    const p = published(withRecord)
    if (p === undefined) return p
    const { accounts: _a, acct: _h, account: _r, status: _s, ...v01 } = p
    return v01
  }
}
