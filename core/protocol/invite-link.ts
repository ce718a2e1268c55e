/**
 * An invite as a link: `parley://join?relay=<multiaddr>&invite=<token>`, what
 * the relay console shows, prints on the invite sheet and puts in the QR code,
 * and what `parley start --join`, `parley join` and `PUT /v1/settings {join}`
 * take.
 */
import { ParleyError } from '../errors.js'
import { INVITE_TOKEN } from './relay-rpc.js'

export const INVITE_LINK_PREFIX = 'parley://join'

export function inviteLink (relayAddr: string, token: string): string {
  return `${INVITE_LINK_PREFIX}?relay=${encodeURIComponent(relayAddr)}&invite=${encodeURIComponent(token)}`
}

/** The relay address and token of a link; ERR_INVALID_ARGUMENT when it is not one. */
export function parseInviteLink (link: string): { relay: string, invite: string } {
  const bad = (): never => { throw new ParleyError('ERR_INVALID_ARGUMENT', `not a Parley invite link (${INVITE_LINK_PREFIX}?relay=…&invite=…)`) }
  const text = link.trim()
  if (!text.startsWith(INVITE_LINK_PREFIX + '?')) return bad()
  const q = new URLSearchParams(text.slice(INVITE_LINK_PREFIX.length + 1))
  const relay = q.get('relay')
  const invite = q.get('invite')
  if (relay === null || relay === '' || invite === null || !INVITE_TOKEN.test(invite)) return bad()
  return { relay, invite }
}
