/**
 * A peer on a FakeNetwork whose peer-protocol answers the test scripts, and
 * our channel to it: for the messaging parts that call a peer (delivery,
 * sync, receipts). A handler that throws a ParleyError reaches the caller as
 * a RemoteError with that code, as over a real stream.
 */
import { ParleyError, type ErrorCode } from '../../../core/errors.js'
import type { Envelope } from '../../../core/protocol/envelope.js'
import { MSG_PROTOCOL, PEER_RPC_METHODS, type PeerRpcMethod } from '../../../core/protocol/peer-rpc.js'
import { RpcChannel } from '../../../core/rpc/channel.js'
import { silentLogger } from '../../../core/util/log.js'
import { PeerChannels } from '../../../node/src/messaging/peer-channels.js'
import type { FakeHost, FakeNetwork } from './fake-host.js'

export type PeerScript = (method: PeerRpcMethod, body: unknown) => Promise<unknown>

export interface ScriptedPeer {
  /** every request the peer got, in order */
  readonly calls: Array<{ method: PeerRpcMethod, body: unknown }>
  /** what answers the next requests; replace it at will */
  script: PeerScript
}

/** Makes `peerId` on `net` answer the peer protocol by `script`, recording every request. */
export function scriptedPeer (net: FakeNetwork, peerId: string, script: PeerScript): ScriptedPeer {
  const peer: ScriptedPeer = { calls: [], script }
  void net.host(peerId).handle(MSG_PROTOCOL, (stream) => {
    void new RpcChannel(stream, async (method, body) => {
      peer.calls.push({ method, body })
      return await peer.script(method, body)
    }, silentLogger, { methods: PEER_RPC_METHODS })
  })
  return peer
}

/** Peer channels of `host` that take no requests of their own. */
export const callingChannels = (host: FakeHost): PeerChannels =>
  new PeerChannels({ host, log: silentLogger }, { serve: async () => { throw new Error('not used') } })

/**
 * A `deliver` answer: stored, unless `refuse` names the envelope's seq; then
 * refused with that code (a ParleyError code, as the peer's handler throws it).
 */
export function deliverUnless (refuse: () => Record<number, string>): (body: unknown) => Promise<{ status: 'stored' }> {
  return async (body) => {
    const code = refuse()[(body as Envelope).seq]
    if (code !== undefined) throw new ParleyError(code as ErrorCode, 'refused')
    return { status: 'stored' }
  }
}
