// Types for scripts/programs.mjs (the tests' process helpers read NODE_FLAGS from it).
export const BIN_DIST: string
export const PROGRAMS: Readonly<Record<'polyfill' | 'parley' | 'parley-relay', string>>
export const NODE_FLAGS: string[]
export function programsAreStale (): boolean
export function buildPrograms (opts?: { force?: boolean, log?: (line: string) => void }): Promise<boolean>
export function launch (name: string): Promise<void>
