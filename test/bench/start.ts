/**
 * npm run bench:start: `parley start` until it prints `ready`, with 10,000
 * messages in its store, as compiled JavaScript (dist/bin/, what `npm start`
 * runs) and through tsx (the TypeScript compiled at run time, as before), against
 * a bare `node -e 0` start measured in the same run. Rounds are interleaved so
 * machine noise hits all three alike; medians and ratios are printed.
 * Bounded: ROUNDS rounds, then the data dir is deleted. Loopback only, no mDNS.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { NodeProc, PARLEY_BIN } from '../helpers/proc.js'
import { removeDir, tmpDir } from '../helpers/nodes.js'

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 10_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7)

/** ms from spawn until `ready` on stdout (or, for a bare node, until it exits) */
async function timeStart (args: string[], env: NodeJS.ProcessEnv, untilReady: boolean): Promise<number> {
  const t0 = performance.now()
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no ready within 60 s: ${stderr}`)) }, 60_000)
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (untilReady && /^ready$/m.test(out)) {
        const ms = performance.now() - t0
        clearTimeout(timer)
        child.once('exit', () => { resolve(ms) })
        child.kill('SIGTERM')
      }
    })
    child.once('exit', (code) => {
      if (untilReady) return
      clearTimeout(timer)
      if (code === 0) resolve(performance.now() - t0)
      else reject(new Error(`exit ${code}: ${stderr}`))
    })
  })
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] as number }

const dir = await tmpDir('parley-bench-start-')
try {
  const dataDir = join(dir, 'node')
  // a store with MESSAGES messages: queued to a colleague who is away (outbox + history)
  const seed = new NodeProc({ dataDir, name: 'Bench', args: ['--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0'], logFile: join(dir, 'seed.log') })
  await seed.start()
  const away = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  const t0 = performance.now()
  for (let i = 0; i < MESSAGES; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, MESSAGES - i) }, async (_, j) => await seed.api!.call('POST', '/messages', { to: away, text: `message ${i + j}` })))
  }
  console.error(`seeded ${MESSAGES} messages in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  await seed.stop()

  const start = ['start', '--data', dataDir, '--no-mdns', '--api-port', '0', '--listen', '/ip4/127.0.0.1/tcp/0']
  const env = { ...process.env, PARLEY_LOG: 'warn' }
  const bare: number[] = []
  const compiled: number[] = []
  const tsx: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    bare.push(await timeStart(['-e', '0'], env, false))
    compiled.push(await timeStart([PARLEY_BIN, ...start], { ...env, PARLEY_TSX: '0' }, true))
    tsx.push(await timeStart([PARLEY_BIN, ...start], { ...env, PARLEY_TSX: '1' }, true))
  }
  const b = median(bare)
  const f = (x: number): number => Math.round(x)
  console.log(JSON.stringify({
    messagesStored: MESSAGES,
    rounds: ROUNDS,
    bareNodeMs: f(b),
    compiledMs: f(median(compiled)),
    tsxMs: f(median(tsx)),
    compiledRatio: +(median(compiled) / b).toFixed(1),
    tsxRatio: +(median(tsx) / b).toFixed(1),
    goal: 'compiledRatio <= 6'
  }))
} finally {
  await removeDir(dir)
}
