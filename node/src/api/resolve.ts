import { ParleyError } from '../../../core/errors.js'
import { PEER_ID } from '../../../core/protocol/validate.js'
import type { PeerView } from '../messaging/messenger.js'

/**
 * Minimum length of a peer ID prefix or suffix accepted as a reference, not
 * counting the `12D3KooW` that every Ed25519 peer ID starts with (a prefix
 * that short would be cheap to imitate with a generated key).
 */
export const MIN_PEER_PREFIX = 12
const ED25519_PEER_ID_START = '12D3KooW'

/**
 * Turns what a person typed (a full peer ID, a display name, or a peer ID
 * prefix) into one peer ID, or says clearly why it cannot.
 */
export function resolvePeer (ref: string, peers: PeerView[], self: string): string {
  const r = ref.trim()
  if (r === '') throw new ParleyError('ERR_INVALID_ARGUMENT', 'peer must not be empty')
  if (PEER_ID.test(r)) return r
  const byName = peers.filter(p => p.name !== null && p.name.toLowerCase() === r.toLowerCase() && p.peerId !== self)
  if (byName.length === 1) return (byName[0] as PeerView).peerId
  if (byName.length > 1) {
    const ids = byName.map(p => p.peerId.slice(-MIN_PEER_PREFIX)).join(', ')
    throw new ParleyError('ERR_AMBIGUOUS_PEER', `${byName.length} peers are named "${r}": use a peer ID (${ids})`)
  }
  const significant = r.startsWith(ED25519_PEER_ID_START) ? r.length - ED25519_PEER_ID_START.length : r.length
  if (significant >= MIN_PEER_PREFIX) {
    const byPrefix = peers.filter(p => p.peerId !== self && (p.peerId.startsWith(r) || p.peerId.endsWith(r)))
    if (byPrefix.length === 1) return (byPrefix[0] as PeerView).peerId
    if (byPrefix.length > 1) throw new ParleyError('ERR_AMBIGUOUS_PEER', `"${r}" matches ${byPrefix.length} peers`)
  }
  throw new ParleyError('ERR_UNKNOWN_PEER', `no known peer "${r}" (use a full peer ID, a display name, or see \`parley peers\`)`)
}
