/**
 * Peer channels: one RPC channel per peer on MSG_PROTOCOL, opened lazily on
 * first use and shared while open (`ChannelOpener`, which the relay client
 * uses for its channel too). Streams the peers open to us get a channel of
 * their own; both kinds answer through the same handler table.
 */
import { ParleyError } from '../../../core/errors.js'
import { PEER_RPC_METHODS, MSG_PROTOCOL, type PeerRpcMethod } from '../../../core/protocol/peer-rpc.js'
import { RpcChannel, type RpcChannelInit } from '../../../core/rpc/channel.js'
import { InboundBudget } from '../../../core/rpc/budget.js'
import type { RawStream } from '../../../core/rpc/stream.js'
import { withTimeout, type AbortOptions } from '../../../core/util/abort.js'
import type { Logger } from '../../../core/util/log.js'
import type { PeerHost } from '../host/types.js'

/**
 * Opening a channel's stream gives up after this long; it includes waiting for
 * a dial slot (the host bounds dials, so a group message to hundreds waits its turn).
 * @default 30000
 */
export const DEFAULT_OPEN_TIMEOUT_MS = 30_000

/**
 * One lazily opened channel: opened on first use, shared while it is open,
 * opened again once it closed; callers that ask while it opens share that one opening.
 * A reset() or close() while it opens wins: that opening's channel is closed, never kept,
 * and its callers get ERR_STREAM_CLOSED (it may lead to a connection or relay now gone).
 */
export class ChannelOpener<M extends string> {
  private channel?: RpcChannel<M>
  private opening?: Promise<RpcChannel<M>>
  /** bumped by every reset(): an opening started before it does not count */
  private generation = 0

  constructor (private readonly open: (options: AbortOptions) => Promise<RpcChannel<M>>) {}

  get isOpening (): boolean { return this.opening !== undefined }

  async get (options: AbortOptions = {}): Promise<RpcChannel<M>> {
    if (this.channel?.isOpen === true) return this.channel
    if (this.opening !== undefined) return await this.opening
    const generation = this.generation
    const opening = (async () => {
      const ch = await this.open(options)
      if (generation !== this.generation) {
        await ch.close().catch(() => {})
        throw new ParleyError('ERR_STREAM_CLOSED', 'the channel was reset while it opened')
      }
      this.channel = ch
      return ch
    })()
    this.opening = opening
    try {
      return await opening
    } finally {
      if (this.opening === opening) this.opening = undefined
    }
  }

  /** Forgets the channel (its connection went away): the next get() opens a new one. */
  reset (): void {
    this.generation++
    this.channel = undefined
    this.opening = undefined
  }

  async close (): Promise<void> {
    const ch = this.channel
    this.reset()
    await ch?.close().catch(() => {})
  }
}

export type PeerChannel = RpcChannel<PeerRpcMethod>

export interface PeerChannelsComponents {
  host: PeerHost
  log: Logger
}

export interface PeerChannelsInit extends RpcChannelInit {
  /** answers a request `remote` made on any peer channel */
  serve: (remote: string, method: PeerRpcMethod, body: unknown) => Promise<unknown>
}

export class PeerChannels {
  private readonly openers = new Map<string, ChannelOpener<PeerRpcMethod>>()
  /** what each peer's channels may hold of unprocessed input (core/rpc/budget.ts) */
  private readonly inputBudget = new InboundBudget()

  constructor (private readonly c: PeerChannelsComponents, private readonly init: PeerChannelsInit) {}

  /** Answers the streams peers open to us. */
  async start (): Promise<void> {
    await this.c.host.handle(MSG_PROTOCOL, (stream, remote) => { this.channel(stream, remote) })
  }

  /** Closes every channel we opened. */
  async stop (): Promise<void> {
    for (const o of this.openers.values()) await o.close()
    this.openers.clear()
  }

  /** The channel to `peer`, opened if need be. */
  async get (peer: string, options: AbortOptions = {}): Promise<PeerChannel> {
    let o = this.openers.get(peer)
    if (o === undefined) {
      o = new ChannelOpener(async (opts) => {
        const stream = await this.c.host.openStream(peer, MSG_PROTOCOL, { signal: withTimeout(opts.signal, DEFAULT_OPEN_TIMEOUT_MS) })
        return this.channel(stream, peer)
      })
      this.openers.set(peer, o)
    }
    return await o.get(options)
  }

  isOpening (peer: string): boolean { return this.openers.get(peer)?.isOpening === true }

  /** The peer's connection went away: its next call opens a new channel. */
  reset (peer: string): void { this.openers.get(peer)?.reset() }

  /** Forgets the peer (gone and owed nothing). */
  forget (peer: string): void { this.openers.delete(peer) }

  private channel (stream: RawStream, remote: string): PeerChannel {
    const serve = async (m: PeerRpcMethod, body: unknown): Promise<unknown> => await this.init.serve(remote, m, body)
    const { maxFrameBytes, callTimeoutMs, frameTimeoutMs } = this.init
    const budget = this.inputBudget.for(remote)
    return new RpcChannel(stream, serve, this.c.log, { maxFrameBytes, callTimeoutMs, frameTimeoutMs, methods: PEER_RPC_METHODS, budget })
  }
}
