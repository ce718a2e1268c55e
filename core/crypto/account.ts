/**
 * Account ops signed by the account key (Ed25519, node:crypto), and the fold
 * of an account's ops into its device list. The chain a peer checks: the
 * account key (inside the account ID) signed an `add` op naming the device;
 * the device key (inside its peer ID) signed its consent in that op, and
 * signed the envelope. An op whose
 * signature does not verify is no part of the account (a forged certificate).
 */
import { sign, verify, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { ParleyError } from '../errors.js'
import { publicKeyOfPeer } from '../keys.js'
import { b64, unb64 } from '../protocol/validate.js'
import { compareOps, type AccountOp, type AccountRecord, type AccountState, type HomeRelay } from '../protocol/account.js'
import type { SigningKeys } from './envelope.js'

/** Canonical bytes of an op: a fixed-order array with its own domain string. */
function opBytes (op: Omit<AccountOp, 'sig'>): Uint8Array {
  return Buffer.from(JSON.stringify(['parley-account-op-v1', op.v, op.account, op.n, op.type, op.device ?? null, op.label ?? null,
    op.home === undefined ? null : op.home.map(h => [h.relay, h.addrs]), op.at, op.dsig ?? null]))
}

/** What a device signs to consent to being a device of `account` (carried in the add op as `dsig`). */
function consentBytes (account: string, device: string): Uint8Array {
  return Buffer.from(JSON.stringify(['parley-device-consent-v1', account, device]))
}

function edKey (k: SigningKeys): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64(k.seed), x: b64(k.publicKey) }, format: 'jwk' })
}

/** The device's consent to join `account` (the new device makes it during linking). */
export function signDeviceConsent (device: SigningKeys, account: string): string {
  return b64(sign(null, consentBytes(account, device.peerId), edKey(device)))
}

export function deviceConsentValid (account: string, device: string, dsig: string): boolean {
  try {
    return verify(null, consentBytes(account, device), accountPublicKey(device), unb64(dsig))
  } catch {
    return false
  }
}

const keyCache = new Map<string, KeyObject>()
function accountPublicKey (account: string): KeyObject {
  let k = keyCache.get(account)
  if (k === undefined) {
    if (keyCache.size > 4096) keyCache.clear()
    k = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64(publicKeyOfPeer(account)) }, format: 'jwk' })
    keyCache.set(account, k)
  }
  return k
}

export type AccountOpInput =
  | { type: 'add', device: string, label?: string, dsig: string }
  | { type: 'revoke', device: string }
  | { type: 'home', home: HomeRelay[] }

/** Signs op number `n` with the account key (the account's first device's key). */
export function signAccountOp (accountKey: SigningKeys, n: number, input: AccountOpInput, at = Date.now()): AccountOp {
  const op: Omit<AccountOp, 'sig'> = { v: 1, account: accountKey.peerId, n, at, ...input }
  return { ...op, sig: b64(sign(null, opBytes(op), edKey(accountKey))) }
}

/** Signed by the account key, and an add op also by the device it names. */
export function accountOpValid (op: AccountOp): boolean {
  try {
    if (!verify(null, opBytes(op), accountPublicKey(op.account), unb64(op.sig))) return false
  } catch {
    return false
  }
  if (op.type !== 'add') return true
  return op.device !== undefined && op.dsig !== undefined && deviceConsentValid(op.account, op.device, op.dsig)
}

/** Throws ERR_BAD_SIGNATURE naming the first op that is not signed by its account key. */
export function verifyAccountRecord (r: AccountRecord): void {
  for (const op of r.ops) {
    if (op.account !== r.account || !accountOpValid(op)) {
      throw new ParleyError('ERR_BAD_SIGNATURE', `account ${r.account.slice(-8)}: op ${op.n} is not signed by the account key`)
    }
  }
}

/**
 * The account's state from its ops, the same on every peer: ops that do not
 * verify are skipped; the rest apply in (n, sig) order. The account key's own
 * device is always a device (it holds the key); a revoked device stays
 * revoked whatever op comes later; the last `home` op wins.
 */
export function foldAccount (account: string, ops: readonly AccountOp[]): AccountState {
  const s: AccountState = { account, version: 0, devices: [account], labels: {}, revoked: [], home: [] }
  for (const op of [...ops].sort(compareOps)) {
    if (op.account !== account || !accountOpValid(op)) continue
    s.version = Math.max(s.version, op.n)
    switch (op.type) {
      case 'add':
        if (op.device === undefined || s.revoked.includes(op.device) || s.devices.includes(op.device)) break
        s.devices.push(op.device)
        if (op.label !== undefined && op.label !== '') s.labels[op.device] = op.label
        break
      case 'revoke':
        // only a device of this account (an account cannot revoke someone else's device)
        if (op.device === undefined || op.device === account || !s.devices.includes(op.device)) break
        s.revoked.push(op.device)
        s.devices = s.devices.filter(d => d !== op.device)
        break
      case 'home':
        s.home = op.home ?? []
        break
    }
  }
  return s
}

/** Where `device` stands in an account: a current device, revoked, or never certified. */
export function deviceStatus (s: AccountState, device: string): 'current' | 'revoked' | 'unknown' {
  if (s.devices.includes(device)) return 'current'
  return s.revoked.includes(device) ? 'revoked' : 'unknown'
}
