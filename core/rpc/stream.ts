/**
 * The narrow view of a stream that the RPC channel uses. It is shaped after
 * libp2p's Stream so both hosts (node and relay) pass their streams straight
 * through, but nothing outside the host rooms imports libp2p.
 */
import type { AbortOptions } from '../util/abort.js'

export interface StreamChunk { subarray(): Uint8Array }

export interface RawStream {
  readonly status: string
  send(data: Uint8Array): boolean
  onDrain(options?: AbortOptions): Promise<void>
  close(options?: AbortOptions): Promise<void>
  abort(err: Error): void
  addEventListener(type: 'message', listener: (evt: Event & { data: Uint8Array | StreamChunk }) => void): void
  addEventListener(type: 'close', listener: (evt: Event & { error?: Error }) => void): void
}

export type StreamHandler = (stream: RawStream, remotePeer: string) => void
