/**
 * Secrets that a person copies and pastes (relay invite tokens, pairing
 * tokens): random bytes in lowercase base32 (RFC 4648 alphabet a-z 2-7, no
 * padding). The alphabet has no '-' or '_', so a token never starts with '-'
 * (which a CLI would read as an option: `--invite -x…` fails as ambiguous),
 * survives double-click selection and reading aloud (no 0/O, 1/l).
 */
import { randomBytes } from 'node:crypto'

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'
/** a generated token: only the base32 alphabet */
export const PASTE_SAFE_TOKEN = /^[a-z2-7]+$/

export function base32 (bytes: Uint8Array): string {
  let out = ''
  let bits = 0
  let value = 0
  for (const b of bytes) {
    value = (value << 8) | b
    bits += 8
    while (bits >= 5) { out += ALPHABET[(value >>> (bits - 5)) & 31]; bits -= 5 }
    value &= (1 << bits) - 1
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31]
  return out
}

/** `bytes` random bytes as a paste-safe token (18 bytes: 144 bits, 29 characters). @default 18 */
export function pasteSafeToken (bytes = 18): string {
  return base32(randomBytes(bytes))
}
