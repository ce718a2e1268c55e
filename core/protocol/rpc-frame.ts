/**
 * RPC frames, the same for both protocols: a request names a method, a
 * response answers its `rid`. Each protocol's channel parses with
 * `rpcFrameParser(ITS_METHODS)`, so it accepts only its own methods.
 */
import { Checker, parseJson } from './validate.js'
import { PEER_RPC_METHODS, type PeerRpcMethod } from './peer-rpc.js'
import { RELAY_RPC_METHODS, type RelayRpcMethod } from './relay-rpc.js'

export type RpcMethod = PeerRpcMethod | RelayRpcMethod
/** Every method of both protocols. */
export const RPC_METHODS: readonly RpcMethod[] = [...PEER_RPC_METHODS, ...RELAY_RPC_METHODS]

export interface RpcRequest<M extends string = RpcMethod> { v: 1, t: 'req', rid: number, m: M, body: unknown }
export interface RpcOk { v: 1, t: 'res', rid: number, ok: true, body: unknown }
export interface RpcErr { v: 1, t: 'res', rid: number, ok: false, code: string, message: string }
export type RpcFrame<M extends string = RpcMethod> = RpcRequest<M> | RpcOk | RpcErr

const frameCheck = new Checker('ERR_MALFORMED_FRAME', 'frame')

/** A parser of frames whose requests may name only `methods` (others: ERR_MALFORMED_FRAME). */
export function rpcFrameParser<M extends string> (methods: readonly M[]): (bytes: Uint8Array) => RpcFrame<M> {
  return (bytes) => {
    const o = frameCheck.obj(parseJson(bytes, 'ERR_MALFORMED_FRAME', 'frame'))
    frameCheck.literal(o, 'v', [1])
    const t = frameCheck.literal(o, 't', ['req', 'res'])
    const rid = frameCheck.int(o, 'rid', { min: 0, max: 2 ** 32 })
    if (t === 'req') {
      const m = frameCheck.literal(o, 'm', methods)
      return { v: 1, t, rid, m, body: o.body }
    }
    if (o.ok === true) return { v: 1, t, rid, ok: true, body: o.body }
    if (o.ok === false) {
      return { v: 1, t, rid, ok: false, code: frameCheck.str(o, 'code', { max: 64 }), message: frameCheck.str(o, 'message', { min: 0, max: 1000 }) }
    }
    return frameCheck.fail('ok must be a boolean')
  }
}

/** Frames of either protocol (any method of RPC_METHODS). */
export const parseRpcFrame: (bytes: Uint8Array) => RpcFrame = rpcFrameParser(RPC_METHODS)
