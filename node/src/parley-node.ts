/**
 * A whole Parley peer: store + identity + libp2p host + messenger + local API,
 * composed from plain objects; start() and stop() are idempotent.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile, rm } from 'node:fs/promises'
import { ParleyError } from '../../core/errors.js'
import { dataFiles, defaultDataDir, resolveApiPort, type NodeInit } from './config.js'
import type { LevelStore } from './store/level-store.js'
import { markReported, openNodeStore, type StoreOpenReport } from './store/open-node-store.js'
import { recordLogSizes } from './store/health.js'
import { isDiskFull } from '../../core/store/write-latch.js'
import { loadIdentity, peerOfAddr, relayAddrs, type DeviceIdentity } from '../../core/keys.js'
import { readKeyFile, resolveDeviceKey, tightenKeyFileMode } from './host/key-file.js'
import { Libp2pHost } from './host/libp2p-host.js'
import { HybridClock } from './clock/hlc.js'
import { Messenger } from './messaging/messenger.js'
import { RelayClient } from './messaging/relay-client.js'
import { signReceipt } from '../../core/crypto/envelope.js'
import { ApiServer } from './api/server.js'
import { uiHandler } from '../../core/http/static.js'
import { createLogger, type Logger } from '../../core/util/log.js'
import type { MessageStore } from './store/types.js'
import type { StoreHealthView } from './api/contract.js'
import { FileService } from './files/service.js'
import { FileSettingsStore } from './files/settings.js'
import { DEFAULT_CHANGE_WINDOWS, type ChangeWindows } from './api/changes.js'

export interface NodeSettings { relay: string | null, invite: string | null }

export interface ApiInfo { v: 1, pid: number, port: number | null, socket: string, peerId: string }

export class ParleyNode {
  readonly dataDir: string
  private readonly log: Logger
  private store?: LevelStore
  private host_?: Libp2pHost
  private messenger_?: Messenger
  private api?: ApiServer
  private identity_?: DeviceIdentity
  private relay_?: RelayClient
  private files_?: FileService
  private running = false
  private token?: string
  private storeReport_?: StoreOpenReport

  constructor (private readonly init: NodeInit = {}, log?: Logger) {
    this.dataDir = init.dataDir ?? defaultDataDir()
    resolveApiPort(init.apiPort)
    this.log = log ?? createLogger('parley')
  }

  get messenger (): Messenger { return this.need(this.messenger_) }
  get host (): Libp2pHost { return this.need(this.host_) }
  get messageStore (): MessageStore { return this.need(this.store) }
  get peerId (): string { return this.need(this.identity_).peerId }
  get apiPort (): number | undefined { return this.api?.port }
  /** the UI address with the API token in the fragment (never sent to the server in a request line) */
  get uiUrl (): string | undefined { return this.api?.port === undefined || this.token === undefined ? undefined : `http://127.0.0.1:${this.api.port}/#token=${this.token}` }
  get relay (): RelayClient { return this.need(this.relay_) }
  /** file transfers (node/src/files/) */
  get files (): FileService { return this.need(this.files_) }
  /** what opening the store found (damage, and the index check it caused) */
  get storeReport (): StoreOpenReport { return this.need(this.storeReport_) }

  /** What opening the store found, and whether our numbers are still being checked with colleagues (GET /status). */
  storeHealth (): StoreHealthView {
    const r = this.storeReport
    const checking = this.messenger_?.reconciling ?? false
    return { damaged: r.damaged, reasons: r.reasons, lost: r.lost, uncounted: r.uncounted, kept: r.check?.messages ?? null, checking }
  }

  /** Settings given at start override the stored ones and are stored. */
  private async loadSettings (store: LevelStore): Promise<NodeSettings> {
    const stored = (await store.getMeta('settings') ?? {}) as Partial<NodeSettings>
    const settings: NodeSettings = { relay: this.init.relay ?? stored.relay ?? null, invite: this.init.invite ?? stored.invite ?? null }
    if (settings.relay === '') settings.relay = null
    // validate before storing: a bad address given once must not break every later start
    if (settings.relay !== null) relayAddrs(settings.relay)
    if (settings.relay !== stored.relay || settings.invite !== stored.invite) await store.putMeta('settings', settings)
    return settings
  }

  /** The edit/recall windows: given at start (each one alone too) override the stored ones and are stored, like the name. */
  private async loadChangeWindows (store: LevelStore): Promise<ChangeWindows> {
    const stored = (await store.getMeta('change-windows') ?? {}) as Partial<ChangeWindows>
    const given = this.init.changeWindows ?? {}
    const windows: ChangeWindows = {
      editMs: given.editMs ?? stored.editMs ?? DEFAULT_CHANGE_WINDOWS.editMs,
      recallMs: given.recallMs ?? stored.recallMs ?? DEFAULT_CHANGE_WINDOWS.recallMs
    }
    if (given.editMs !== undefined || given.recallMs !== undefined) await store.putMeta('change-windows', windows)
    return windows
  }

  /** Changes the relay (null: none) and optionally an invite to redeem; stored for later starts. */
  async setRelay (relay: string | null, invite: string | null): Promise<NodeSettings> {
    const store = this.need(this.store)
    if (relay !== null) relayAddrs(relay)
    const settings: NodeSettings = { relay, invite }
    this.relay.configure(relay, invite)
    await store.putMeta('settings', settings)
    return settings
  }

  private need<T> (v: T | undefined): T {
    if (v === undefined) throw new ParleyError('ERR_NOT_STARTED', 'the node is not started')
    return v
  }

  async start (): Promise<void> {
    if (this.running) return
    try {
      await this.open()
    } catch (err) {
      // the first writes of a start (key file, API token, api.json, the store's own) on a full disk: said in words
      if (isDiskFull(err)) {
        throw new ParleyError('ERR_DISK_FULL', `the disk holding Parley's data (${this.dataDir}) is full, so Parley cannot start. ` +
          'Free some space on it, then start Parley again; nothing was lost', { cause: err })
      }
      throw err
    }
  }

  private async open (): Promise<void> {
    const files = dataFiles(this.dataDir)
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 })
    const keyBytes = await readKeyFile(files.keyFile)
    if (keyBytes !== undefined && await tightenKeyFileMode(files.keyFile)) {
      this.log.warn('the device key file could be read by other users; it is 0600 again', { path: files.keyFile })
    }
    const { store, report } = await openNodeStore(this.dataDir, files.db, keyBytes !== undefined)
    this.store = store
    this.storeReport_ = report
    try {
      // we hold the store's lock from here: `parley doctor` (another process) refuses to touch it meanwhile
      await writeFile(files.pid, `${process.pid}\n`, { mode: 0o600 })
      if (report.damaged) {
        this.log.warn('the message store was damaged; lost messages are fetched back from peers', {
          reasons: report.reasons, lost: report.lost, uncounted: report.uncounted, ...report.check
        })
      }
      const identity = loadIdentity(await resolveDeviceKey(store, files.keyFile, keyBytes, this.log))
      this.identity_ = identity
      const host = new Libp2pHost({ identity, log: this.log }, this.init.host)
      const settings = await this.loadSettings(store)
      const changeWindows = await this.loadChangeWindows(store)
      let messenger: Messenger | undefined
      const relay = new RelayClient({
        host,
        log: this.log,
        accept: async (env, from, office) => await this.need(messenger).acceptMail(env, from, office),
        signReceipt: (r) => signReceipt(identity, r),
        notices: async (items) => { await this.need(messenger).applyNotices(items) },
        slotTaken: async (refused) => await this.need(messenger).slotTaken(refused),
        slotNotGiven: async (envs) => { await this.need(messenger).slotNotGiven(envs) },
        saveInvite: async (invite) => { await store.putMeta('settings', { ...(await store.getMeta('settings') as NodeSettings), invite }) },
        homeOf: (device) => {
          const accounts = messenger?.accounts
          const account = accounts?.accountOf(device)
          return account === undefined || account === null ? undefined : accounts?.state(account).home[0]?.relay
        },
        routes: { load: async () => await store.getMeta('officeRoutes'), save: async (v) => { await store.putMeta('officeRoutes', v) } }
      }, this.init.relayClient)
      messenger = new Messenger({ store, host, identity, clock: new HybridClock(), log: this.log, relay }, { ...this.init.messenger, name: this.init.name })
      this.host_ = host
      this.messenger_ = messenger
      this.relay_ = relay
      relay.configure(settings.relay, settings.invite)
      const fileSettings = new FileSettingsStore(files.files)
      const stored = await fileSettings.load()
      const fileService = new FileService({ host, messenger, relay, log: this.log, dir: files.files }, {
        ...this.init.files, downloads: this.init.files?.downloads ?? stored.downloads
      })
      this.files_ = fileService
      await relay.restore()
      // the messenger first: its protocol handler is registered before the host listens, so a peer
      // that connects at once can open /parley/msg (the host keeps handlers given before its start)
      await messenger.start()
      await fileService.start()
      await host.start()
      relay.start()
      if (this.init.api !== false) {
        const token = await loadOrCreateToken(files.token)
        this.api = new ApiServer(
          {
            messenger, store, host, log: this.log, relay, setRelay: async (r, i) => await this.setRelay(r, i), storeHealth: () => this.storeHealth(),
            files: { service: fileService, settings: fileSettings }
          },
          { token, port: resolveApiPort(this.init.apiPort), socketPath: files.socket, staticHandler: uiHandler, changeWindows }
        )
        this.token = token
        await this.api.start()
        const info: ApiInfo = { v: 1, pid: process.pid, port: this.api.port ?? null, socket: files.socket, peerId: identity.peerId }
        await writeFile(files.apiInfo, JSON.stringify(info), { mode: 0o600 })
      }
      this.running = true
      // shown (the caller prints storeReport): the next start does not report it again
      if (report.damaged) await markReported(store)
    } catch (err) {
      await this.teardown()
      throw err
    }
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    await this.teardown()
  }

  private async teardown (): Promise<void> {
    await this.api?.stop()
    await rm(dataFiles(this.dataDir).apiInfo, { force: true })
    await rm(dataFiles(this.dataDir).pid, { force: true })
    // what was sent just before the stop and waits for someone away goes to the relay first
    await this.messenger_?.flushDeposits()
    await this.relay_?.stop()
    await this.files_?.stop()
    await this.messenger_?.stop()
    await this.host_?.stop()
    if (this.store !== undefined) {
      const counts = await this.store.seqCounts().catch(() => undefined)
      await this.store.stop()
      // a log cut short before the next open is then noticed (LevelDB takes it for a crash), and the
      // counts say how many messages went with their indexes if the store is damaged before that open
      await recordLogSizes(dataFiles(this.dataDir).db, counts).catch((err) => { this.log.warn('could not record the log sizes', { err: String(err) }) })
    }
    this.api = undefined
  }
}

async function loadOrCreateToken (path: string): Promise<string> {
  try {
    const t = (await readFile(path, 'utf8')).trim()
    if (t.length >= 32) return t
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const token = randomBytes(32).toString('hex')
  await writeFile(path, token + '\n', { mode: 0o600 })
  return token
}
