/**
 * The CLI's argument parser (node:util parseArgs, strict) and the options of
 * the commands whose arguments carry pasted secrets, exported so the tests
 * run generated tokens through exactly what `parley` runs.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'

export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>

const common = { data: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const

/** `parley start` */
export const START_OPTIONS = {
  name: { type: 'string' },
  listen: { type: 'string', multiple: true },
  peer: { type: 'string', multiple: true },
  'no-mdns': { type: 'boolean' },
  'api-port': { type: 'string' },
  'announce-loopback': { type: 'boolean' },
  'mdns-ttl': { type: 'string' },
  'max-connections': { type: 'string' },
  relay: { type: 'string' },
  invite: { type: 'string' },
  // an invite link from the relay admin: stands for --relay and --invite
  join: { type: 'string' },
  'log-format': { type: 'string' },
  downloads: { type: 'string' },

  // how long after writing a message its author may still edit / recall it (stored, like --name)
  'edit-minutes': { type: 'string' },
  'recall-minutes': { type: 'string' }
} as const satisfies Options

/** the longest edit/recall window a flag may set: a year */
export const MAX_CHANGE_MINUTES = 525_600

/** `--edit-minutes` / `--recall-minutes` as NodeInit.changeWindows (only what was given); UsageError when not 0 … a year. */
export function changeWindowsOption (values: Record<string, unknown>): { editMs?: number, recallMs?: number } | undefined {
  const minutes = (flag: 'edit-minutes' | 'recall-minutes'): number | undefined => {
    const v = values[flag]
    if (v === undefined) return undefined
    const n = /^\d{1,6}$/.test(String(v)) ? Number(v) : NaN
    if (!Number.isInteger(n) || n > MAX_CHANGE_MINUTES) {
      throw new UsageError(`--${flag} must be a whole number of minutes from 0 to ${MAX_CHANGE_MINUTES} (a year)`)
    }
    return n * 60_000
  }
  const editMs = minutes('edit-minutes')
  const recallMs = minutes('recall-minutes')
  if (editMs === undefined && recallMs === undefined) return undefined
  return { ...(editMs !== undefined ? { editMs } : {}), ...(recallMs !== undefined ? { recallMs } : {}) }
}

/** `parley relay [ADDR|none]` */
export const RELAY_OPTIONS = { invite: { type: 'string' }, json: { type: 'boolean' } } as const satisfies Options

/** Parses `args` strictly; `positionals` is an exact count or a [min, max] range. Throws UsageError. */
export function parse (args: string[], options: Options, positionals: number | [number, number]): { values: Record<string, unknown>, positionals: string[] } {
  const [min, max] = typeof positionals === 'number' ? [positionals, positionals] : positionals
  let parsed
  try {
    parsed = parseArgs({ args, options: { ...common, ...options }, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const n = parsed.positionals.length
  if (n < min || n > max) throw new UsageError(`expected ${min === max ? min : `${min} to ${max}`} argument(s), got ${n}`)
  return parsed as { values: Record<string, unknown>, positionals: string[] }
}
