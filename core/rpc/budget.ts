/**
 * Bounds on what peers can make us hold in memory: bytes of partial frames
 * and of requests received but not handled yet, per remote peer (so per
 * connection, and across its streams) and for the whole process. A channel
 * whose input would go over either bound is reset; the peer's requests were
 * not acknowledged, so a well-behaved peer just sends them again later.
 */

/** What one channel reserves from: false means over a limit (nothing was reserved). */
export interface ByteBudget {
  reserve: (bytes: number) => boolean
  release: (bytes: number) => void
}

export interface InboundBudgetInit {
  /** per remote peer. @default 8 MiB */
  perPeerBytes?: number
  /** for all peers together. @default 64 MiB */
  totalBytes?: number
}

export const DEFAULT_PEER_BUFFER_BYTES = 8 * 1024 * 1024
export const DEFAULT_TOTAL_BUFFER_BYTES = 64 * 1024 * 1024

export class InboundBudget {
  private readonly perPeer: number
  private readonly total: number
  private used = 0
  private readonly byPeer = new Map<string, number>()

  constructor (init: InboundBudgetInit = {}) {
    this.perPeer = init.perPeerBytes ?? DEFAULT_PEER_BUFFER_BYTES
    this.total = init.totalBytes ?? DEFAULT_TOTAL_BUFFER_BYTES
  }

  /** bytes held for all peers now */
  get usedBytes (): number { return this.used }

  /** The account of one remote peer; all its channels share it. */
  for (peer: string): ByteBudget {
    return {
      reserve: (bytes) => {
        const mine = this.byPeer.get(peer) ?? 0
        if (mine + bytes > this.perPeer || this.used + bytes > this.total) return false
        this.byPeer.set(peer, mine + bytes)
        this.used += bytes
        return true
      },
      release: (bytes) => {
        const mine = this.byPeer.get(peer) ?? 0
        const n = Math.min(bytes, mine)
        if (mine - n === 0) this.byPeer.delete(peer)
        else this.byPeer.set(peer, mine - n)
        this.used -= n
      }
    }
  }
}
