/**
 * npm run bench:groups: time for one group message to reach every online
 * member (all stored it durably), for groups of 4 and of 50, against the
 * 1:1 message (one colleague, stored durably) of the same run: the goal is a
 * group of 50 within 5× the 1:1 p50. All nodes run in this one process on
 * loopback, so every receiver's decrypt and fsync share one CPU thread: the
 * figures are an upper bound for real desktops. Bounded: BENCH_ROUNDS rounds per size.
 */
import { join } from 'node:path'
import { connect, loopbackNode, removeDir, tmpDir } from '../helpers/nodes.js'
import { percentile } from '../helpers/audit.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { StoredMessage } from '../../node/src/store/types.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 100)
const SIZES = (process.env.BENCH_SIZES ?? '4,50').split(',').map(Number)

/** `size` members (sender included); size 1 is the 1:1 baseline: one message to one colleague. */
async function run (size: number): Promise<{ members: number, p50: number, p99: string, max: string }> {
  const dir = await tmpDir('parley-gbench-')
  const nodes: ParleyNode[] = []
  try {
    for (let i = 0; i < Math.max(size, 2); i++) {
      const n = loopbackNode(join(dir, `n${i}`), { name: `Member ${i}`, api: false })
      await n.start()
      nodes.push(n)
    }
    const [sender, ...rest] = nodes as [ParleyNode, ...ParleyNode[]]
    for (const n of rest) await connect(sender, n)
    let to = rest[0]!.peerId
    if (size > 1) {
      const g = await sender.messenger.createGroup(`Bench ${size}`, rest.map(n => n.peerId))
      await Promise.all(rest.map(async n => { while (n.messenger.group(g.conv) === null) await new Promise(resolve => setTimeout(resolve, 10)) }))
      to = g.conv
    }
    const times: number[] = []
    for (let r = 0; r < ROUNDS + 5; r++) {
      let pending = rest.length
      let id = ''
      const t0 = performance.now()
      const done = new Promise<void>((resolve) => {
        for (const n of rest) {
          const on = (e: Event): void => {
            if ((e as CustomEvent<StoredMessage>).detail.id !== id) return
            n.messenger.removeEventListener('messageStored', on)
            if (--pending === 0) resolve()
          }
          n.messenger.addEventListener('messageStored', on)
        }
      })
      id = (await sender.messenger.sendMessage(to, `round ${r}`)).id
      await done
      if (r >= 5) times.push(performance.now() - t0) // the first rounds warm up streams
    }
    times.sort((a, b) => a - b)
    return { members: size, p50: percentile(times, 50), p99: percentile(times, 99).toFixed(1), max: (times.at(-1) ?? NaN).toFixed(1) }
  } finally {
    for (const n of nodes) await n.stop()
    await removeDir(dir)
  }
}

const direct = await run(1)
const results = []
for (const size of SIZES) results.push(await run(size))
console.log(JSON.stringify({
  rounds: ROUNDS,
  directMessageMs: { p50: direct.p50.toFixed(1), p99: direct.p99, max: direct.max },
  msToReachAllMembers: results.map(r => ({ ...r, p50: r.p50.toFixed(1), ratioToDirectP50: (r.p50 / direct.p50).toFixed(2) })),
  goal: 'members 50: ratioToDirectP50 ≤ 5'
}, null, 2))
