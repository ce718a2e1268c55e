/**
 * `parley start`: run one node in the foreground until SIGINT/SIGTERM.
 */
import { ParleyNode } from '../parley-node.js'
import { createLogger } from '../../../core/util/log.js'
import { toParleyError } from '../../../core/errors.js'
import type { NodeInit } from '../config.js'

export async function runDaemon (init: NodeInit): Promise<number> {
  const log = createLogger('parley')
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
      'the lost ones are fetched back from your colleagues when they connect\n')
  }
  for (const a of node.host.addresses()) process.stdout.write(`  listening: ${a}\n`)
  if (port !== undefined) {
    process.stdout.write(`  local API: http://127.0.0.1:${port}/v1 (token in ${node.dataDir}/api-token)\n`)
    process.stdout.write(`  open Parley in your browser: ${node.uiUrl ?? ''}\n`)
  }
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
