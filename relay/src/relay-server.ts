/**
 * The relay's composition root: opens the store, loads (or makes) the relay's
 * identity, builds the metrics, the mailbox service, the libp2p host, the admin
 * side (relay/src/admin/: console listener, audit, policy, directory) and the
 * admin socket from plain objects, and starts and stops them in order. The work is theirs:
 * the mailbox service answers the RPCs and counts, the host relays circuits.
 * Everything it stores is ciphertext sealed by the authors.
 */
import { chmod, mkdir, readFile, writeFile, rm } from 'node:fs/promises'
import { ParleyError, toParleyError } from '../../core/errors.js'
import { createIdentityBytes, loadIdentity, type DeviceIdentity } from '../../core/keys.js'
import { RELAY_PROTOCOL, RELAY_RPC_METHODS, type RelayRpcMethod } from '../../core/protocol/relay-rpc.js'
import { b64, unb64 } from '../../core/protocol/validate.js'
import { RpcChannel } from '../../core/rpc/channel.js'
import type { Logger } from '../../core/util/log.js'
import { InboundBudget } from '../../core/rpc/budget.js'
import { AdminServer } from './admin-server.js'
import { isPostgresStore, relayFiles, resolveRelayConfig, type RelayInit, type ResolvedRelayConfig } from './config.js'
import { MailboxService } from './mailbox/service.js'
import { RelayHost } from './relay-host.js'
import { openRelayLevelStore } from './store/open-level-store.js'
import { PgMailboxStore } from './store/pg-mailbox-store.js'
import type { InviteOptions, Invite, MailboxStore, RelayUser } from './store/types.js'
import type { RelayAdmin, RelayStats } from './types.js'
import { AdminRoom } from './admin/admin-room.js'
import type { Readiness } from './admin/console-server.js'
import { RelayMetrics } from './admin/metrics.js'
import type { Policy } from './admin/policy.js'
import { Federation } from './federation/federation.js'
import { FED_PROTOCOL } from './federation/protocol.js'
import type { FederationStore } from './federation/types.js'
import { RelayFileStore } from './files/file-store.js'
import { fileStreamHandler } from './files/service.js'
import { FILE_PROTOCOL } from '../../core/protocol/file-wire.js'

/** how long the readiness probe waits for the store. @default 2000 */
const READY_PROBE_TIMEOUT_MS = 2000

export type { RelayStats } from './types.js'

export class RelayServer implements RelayAdmin {
  readonly config: ResolvedRelayConfig
  private store?: MailboxStore
  private service?: MailboxService
  private host?: RelayHost
  private adminSocket?: AdminServer
  private adminRoom?: AdminRoom
  private identity?: DeviceIdentity
  private fed?: Federation
  private fileStore_?: RelayFileStore
  private startedAt = 0
  /** what each peer's streams may hold of unprocessed input */
  private readonly inputBudget = new InboundBudget()
  readonly metrics = new RelayMetrics({
    connections: () => this.host?.connectionCount() ?? 0,
    reservations: () => this.host?.reservationCount() ?? 0,
    circuits: () => this.host?.relayedCount() ?? 0,
    users: () => this.store?.admittedCount() ?? 0,
    mailbox: async () => {
      const usage = await this.mailbox.usageByRecipient()
      let messages = 0; let bytes = 0; let deepest = 0
      for (const u of usage.values()) { messages += u.count; bytes += u.bytes; deepest = Math.max(deepest, u.count) }
      return { messages, bytes, recipients: usage.size, deepest }
    },
    federation: async () => await this.fed?.list() ?? []
  })

  constructor (init: RelayInit, private readonly log: Logger) {
    this.config = resolveRelayConfig(init)
  }

  get peerId (): string {
    if (this.identity === undefined) throw new ParleyError('ERR_NOT_STARTED', 'relay not started')
    return this.identity.peerId
  }

  get mailbox (): MailboxStore {
    if (this.store === undefined) throw new ParleyError('ERR_NOT_STARTED', 'relay not started')
    return this.store
  }

  addresses (): string[] { return this.host?.addresses() ?? [] }
  /** files kept for offline recipients */
  get fileStore (): RelayFileStore {
    if (this.fileStore_ === undefined) throw new ParleyError('ERR_NOT_STARTED', 'relay not started')
    return this.fileStore_
  }

  async instanceAddresses (): Promise<string[]> {
    const own = publicFirst(this.addresses())
    const others = (await (this.mailbox as MailboxStore & FederationStore).listInstances())
      .filter(i => this.identity === undefined || i.peerId !== this.identity.peerId).map(i => publicFirst(i.addrs))
    return [own, ...others].filter((a): a is string => a !== undefined)
  }
  isOnline (peerId: string): boolean { return this.host?.isConnected(peerId) ?? false }

  /** Pairing with other offices' relays, their queues and directories; throws before start. */
  get federation (): Federation {
    if (this.fed === undefined) throw new ParleyError('ERR_NOT_STARTED', 'relay not started')
    return this.fed
  }

  /** The admin side (console, audit, policy, directory); throws before start. */
  get admin (): AdminRoom {
    if (this.adminRoom === undefined) throw new ParleyError('ERR_NOT_STARTED', 'relay not started')
    return this.adminRoom
  }

  /** Ready: listening, and the store answers a read within READY_PROBE_TIMEOUT_MS. */
  async readiness (): Promise<Readiness> {
    const listening = this.addresses().length > 0
    let store: Readiness['checks'][string]
    try {
      const s = this.store
      if (s === undefined) throw new Error('not open')
      await this.metrics.timeStore('probe', async () => await withDeadline(s.getMeta('identity'), READY_PROBE_TIMEOUT_MS))
      store = { ok: true }
    } catch (err) {
      store = { ok: false, detail: `the store does not answer: ${toParleyError(err).message}` }
    }
    const checks = { listening: listening ? { ok: true } : { ok: false, detail: 'no listening address' }, store }
    return { ready: listening && store.ok, checks }
  }

  /** A re-read config file (SIGHUP): its policy becomes the base under the console's changes. */
  reloadPolicy (init: RelayInit): void {
    this.admin.policy.setBase(resolveRelayConfig(init).policy)
  }

  private applyPolicy (p: Policy): void {
    this.store?.setLimits({ ttlMs: p.mailboxTtlMs, quotaMessages: p.quotaMessages, quotaBytes: p.quotaBytes })
    // new offers follow it at once; files already kept keep the expiry they were given
    if (this.fileStore_ !== undefined) this.fileStore_.limits = { ttlMs: p.fileTtlMs, quotaBytes: p.fileQuotaBytes, maxFileBytes: p.maxFileBytes }
  }

  async start (): Promise<void> {
    if (this.host !== undefined) return
    const files = relayFiles(this.config.dataDir)
    await mkdir(this.config.dataDir, { recursive: true, mode: 0o700 })
    // it holds the relay's private key and the invite tokens: only the relay's user may read it,
    // also when the directory existed before (mkdir does not change an existing one's mode)
    await chmod(this.config.dataDir, 0o700)
    // a LevelDB store is opened (and started) without ever being replaced silently (open-level-store.ts)
    let store: MailboxStore
    if (isPostgresStore(this.config.store)) {
      store = new PgMailboxStore({ url: this.config.store, log: this.log }, this.config.mailbox)
      await store.start()
    } else {
      store = await openRelayLevelStore(files.db, this.config.mailbox)
    }
    this.store = store
    try {
      this.identity = await this.loadIdentity(store)
      for (const p of this.config.allow) if (!store.isAdmitted(p)) await store.admit(p, 'allow-list')
      const identity = this.identity
      const federation = new Federation({
        store: store as MailboxStore & FederationStore,
        host: {
          openStream: async (peer, addrs, protocol, signal) => await this.runningHost().openStream(peer, addrs, protocol, signal),
          addresses: () => this.addresses(),
          disconnect: async (peer) => { await this.host?.disconnect(peer) }
        },
        log: this.log,
        self: () => identity.peerId,
        // never throws: until the admin room has started (its policy getter throws), the configured policy holds; a throw here
        // failed a deposit in the middle of a window while the later ones were queued (they overtook it)
        allowed: () => {
          try { return this.adminRoom?.policy.effective().federationAllowed ?? this.config.policy.federationAllowed } catch {
            return this.config.policy.federationAllowed
          }
        },
        notify: (device) => { this.service?.notify(device) }
      }, this.config.federation)
      this.fed = federation
      await federation.load()
      const service = new MailboxService({
        store,
        log: this.log,
        disconnect: async (peerId) => { await this.host?.disconnect(peerId) },
        metrics: this.metrics,
        directory: async () => await this.admin.service.directoryTree(),
        seen: (peerId) => { this.adminRoom?.seen(peerId) },
        federation
      }, { sweepIntervalMs: this.config.sweepIntervalMs })
      this.service = service
      const host = new RelayHost(this.identity, {
        listen: this.config.listen,
        announce: this.config.announce,
        limits: this.config.circuit,
        isAdmitted: (p) => store.isAdmitted(p),
        onRefused: (what, peerId) => { service.refused(what, peerId) }
      })
      this.host = host
      const fileStore = new RelayFileStore(files.files, this.config.files, this.log)
      await fileStore.start(this.config.sweepIntervalMs)
      this.fileStore_ = fileStore
      await host.start({
        [FILE_PROTOCOL]: fileStreamHandler(fileStore, (p) => store.isAdmitted(p), this.log),
        [RELAY_PROTOCOL]: (stream, remote) => {
          const budget = this.inputBudget.for(remote)
          const answer = async (m: RelayRpcMethod, body: unknown): Promise<unknown> => await service.answer(remote, m, body)
          service.attach(remote, new RpcChannel(stream, answer, this.log, { methods: RELAY_RPC_METHODS, budget }))
        },
        // relay to relay: refused unless paired (federation.ts)
        [FED_PROTOCOL]: (stream, remote) => { federation.attach(stream, remote) }
      })
      // registered in the store: with several instances on one database, paired relays are told every one
      await (store as MailboxStore & FederationStore).putInstance({ peerId: identity.peerId, addrs: host.addresses(), seenAt: Date.now() })
      const adminRoom = new AdminRoom({
        relay: this,
        metrics: this.metrics,
        log: this.log,
        applyPolicy: (p) => { this.applyPolicy(p) },
        readiness: async () => await this.readiness(),
        ...(store instanceof PgMailboxStore ? { shared: store } : {})
      }, this.config.dataDir, this.config.admin)
      this.adminRoom = adminRoom
      await adminRoom.start(this.config.policy)
      this.adminSocket = new AdminServer(adminRoom.routes, files.adminSocket)
      await this.adminSocket.start()
      this.startedAt = Date.now()
      service.start()
      await federation.start()
      const info = { v: 1, pid: process.pid, peerId: this.identity.peerId, addresses: host.addresses(), console: adminRoom.consoleUrl ?? null }
      await writeFile(files.info, JSON.stringify(info), { mode: 0o600 })
      this.log.info('relay started', { peerId: this.identity.peerId, addrs: host.addresses() })
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  async stop (): Promise<void> {
    await this.fed?.stop().catch(() => {})
    this.fed = undefined
    this.service?.stop()
    this.fileStore_?.stop()
    await this.adminSocket?.stop()
    await this.adminRoom?.stop()
    await this.host?.stop()
    await this.store?.stop()
    await rm(relayFiles(this.config.dataDir).info, { force: true })
    this.adminSocket = undefined
    this.adminRoom = undefined
    this.host = undefined
    this.service = undefined
    this.store = undefined
  }

  // ---- RelayAdmin: what the admin socket may do ---------------------------

  async createInvite (opts: InviteOptions): Promise<Invite> { return await this.mailbox.createInvite(opts) }
  async listUsers (): Promise<RelayUser[]> { return await this.mailbox.listUsers() }
  async admit (peerId: string): Promise<RelayUser> { return await this.mailbox.admit(peerId, 'allow-list') }

  /** Withdraws admission: the user record goes, and so do its reservation and connections. */
  async removeUser (peerId: string): Promise<boolean> { return await this.running().removeUser(peerId) }

  async stats (): Promise<RelayStats> {
    return {
      peerId: this.peerId,
      addresses: this.addresses(),
      uptimeMs: Date.now() - this.startedAt,
      connections: this.host?.connectionCount() ?? 0,
      reservations: this.host?.reservationCount() ?? 0,
      users: this.mailbox.admittedCount(),
      mailbox: await this.mailbox.totals(),
      files: this.fileStore_?.totals() ?? { files: 0, bytes: 0 },
      senders: await this.mailbox.topSenders(),
      counters: this.running().snapshot()
    }
  }

  fileUsage (): Map<string, { files: number, bytes: number }> { return this.fileStore_?.usageByUploader() ?? new Map() }

  private running (): MailboxService {
    if (this.service === undefined) throw new ParleyError('ERR_NOT_STARTED', 'relay not started')
    return this.service
  }

  private runningHost (): RelayHost {
    if (this.host === undefined) throw new ParleyError('ERR_NOT_STARTED', 'relay not started')
    return this.host
  }

  private async loadIdentity (store: MailboxStore): Promise<DeviceIdentity> {
    // a shared store serves several instances, each with its own peer ID: the key stays in the instance's data dir
    if (isPostgresStore(this.config.store)) return await keyFileIdentity(relayFiles(this.config.dataDir).key)
    let raw = await store.getMeta('identity')
    if (typeof raw !== 'string') { raw = b64(await createIdentityBytes()); await store.putMeta('identity', raw) }
    return loadIdentity(unb64(raw as string))
  }
}

/** The first address not on loopback (what a colleague's machine can dial), else the first. */
function publicFirst (addrs: string[]): string | undefined {
  return addrs.find(a => !a.includes('/127.0.0.1/') && !a.includes('/::1/')) ?? addrs[0]
}

async function withDeadline<T> (p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`no answer in ${ms} ms`)) }, ms) })
  try { return await Promise.race([p, late]) } finally { clearTimeout(timer) }
}

/** The identity in `path` (base64, mode 0600), made on first use. */
async function keyFileIdentity (path: string): Promise<DeviceIdentity> {
  let raw: string
  try {
    raw = (await readFile(path, 'utf8')).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ParleyError('ERR_STORE', `cannot read the relay key ${path}: ${(err as Error).message}`)
    raw = b64(await createIdentityBytes())
    await writeFile(path, raw + '\n', { mode: 0o600, flag: 'wx', flush: true })
  }
  return loadIdentity(unb64(raw))
}
