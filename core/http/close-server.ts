/** Closes an HTTP server now: open (kept-alive) connections are cut, then it stops listening. */
import type { Server } from 'node:http'

export async function closeServer (s: Server | undefined): Promise<void> {
  if (s === undefined) return
  s.closeAllConnections()
  await new Promise<void>(resolve => { s.close(() => { resolve() }) })
}
