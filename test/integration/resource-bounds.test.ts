/**
 * Resource bounds against a real node process: the attack of issue 9, many
 * streams from several peers each holding a partial 1 MiB frame. Streams
 * beyond the per-connection cap are refused, those beyond a peer's share of
 * the input buffers are reset at once, the rest at the frame deadline; the
 * node's memory stays bounded and returns near its baseline, and an honest
 * peer is served throughout. Figures: docs/SECURITY.md.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { NodeProc } from '../helpers/proc.js'
import { Libp2pHost, MAX_INBOUND_STREAMS_PER_PROTOCOL } from '../../node/src/host/libp2p-host.js'
import { createIdentityBytes, loadIdentity } from '../../core/keys.js'
import { MSG_PROTOCOL } from '../../core/protocol/peer-rpc.js'
import { DEFAULT_FRAME_TIMEOUT_MS } from '../../core/rpc/channel.js'
import { silentLogger } from '../../core/util/log.js'
import type { RawStream } from '../../core/rpc/stream.js'
import type { ParleyNode } from '../../node/src/parley-node.js'

const ATTACKERS = 6
const STREAMS_EACH = 30
const FRAME = 1024 * 1024
const CHUNK = 64 * 1024
const MiB = 1024 * 1024
/**
 * RSS bounds with margin (measured: docs/SECURITY.md); before the bounds, 180 such streams took ~400 MiB
 * and kept it. Freed memory is partly kept by V8 and malloc for reuse, so "back near baseline" is a bound,
 * and the proof that nothing accumulates is that a second attack ends where the first did (live memory after a GC).
 */
const PEAK_BOUND_MIB = 160
const AFTER_BOUND_MIB = 128
const REPEAT_GROWTH_BOUND_MIB = 8
/** stop waiting for the GC once RSS is this close to the baseline */
const SETTLED_MIB = 16
/**
 * Live memory (V8 heap + buffers outside it) after a forced GC, over its baseline: what "returns to
 * baseline" means, apart from the pages V8 and malloc keep for reuse (RSS). An attack holds ~180 MiB.
 */
const LIVE_BOUND_MIB = 16
/** the node under test answers SIGUSR2 with its memory after a full GC (test/bench/heap-probe.mjs) */
const HEAP_PROBE = new URL('../bench/heap-probe.mjs', import.meta.url).pathname

/** The node's live memory after a forced GC (heap used + external buffers), bytes. */
async function liveBytes (pid: number): Promise<number> {
  const file = `/tmp/parley-heap-${pid}.json`
  rmSync(file, { force: true })
  process.kill(pid, 'SIGUSR2')
  const m = await until(() => { try { return JSON.parse(readFileSync(file, 'utf8')) as { heapUsed: number, external: number } } catch { return undefined } }, 'heap probe', 10_000, 50)
  rmSync(file, { force: true })
  return m.heapUsed + m.external
}

const rssBytes = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

type Outcome = 'refused' | 'reset' | 'open'

/** Each attacking stream: refused at open (stream cap), or opened (then reset by the node, or still open). */
class Attempts {
  private readonly streams: Array<RawStream | null> = []
  add (stream: RawStream | null): void { this.streams.push(stream) }
  count (): Record<Outcome, number> {
    const c: Record<Outcome, number> = { refused: 0, reset: 0, open: 0 }
    for (const s of this.streams) c[s === null ? 'refused' : s.status === 'open' ? 'open' : 'reset']++
    return c
  }
}

/** Opens a stream and sends the header of a 1 MiB frame and all but its last byte; resolves when sent or cut. */
async function holdPartialFrame (attacker: Libp2pHost, victim: string, attempts: Attempts): Promise<void> {
  let stream: RawStream
  try {
    stream = await attacker.openStream(victim, MSG_PROTOCOL, { signal: AbortSignal.timeout(20_000) })
  } catch {
    attempts.add(null)
    return
  }
  attempts.add(stream)
  const header = new Uint8Array(4)
  new DataView(header.buffer).setUint32(0, FRAME)
  try {
    stream.send(header)
    for (let sent = 0; sent < FRAME - 1 && stream.status === 'open'; sent += CHUNK) {
      if (!stream.send(new Uint8Array(Math.min(CHUNK, FRAME - 1 - sent)))) await stream.onDrain({ signal: AbortSignal.timeout(30_000) })
    }
  } catch {
    // cut by the node while sending
  }
}

describe('resource bounds under a partial-frame flood', () => {
  let dir: string
  let victim: NodeProc
  let honest: ParleyNode
  let victimId: string
  let victimAddr: string
  const attackers: Libp2pHost[] = []

  before(async () => {
    dir = await tmpDir('parley-bounds-')
    victim = new NodeProc({ dataDir: join(dir, 'victim'), name: 'Victim', args: ['--no-mdns', '--announce-loopback', '--listen', '/ip4/127.0.0.1/tcp/0'], logFile: join(dir, 'victim.log'), nodeArgs: ['--expose-gc', '--import', HEAP_PROBE] })
    await victim.start(60_000)
    victimId = (await victim.api!.call<{ peerId: string }>('GET', '/identity')).peerId
    // the log file is written asynchronously: wait for the line
    victimAddr = await until(() => /listening: (\/ip4\/127\.0\.0\.1\/tcp\/\d+\S*)/.exec(victim.logText())?.[1], 'the victim address in its output')
    honest = loopbackNode(join(dir, 'honest'), { name: 'Honest' })
    await honest.start()
    await honest.host.dial(victimAddr)
  })
  after(async () => {
    for (const a of attackers) await a.stop()
    await honest?.stop()
    await victim?.stop()
    await removeDir(dir)
  })

  it('a peer gets at most MAX_INBOUND_STREAMS_PER_PROTOCOL Parley streams on one connection; the rest are refused', async () => {
    const attacker = await newAttacker()
    try {
      const attempts = new Attempts()
      // idle streams (no frame begun, so no deadline): only the cap limits them
      await Promise.all(Array.from({ length: 3 * MAX_INBOUND_STREAMS_PER_PROTOCOL }, async () => {
        try { attempts.add(await attacker.openStream(victimId, MSG_PROTOCOL, { signal: AbortSignal.timeout(20_000) })) } catch { attempts.add(null) }
      }))
      await sleep(1000)
      const c = attempts.count()
      assert.ok(c.open <= MAX_INBOUND_STREAMS_PER_PROTOCOL, JSON.stringify(c))
      assert.ok(c.open > 0, JSON.stringify(c))
      assert.equal(c.open + c.refused + c.reset, 3 * MAX_INBOUND_STREAMS_PER_PROTOCOL)
    } finally {
      await attacker.stop()
    }
  })

  /** A peer with a key of its own, connected to the victim. */
  async function newAttacker (): Promise<Libp2pHost> {
    const attacker = new Libp2pHost({ identity: loadIdentity(await createIdentityBytes()), log: silentLogger }, { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
    await attacker.start()
    attackers.push(attacker)
    // libp2p refuses more than 5 inbound connections per second from one IP (connection manager default)
    await sleep(300)
    await attacker.dial(victimAddr)
    return attacker
  }

  /** One attack: ATTACKERS peers with STREAMS_EACH streams each; ends when every stream is gone and the attackers hung up. */
  async function attack (pid: number, baseline: number, baseLive: number): Promise<{
    peakMiB: number, afterMiB: number, liveOverMiB: number, afterSend: Record<Outcome, number>, end: Record<Outcome, number>
  }> {
    let peak = baseline
    const sampler = setInterval(() => { try { peak = Math.max(peak, rssBytes(pid)) } catch { /* exited */ } }, 100)
    const attempts = new Attempts()
    const round: Libp2pHost[] = []
    try {
      const runs: Array<Promise<void>> = []
      for (let a = 0; a < ATTACKERS; a++) {
        const attacker = await newAttacker()
        round.push(attacker)
        for (let s = 0; s < STREAMS_EACH; s++) runs.push(holdPartialFrame(attacker, victimId, attempts))
      }
      await Promise.all(runs)
      const afterSend = attempts.count()
      // honest mail is served while the attack holds what it could
      const during = await honest.messenger.sendMessage(victimId, 'during')
      await honest.messenger.waitForState(during.id, 'delivered', { signal: AbortSignal.timeout(20_000) })
      // every held frame is cut at its deadline
      await until(() => attempts.count().open === 0, `every attacking stream refused or reset (after sending: ${JSON.stringify(afterSend)}, now ${JSON.stringify(attempts.count())})`, DEFAULT_FRAME_TIMEOUT_MS + 20_000, 200)
      const end = attempts.count()
      for (const a of round) await a.stop()
      // memory given back: let the node's GC catch up (bounded wait, no timing target)
      let last = rssBytes(pid)
      const deadline = Date.now() + 15_000
      while (last > baseline + SETTLED_MIB * MiB && Date.now() < deadline) { await sleep(500); last = rssBytes(pid) }
      // live memory after a full GC: connections of the attackers that hung up are let go within a few seconds
      let live = await liveBytes(pid)
      const liveDeadline = Date.now() + 15_000
      while (live > baseLive + LIVE_BOUND_MIB * MiB / 2 && Date.now() < liveDeadline) { await sleep(500); live = await liveBytes(pid) }
      return { peakMiB: mib(peak), afterMiB: mib(last), liveOverMiB: Math.round((live - baseLive) / MiB * 10) / 10, afterSend, end }
    } finally {
      clearInterval(sampler)
    }
  }

  it('streams are refused or reset, memory stays bounded and returns near baseline, honest mail goes through', async () => {
    const pid = victim.pid as number
    // baseline after one honest exchange (code paths loaded, a channel open)
    const first = await honest.messenger.sendMessage(victimId, 'before')
    await honest.messenger.waitForState(first.id, 'delivered', { signal: AbortSignal.timeout(20_000) })
    await sleep(2000)
    const baseline = rssBytes(pid)
    const baseLive = await liveBytes(pid)
    const rounds = [await attack(pid, baseline, baseLive), await attack(pid, baseline, baseLive)]
    const figures = JSON.stringify({ baselineMiB: mib(baseline), baseLiveMiB: mib(baseLive), streamsPerRound: ATTACKERS * STREAMS_EACH, rounds })
    console.log('resource-bounds figures', figures)
    for (const r of rounds) {
      assert.equal(r.end.open, 0, figures)
      assert.equal(r.end.refused + r.end.reset, ATTACKERS * STREAMS_EACH, figures)
      assert.ok(r.peakMiB - mib(baseline) < PEAK_BOUND_MIB, `peak RSS bounded: ${figures}`)
      assert.ok(r.afterMiB - mib(baseline) < AFTER_BOUND_MIB, `RSS back near baseline: ${figures}`)
      // nothing of the attack is kept: live memory after a GC is back at its baseline (within a few MiB)
      assert.ok(r.liveOverMiB < LIVE_BOUND_MIB, `live memory back to baseline: ${figures}`)
    }
    // no accumulation: a second attack leaves the node where the first one did. Measured on live memory after a GC:
    // RSS after a round is the allocator's business (once, in a loaded full suite, it stayed 43 MiB higher after the
    // second round while live memory was +1 MiB), and it is bounded above against the baseline already
    const [r0, r1] = [rounds[0]!, rounds[1]!]
    assert.ok(r1.liveOverMiB - r0.liveOverMiB < REPEAT_GROWTH_BOUND_MIB, `no growth across attacks: ${figures}`)
    const final = await honest.messenger.sendMessage(victimId, 'after')
    await honest.messenger.waitForState(final.id, 'delivered', { signal: AbortSignal.timeout(20_000) })
    assert.match(victim.logText(), /resetting stream: frame stalled/)
    assert.match(victim.logText(), /too much unprocessed input/)
  })
})

const mib = (b: number): number => Math.round(b / MiB)
