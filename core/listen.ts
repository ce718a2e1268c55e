/**
 * Start-up truth for listeners: libp2p reports listen failures as one
 * multi-line error about all addresses; this turns it into a typed error that
 * says which address failed and what to do, so a node or relay whose port is
 * taken stops with a clear sentence instead of running without a listener.
 */
import { ParleyError } from './errors.js'

/** `  /ip4/0.0.0.0/tcp/4001: listen EADDRINUSE: address already in use 0.0.0.0:4001` */
const FAILED_ADDR = /^\s*(\/\S+): (.+)$/gm

/** The typed error for a failed listen, or `err` itself when it is not one. */
export function listenError (err: unknown): unknown {
  if (!(err instanceof Error) || err.name !== 'UnsupportedListenAddressesError') return err
  const failed = [...err.message.matchAll(FAILED_ADDR)].map(m => ({ addr: m[1] as string, reason: m[2] as string }))
  const inUse = failed.filter(f => f.reason.includes('EADDRINUSE'))
  if (inUse.length > 0) {
    const addrs = inUse.map(f => f.addr).join(', ')
    const what = `cannot listen on ${addrs}: the port is in use by another program (another Parley running?)`
    return new ParleyError('ERR_PORT_IN_USE', `${what}. Stop it, or choose another port with --listen (port 0 picks a free one)`, { cause: err })
  }
  const what = failed.length > 0 ? failed.map(f => `${f.addr} (${f.reason})`).join(', ') : err.message
  return new ParleyError('ERR_LISTEN_FAILED', `cannot listen on ${what}: check the --listen addresses`, { cause: err })
}
