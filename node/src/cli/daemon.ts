/**
 * `parley start`: run one node in the foreground until SIGINT/SIGTERM.
 */
import { mkdirSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { ParleyNode } from '../parley-node.js'
import { createLogger } from '../../../core/util/log.js'
import { toParleyError } from '../../../core/errors.js'
import { lossWords } from '../store/open-node-store.js'
import { defaultDataDir, type NodeInit } from '../config.js'

/** 'file': JSON log lines go to DATA/parley.log, the terminal gets only lines for people; 'json': JSON lines on stderr */
export type LogFormat = 'file' | 'json'
export const LOG_FILE = 'parley.log'

/** appends each line to `path` (0600), synchronously: a line logged just before a crash is not lost */
function fileWriter (path: string): (line: string) => void {
  let fd: number | null = null
  return (line) => {
    fd ??= openSync(path, 'a', 0o600)
    writeSync(fd, line + '\n')
  }
}

export async function runDaemon (init: NodeInit, logFormat: LogFormat = 'file'): Promise<number> {
  const dir = init.dataDir ?? defaultDataDir()
  if (logFormat === 'file') mkdirSync(dir, { recursive: true, mode: 0o700 })
  const log = logFormat === 'json' ? createLogger('parley') : createLogger('parley', undefined, fileWriter(join(dir, LOG_FILE)))
  const node = new ParleyNode(init, log)
  // a bad frame or a bug in one handler must not take the node down: log it, keep running
  process.on('uncaughtException', (err) => { log.error('uncaught exception', { err: String(err?.stack ?? err) }) })
  process.on('unhandledRejection', (err) => { log.error('unhandled rejection', { err: String((err as Error)?.stack ?? err) }) })
  try {
    await node.start()
  } catch (err) {
    const e = toParleyError(err)
    process.stderr.write(`parley: ${e.code}: ${e.message}\n`)
    return e.code === 'ERR_INVALID_ARGUMENT' ? 2 : 1
  }
  const port = node.apiPort
  process.stdout.write(`Parley is running as "${node.messenger.name}" (${node.peerId})\n`)
  process.stdout.write(`  data dir: ${node.dataDir}\n`)
  const damage = node.storeReport
  if (damage.damaged) {
    process.stdout.write(`  message store: damaged (${damage.reasons.join('; ')}); ${damage.check?.messages ?? 0} messages kept, ` +
      `${lossWords(damage.lost, damage.uncounted)}: the lost ones are fetched back from your colleagues when they connect\n`)
  }
  for (const a of node.host.addresses()) process.stdout.write(`  listening: ${a}\n`)
  if (port !== undefined) {
    process.stdout.write(`  local API: http://127.0.0.1:${port}/v1 (token in ${node.dataDir}/api-token)\n`)
    process.stdout.write(`  open Parley in your browser: ${node.uiUrl ?? ''}\n`)
  }
  if (logFormat === 'file') process.stdout.write(`  log: ${join(dir, LOG_FILE)}\n`)
  process.stdout.write('ready\n')
  return await new Promise<number>((resolve) => {
    let stopping = false
    const stop = (): void => {
      if (stopping) return
      stopping = true
      log.info('stopping')
      node.stop().then(() => { resolve(0) }, (err) => { log.error('stop failed', { err: String(err) }); resolve(1) })
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}
