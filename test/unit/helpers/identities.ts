/** Real device identities for unit tests (Ed25519 keygen is fast). */
import { createIdentityBytes, loadIdentity, type DeviceIdentity } from '../../../core/keys.js'

export async function newIdentity (): Promise<DeviceIdentity> {
  return loadIdentity(await createIdentityBytes())
}

export async function newIdentities (n: number): Promise<DeviceIdentity[]> {
  return await Promise.all(Array.from({ length: n }, async () => await newIdentity()))
}
