/**
 * Safety numbers for key verification: both people read the same 60 digits
 * (12 groups of 5) on their screens and compare them out of band. Derived from
 * both Ed25519 public keys, sorted, so it is the same on either side.
 */
import { createHash } from 'node:crypto'
import { publicKeyOfPeer } from '../keys.js'

export function safetyNumber (a: string, b: string): string {
  const [x, y] = [a, b].sort()
  let digest = createHash('sha512').update('parley-safety-v1').update(publicKeyOfPeer(x as string)).update(publicKeyOfPeer(y as string)).digest()
  // iterate, as Signal does, so a brute-forced collision costs more than one hash
  for (let i = 0; i < 1024; i++) digest = createHash('sha512').update(digest).digest()
  const groups: string[] = []
  for (let i = 0; i < 12; i++) groups.push((digest.readUInt32BE(i * 4) % 100000).toString().padStart(5, '0'))
  return groups.join(' ')
}
