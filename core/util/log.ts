/**
 * Structured logs as JSON lines on stderr. Levels: debug < info < warn < error;
 * PARLEY_LOG sets the minimum (default info).
 */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const
export type LogLevel = keyof typeof LEVELS

export function createLogger (
  name: string,
  level: LogLevel = (process.env.PARLEY_LOG as LogLevel | undefined) ?? 'info',
  write: (line: string) => void = (l) => { process.stderr.write(l + '\n') }
): Logger {
  const min = LEVELS[level] ?? LEVELS.info
  const emit = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Record<string, unknown>): void => {
    if (LEVELS[lvl] < min) return
    write(JSON.stringify({ t: new Date().toISOString(), level: lvl, name, msg, ...fields }))
  }
  return {
    debug: (m, f) => { emit('debug', m, f) },
    info: (m, f) => { emit('info', m, f) },
    warn: (m, f) => { emit('warn', m, f) },
    error: (m, f) => { emit('error', m, f) }
  }
}

export const silentLogger: Logger = createLogger('silent', 'silent')
