/**
 * The relay: admission, mailbox RPC, circuit relay, stats. Everything it
 * stores is ciphertext sealed by the authors; it checks signatures and
 * addressing, never content.
 */
import { chmod, mkdir, writeFile, rm } from 'node:fs/promises'
import { Level } from 'level'
import { ParleyError, toParleyError } from '../../core/errors.js'
import { createIdentityBytes, loadIdentity, type DeviceIdentity } from '../../core/keys.js'
import { verifyEnvelope } from '../../core/crypto/envelope.js'
import { AckAfterWrite, RpcChannel } from '../../core/rpc/channel.js'
import { RELAY_PROTOCOL, RELAY_RPC_METHODS, parseAckMail, parseDeposit, parseFetch, parseRedeem, type RelayRpcMethod, type RelayStatus } from '../../core/protocol/relay-rpc.js'
import { b64, unb64 } from '../../core/protocol/validate.js'
import type { Logger } from '../../core/util/log.js'
import { MailboxStore } from './mailbox-store.js'
import { RelayHost } from './relay-host.js'
import { relayFiles, resolveRelayConfig, type RelayInit, type ResolvedRelayConfig } from './config.js'
import { AdminServer } from './admin-server.js'

export interface RelayStats {
  peerId: string
  addresses: string[]
  uptimeMs: number
  connections: number
  reservations: number
  users: number
  mailbox: { messages: number, bytes: number, recipients: number }
  counters: Record<'deposited' | 'duplicates' | 'fetched' | 'acked' | 'refused' | 'redeemed' | 'expired', number>
}

export class RelayServer {
  readonly config: ResolvedRelayConfig
  private store?: MailboxStore
  private host?: RelayHost
  private admin?: AdminServer
  private identity?: DeviceIdentity
  private sweeper?: NodeJS.Timeout
  private startedAt = 0
  private readonly counters: RelayStats['counters'] = { deposited: 0, duplicates: 0, fetched: 0, acked: 0, refused: 0, redeemed: 0, expired: 0 }

  constructor (init: RelayInit, private readonly log: Logger) {
    this.config = resolveRelayConfig(init)
  }

  get peerId (): string {
    if (this.identity === undefined) throw new ParleyError('ERR_NOT_STARTED', 'relay not started')
    return this.identity.peerId
  }

  /** Withdraws admission: the user record goes, and so do its reservation and connections. */
  async removeUser (peerId: string): Promise<boolean> {
    const removed = await this.mailbox.removeUser(peerId)
    await this.host?.disconnect(peerId)
    if (removed) this.log.info('user removed', { peerId })
    return removed
  }

  get mailbox (): MailboxStore {
    if (this.store === undefined) throw new ParleyError('ERR_NOT_STARTED', 'relay not started')
    return this.store
  }

  addresses (): string[] { return this.host?.addresses() ?? [] }

  async start (): Promise<void> {
    if (this.host !== undefined) return
    const files = relayFiles(this.config.dataDir)
    await mkdir(this.config.dataDir, { recursive: true, mode: 0o700 })
    // it holds the relay's private key and the invite tokens: only the relay's user may read it,
    // also when the directory existed before (mkdir does not change an existing one's mode)
    await chmod(this.config.dataDir, 0o700)
    const store = new MailboxStore(new Level(files.db), this.config.mailbox)
    await store.start()
    this.store = store
    try {
      let raw = await store.getMeta('identity')
      if (typeof raw !== 'string') { raw = b64(await createIdentityBytes()); await store.putMeta('identity', raw) }
      this.identity = loadIdentity(unb64(raw as string))
      for (const p of this.config.allow) if (!store.isAdmitted(p)) await store.admit(p, 'allow-list')
      const host = new RelayHost(this.identity, {
        listen: this.config.listen,
        announce: this.config.announce,
        limits: this.config.circuit,
        isAdmitted: (p) => store.isAdmitted(p),
        onRefused: (what, peerId) => { this.counters.refused++; this.log.warn('refused unadmitted peer', { what, peerId }) }
      })
      this.host = host
      await host.start({
        [RELAY_PROTOCOL]: (stream, remote) => {
          void new RpcChannel(stream, async (m, body) => await this.onRequest(remote, m, body), this.log, { methods: RELAY_RPC_METHODS })
        }
      })
      this.admin = new AdminServer(this, files.adminSocket)
      await this.admin.start()
      this.startedAt = Date.now()
      this.sweeper = setInterval(() => {
        store.sweep().then((n) => { if (n > 0) { this.counters.expired += n; this.log.info('expired mail deleted', { count: n }) } }, (err) => { this.log.warn('sweep failed', { err: toParleyError(err).message }) })
      }, this.config.sweepIntervalMs)
      this.sweeper.unref()
      await writeFile(files.info, JSON.stringify({ v: 1, pid: process.pid, peerId: this.identity.peerId, addresses: host.addresses() }), { mode: 0o600 })
      this.log.info('relay started', { peerId: this.identity.peerId, addrs: host.addresses() })
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  async stop (): Promise<void> {
    clearInterval(this.sweeper)
    await this.admin?.stop()
    await this.host?.stop()
    await this.store?.stop()
    await rm(relayFiles(this.config.dataDir).info, { force: true })
    this.admin = undefined
    this.host = undefined
    this.store = undefined
  }

  async stats (): Promise<RelayStats> {
    return {
      peerId: this.peerId,
      addresses: this.addresses(),
      uptimeMs: Date.now() - this.startedAt,
      connections: this.host?.connectionCount() ?? 0,
      reservations: this.host?.reservationCount() ?? 0,
      users: (await this.mailbox.listUsers()).length,
      mailbox: await this.mailbox.totals(),
      counters: { ...this.counters }
    }
  }

  private requireAdmitted (peer: string): void {
    if (!this.mailbox.isAdmitted(peer)) {
      this.counters.refused++
      throw new ParleyError('ERR_NOT_ADMITTED', 'this relay serves admitted peers only: redeem an invite from its admin (parley start --relay ADDR --invite TOKEN)')
    }
  }

  private async onRequest (remote: string, method: RelayRpcMethod, body: unknown): Promise<unknown> {
    const store = this.mailbox
    switch (method) {
      case 'redeem': {
        const { token } = parseRedeem(body)
        const user = await store.redeem(token, remote)
        this.counters.redeemed++
        this.log.info('invite redeemed', { peerId: remote })
        return { admitted: true, since: user.admittedAt }
      }
      case 'relayStatus': {
        const status: RelayStatus = { admitted: store.isAdmitted(remote), queued: store.isAdmitted(remote) ? await store.queued(remote) : 0 }
        return status
      }
      case 'deposit': {
        this.requireAdmitted(remote)
        const { to, envelope } = parseDeposit(body)
        if (envelope.author !== remote) throw new ParleyError('ERR_INVALID_ENVELOPE', 'only the author may deposit an envelope')
        for (const t of to) if (!envelope.keys.some(k => k.to === t)) throw new ParleyError('ERR_INVALID_ENVELOPE', 'the envelope is not sealed for every recipient named')
        verifyEnvelope(envelope)
        // fan-out: one copy per admitted recipient; the others are named back to the sender
        const known = to.filter(t => store.isAdmitted(t))
        const unknown = to.filter(t => !store.isAdmitted(t))
        if (known.length === 0) throw new ParleyError('ERR_UNKNOWN_RECIPIENT', 'no recipient has an account on this relay')
        // checked and staged in arrival order now; answered once the write is on disk
        return new AckAfterWrite(store.depositAll(known, remote, envelope, JSON.stringify(envelope).length).then(({ stored, full }) => {
          this.counters.deposited += stored
          this.counters.duplicates += known.length - stored - full.length
          this.counters.refused += full.length
          return { status: stored > 0 ? 'stored' : 'duplicate', stored, unknown, full }
        }))
      }
      case 'fetch': {
        this.requireAdmitted(remote)
        const { after, limit } = parseFetch(body)
        const result = await store.fetch(remote, after, limit)
        this.counters.fetched += result.items.length
        return result
      }
      case 'ackMail': {
        this.requireAdmitted(remote)
        const ack = parseAckMail(body)
        const n = 'upTo' in ack ? await store.ack(remote, ack.upTo) : await store.ackCursors(remote, ack.cursors)
        this.counters.acked += n
        return { deleted: n }
      }
      default:
        throw new ParleyError('ERR_NOT_FOUND', `the relay does not answer ${method}`)
    }
  }
}
