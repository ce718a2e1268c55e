/**
 * Bounds on what peers can make us hold in memory: bytes of partial frames
 * and of requests received but not handled yet, per remote peer (so per
 * connection, and across its streams) and for the whole process. A channel
 * whose input would go over either bound is reset; the peer's requests were
 * not acknowledged, so a well-behaved peer just sends them again later.
 *
 * The total bound alone would let a handful of cheap identities (nine LAN
 * keys at 8 MiB each) fill the process's 64 MiB and starve every honest
 * peer. So each peer has a guaranteed floor (256 KiB: a message delivery, a
 * profile, a sync request) that the total does not take from: the total
 * bounds only the bytes peers hold above their floors. Memory held is at most
 * totalBytes + connected peers x floorBytes (connections are capped by the
 * host's connection manager).
 */

/** What one channel reserves from: false means over a limit (nothing was reserved). */
export interface ByteBudget {
  reserve: (bytes: number) => boolean
  release: (bytes: number) => void
}

export interface InboundBudgetInit {
  /** per remote peer. @default 8 MiB */
  perPeerBytes?: number
  /** for all peers together, above their floors. @default 64 MiB */
  totalBytes?: number
  /** what each peer may hold whatever the others hold. @default 256 KiB */
  floorBytes?: number
}

export const DEFAULT_PEER_BUFFER_BYTES = 8 * 1024 * 1024
export const DEFAULT_TOTAL_BUFFER_BYTES = 64 * 1024 * 1024
export const DEFAULT_PEER_FLOOR_BYTES = 256 * 1024

export class InboundBudget {
  private readonly perPeer: number
  private readonly total: number
  private readonly floor: number
  private used = 0
  /** bytes held above the peers' floors: what the total bounds */
  private shared = 0
  private readonly byPeer = new Map<string, number>()

  constructor (init: InboundBudgetInit = {}) {
    this.perPeer = init.perPeerBytes ?? DEFAULT_PEER_BUFFER_BYTES
    this.total = init.totalBytes ?? DEFAULT_TOTAL_BUFFER_BYTES
    this.floor = Math.min(init.floorBytes ?? DEFAULT_PEER_FLOOR_BYTES, this.perPeer)
  }

  /** bytes held for all peers now */
  get usedBytes (): number { return this.used }

  /** The account of one remote peer; all its channels share it. */
  for (peer: string): ByteBudget {
    return {
      reserve: (bytes) => {
        const mine = this.byPeer.get(peer) ?? 0
        const sharedAfter = this.shared + this.aboveFloor(mine + bytes) - this.aboveFloor(mine)
        if (mine + bytes > this.perPeer || sharedAfter > this.total) return false
        this.byPeer.set(peer, mine + bytes)
        this.used += bytes
        this.shared = sharedAfter
        return true
      },
      release: (bytes) => {
        const mine = this.byPeer.get(peer) ?? 0
        const n = Math.min(bytes, mine)
        if (mine - n === 0) this.byPeer.delete(peer)
        else this.byPeer.set(peer, mine - n)
        this.used -= n
        this.shared += this.aboveFloor(mine - n) - this.aboveFloor(mine)
      }
    }
  }

  private aboveFloor (held: number): number { return Math.max(0, held - this.floor) }
}
