/**
 * The admin side of a relay, put together: its store, audit log, login,
 * policy, the action service and its route table, the traffic ring, and the
 * admin HTTP listener. The relay gives it a narrow `RelayAdmin` and its
 * metrics; everything else lives in relay/src/admin/.
 */
import { join } from 'node:path'
import { Level } from 'level'
import type { Logger } from '../../../core/util/log.js'
import { AdminService } from './admin-service.js'
import { AdminStore, SharedAdminState, type AdminState } from './admin-store.js'
import type { SharedAdminStore } from '../store/types.js'
import { AuditLog } from './audit-log.js'
import { AdminAuth, loadOrCreateToken } from './auth.js'
import { ConsoleServer, type Readiness } from './console-server.js'
import type { RelayMetrics } from './metrics.js'
import { PolicyLayers, type Policy } from './policy.js'
import { AdminRoutes } from './routes.js'
import { TrafficRing } from './traffic.js'
import type { RelayAdmin } from '../types.js'

export interface AdminInit {
  /** @default '127.0.0.1' */
  host: string
  /** null: no admin listener (the CLI's socket still works). 0 picks a free port. */
  port: number | null
  allowedHosts: string[]
  sampleIntervalMs: number
}

export interface AdminRoomComponents {
  relay: RelayAdmin
  metrics: RelayMetrics
  log: Logger
  /** applies a new effective policy to the running relay */
  applyPolicy: (p: Policy) => void
  /** the relay's own readiness checks (listening, store) */
  readiness: () => Promise<Readiness>
  /** several instances on one database: the directory, last-seen times and policy live there (else DATA/admin-db) */
  shared?: SharedAdminStore
}

export const adminFiles = (dataDir: string): { db: string, token: string, password: string, audit: string } => ({
  db: join(dataDir, 'admin-db'),
  token: join(dataDir, 'admin-token'),
  password: join(dataDir, 'admin-password'),
  audit: join(dataDir, 'audit.log')
})

/** how often last-seen times are written. @default 60 s */
const SEEN_FLUSH_MS = 60_000

export class AdminRoom {
  readonly store: AdminState
  readonly audit: AuditLog
  private auth?: AdminAuth
  private policyLayers?: PolicyLayers
  private svc?: AdminService
  private table?: AdminRoutes
  private traffic?: TrafficRing
  private listener?: ConsoleServer
  private flusher?: NodeJS.Timeout
  private unwatchPolicy?: () => void

  constructor (private readonly c: AdminRoomComponents, private readonly dataDir: string, private readonly init: AdminInit) {
    const files = adminFiles(dataDir)
    this.store = c.shared !== undefined ? new SharedAdminState(c.shared) : new AdminStore(new Level(files.db))
    this.audit = new AuditLog(files.audit)
  }

  get routes (): AdminRoutes { return this.started().table }
  get service (): AdminService { return this.started().svc }
  get policy (): PolicyLayers { return this.started().policyLayers }
  get consoleUrl (): string | undefined { return this.listener?.url }

  private started (): { table: AdminRoutes, svc: AdminService, policyLayers: PolicyLayers } {
    if (this.table === undefined || this.svc === undefined || this.policyLayers === undefined) throw new Error('relay admin not started')
    return { table: this.table, svc: this.svc, policyLayers: this.policyLayers }
  }

  async start (policyBase: Policy): Promise<void> {
    if (this.table !== undefined) return
    const files = adminFiles(this.dataDir)
    await this.store.start()
    await this.audit.start()
    const auth = new AdminAuth(await loadOrCreateToken(files.token), files.password)
    this.auth = auth
    const layers = new PolicyLayers(policyBase, await this.store.getPolicy(), this.c.applyPolicy)
    this.policyLayers = layers
    // a change made on another instance (or missed while the database was away) is applied here at once
    // (one re-read at a time: an older answer is never applied after a newer one)
    let reread = Promise.resolve()
    this.unwatchPolicy = this.store.onPolicyChanged?.(() => {
      reread = reread.then(async () => { layers.replace(await this.store.getPolicy()) })
        .catch((err: Error) => { this.c.log.warn('cannot re-read the policy', { err: err.message }) })
    })
    this.svc = new AdminService({ relay: this.c.relay, store: this.store, audit: this.audit, policy: this.policyLayers })
    const metrics = this.c.metrics
    const relay = this.c.relay
    this.traffic = new TrafficRing(async () => {
      const s = await relay.stats()
      return { ...metrics.snapshot(), connections: s.connections, reservations: s.reservations }
    }, this.init.sampleIntervalMs)
    this.table = new AdminRoutes({ service: this.svc, relay, auth, traffic: this.traffic })
    if (this.init.port !== null) {
      this.listener = new ConsoleServer({ routes: this.table, auth, service: this.svc, metrics, readiness: this.c.readiness, log: this.c.log },
        { host: this.init.host, port: this.init.port, allowedHosts: this.init.allowedHosts })
      await this.listener.start()
    }
    this.traffic.start()
    this.flusher = setInterval(() => { this.store.flushSeen().catch(() => {}) }, SEEN_FLUSH_MS)
    this.flusher.unref()
  }

  async stop (): Promise<void> {
    this.unwatchPolicy?.()
    clearInterval(this.flusher)
    this.traffic?.stop()
    await this.listener?.stop()
    await this.audit.stop()
    await this.store.stop()
    this.listener = undefined
    this.table = undefined
    this.svc = undefined
  }

  /** A peer spoke to the relay: its last-seen time moves. */
  seen (peerId: string): void { this.store.markSeen(peerId) }
}
