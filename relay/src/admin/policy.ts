/**
 * Relay policy: mailbox retention and quotas, whether federation is
 * allowed, and the file store's retention, quota and largest file. The config file gives the base; what the admin sets in the console
 * or the CLI is kept in the admin store and wins over the file, key by key,
 * until it is reset. Every change is validated first and applied at once,
 * without a restart.
 */
import {
  POLICY_KEYS, POLICY_RANGES, type Policy, type PolicyKey, type PolicyOverrides, type PolicyRangeKey, type PolicyView
} from '../../../core/protocol/admin-api.js'
import { refusal } from './refusal.js'

export type { Policy, PolicyKey, PolicyOverrides, PolicyView } from '../../../core/protocol/admin-api.js'
export { POLICY_KEYS }

/** @default false: an office opts in to federation */
export const DEFAULT_FEDERATION_ALLOWED = false

/** the rule of each number, in words for the CLI and the config file (the console words it from POLICY_RANGES) */
const RULE: Record<PolicyRangeKey, string> = {
  mailboxTtlMs: 'mailbox retention must be between 1 minute and 10 years (in ms)',
  quotaMessages: 'the message quota must be a whole number from 1 to 10,000,000',
  quotaBytes: 'the size quota must be a whole number of bytes from 1 MiB to 1 TiB',
  fileTtlMs: 'file retention must be between 1 minute and 10 years (in ms)',
  fileQuotaBytes: 'the file quota must be a whole number of bytes from 0 (no files kept) to 16 TiB',
  maxFileBytes: 'the largest file must be a whole number of bytes from 1 MiB to 16 GiB'
}

/** Checks a partial policy from the console, the CLI or the config file; names the first wrong key and why. */
export function parsePolicyOverrides (value: unknown, where = 'policy'): PolicyOverrides {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw refusal(`${where} must be an object`, { reason: 'policyNotObject' })
  }
  const out: PolicyOverrides = {}
  for (const [k, v] of Object.entries(value)) {
    if (!(POLICY_KEYS as readonly string[]).includes(k)) {
      throw refusal(`${where}: unknown setting "${k}" (known: ${POLICY_KEYS.join(', ')})`, { reason: 'policyUnknownKey', key: k })
    }
    const key = k as PolicyKey
    if (key === 'federationAllowed') {
      if (typeof v !== 'boolean') throw refusal(`${where}.federationAllowed must be true or false`, { reason: 'policyNotBoolean', key })
      out.federationAllowed = v
      continue
    }
    const r = POLICY_RANGES[key]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < r.min || v > r.max) {
      throw refusal(`${where}.${key}: ${RULE[key]}, got ${JSON.stringify(v)}`, { reason: 'policyRange', key, min: r.min, max: r.max })
    }
    out[key] = v
  }
  return out
}

/** Holds the two layers and tells the relay when the effective policy changed. */
export class PolicyLayers {
  constructor (private base: Policy, private overrides: PolicyOverrides, private readonly apply: (p: Policy) => void) {
    this.apply(this.effective())
  }

  effective (): Policy { return { ...this.base, ...this.overrides } }

  view (): PolicyView {
    const source = Object.fromEntries(POLICY_KEYS.map(k => [k, this.overrides[k] !== undefined ? 'console' : 'config'])) as PolicyView['source']
    return { effective: this.effective(), source }
  }

  get stored (): PolicyOverrides { return { ...this.overrides } }

  /** `changes` set keys; `reset` drops keys back to the config file's value. */
  update (changes: PolicyOverrides, reset: readonly PolicyKey[] = []): PolicyOverrides {
    const next = { ...this.overrides, ...changes }
    for (const k of reset) delete next[k]
    this.overrides = next
    this.apply(this.effective())
    return this.stored
  }

  /** Another instance on the shared store changed the console's layer: it replaces ours as a whole. */
  replace (overrides: PolicyOverrides): void {
    if (JSON.stringify(overrides) === JSON.stringify(this.overrides)) return
    this.overrides = { ...overrides }
    this.apply(this.effective())
  }

  /** A re-read config file (SIGHUP) replaces the base layer. */
  setBase (base: Policy): void {
    this.base = base
    this.apply(this.effective())
  }
}
