import type { WebSocket } from 'ws'

interface Corkable { cork: () => void, uncork: () => void }

/**
 * Events emitted in one turn of the event loop (a group commit storing a
 * burst) reach a UI socket in one write: the socket is corked until the turn's
 * ticks ran. Each event stays its own WebSocket message (the API contract).
 * `flush` uncorks at once: a socket terminated while corked would drop what it
 * holds, so whoever closes sockets flushes first.
 */
export class WsCork {
  private readonly corked = new Map<WebSocket, Corkable>()

  forThisTurn (ws: WebSocket): void {
    const socket = (ws as unknown as { _socket?: Corkable })._socket
    if (socket === undefined || this.corked.has(ws)) return
    this.corked.set(ws, socket)
    socket.cork()
    process.nextTick(() => { this.uncork(ws) })
  }

  /** Sends what every corked socket holds, now. */
  flush (): void {
    for (const ws of [...this.corked.keys()]) this.uncork(ws)
  }

  private uncork (ws: WebSocket): void {
    const socket = this.corked.get(ws)
    if (socket === undefined) return
    this.corked.delete(ws)
    socket.uncork()
  }
}
