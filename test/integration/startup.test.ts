/**
 * Start-up truth: a node or relay whose port is taken does not say `ready`;
 * it stops with ERR_PORT_IN_USE and a sentence naming the address. Secrets
 * the user pastes (invite tokens) are safe as CLI arguments.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { MemoryLevel } from 'memory-level'
import { removeDir, tmpDir, until } from '../helpers/nodes.js'
import { NodeProc, PARLEY_BIN, RELAY_BIN, RelayProc } from '../helpers/proc.js'
import { RELAY_OPTIONS, START_OPTIONS, UsageError, changeWindowsOption, parse } from '../../node/src/cli/args.js'
import { INVITE_TOKEN } from '../../core/protocol/relay-rpc.js'
import { PASTE_SAFE_TOKEN } from '../../core/util/tokens.js'
import { LevelMailboxStore } from '../../relay/src/store/level-mailbox-store.js'
import type { RelayUser } from '../../relay/src/store/types.js'

/** Runs a CLI to its exit; resolves with the exit code and output. */
function run (bin: string, args: string[], timeoutMs = 30_000): Promise<{ code: number | null, out: string, err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''; let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const t = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
    child.once('exit', (code) => { clearTimeout(t); resolve({ code, out, err }) })
  })
}

describe('start-up truth', () => {
  let dir: string
  let blocker: Server
  let taken: number

  before(async () => {
    dir = await tmpDir('parley-startup-')
    // a port some other program holds
    blocker = createServer()
    await new Promise<void>(resolve => { blocker.listen(0, '127.0.0.1', resolve) })
    taken = (blocker.address() as { port: number }).port
  })
  after(async () => {
    await new Promise(resolve => blocker?.close(resolve))
    await removeDir(dir)
  })

  it('a node whose P2P port is taken fails to start with ERR_PORT_IN_USE, naming the address', async () => {
    const r = await run(PARLEY_BIN, ['start', '--data', join(dir, 'n1'), '--no-mdns', '--api-port', '0', '--listen', `/ip4/127.0.0.1/tcp/${taken}`])
    assert.equal(r.code, 1, r.err)
    assert.match(r.err, new RegExp(`ERR_PORT_IN_USE: cannot listen on /ip4/127\\.0\\.0\\.1/tcp/${taken}: the port is in use`))
    assert.doesNotMatch(r.out, /ready/)
  })

  it('a node whose API port is taken fails to start with ERR_PORT_IN_USE', async () => {
    const r = await run(PARLEY_BIN, ['start', '--data', join(dir, 'n2'), '--no-mdns', '--api-port', String(taken), '--listen', '/ip4/127.0.0.1/tcp/0'])
    assert.equal(r.code, 1, r.err)
    assert.match(r.err, new RegExp(`ERR_PORT_IN_USE: the local API port ${taken} on 127\\.0\\.0\\.1 is in use`))
    assert.doesNotMatch(r.out, /ready/)
  })

  it('a relay whose listener port is taken fails to start with ERR_PORT_IN_USE', async () => {
    const r = await run(RELAY_BIN, ['start', '--data', join(dir, 'r1'), '--listen', '/ip4/127.0.0.1/tcp/0', '--listen', `/ip4/127.0.0.1/tcp/${taken}/ws`])
    assert.equal(r.code, 1, r.err)
    assert.match(r.err, new RegExp(`ERR_PORT_IN_USE: cannot listen on /ip4/127\\.0\\.0\\.1/tcp/${taken}/ws`))
    assert.doesNotMatch(r.out, /ready/)
  })

  it('port 0 picks a free port: two nodes asked for 0 both listen, on different ports', async () => {
    const a = new NodeProc({ dataDir: join(dir, 'z1'), name: 'Zero1', args: ['--no-mdns', '--announce-loopback', '--listen', '/ip4/127.0.0.1/tcp/0'], logFile: join(dir, 'z1.log') })
    const b = new NodeProc({ dataDir: join(dir, 'z2'), name: 'Zero2', args: ['--no-mdns', '--announce-loopback', '--listen', '/ip4/127.0.0.1/tcp/0'], logFile: join(dir, 'z2.log') })
    try {
      await a.start(60_000); await b.start(60_000)
      const port = async (n: NodeProc): Promise<string> => await until(() => /listening: \/ip4\/127\.0\.0\.1\/tcp\/(\d+)/.exec(n.logText())?.[1], 'the listen address in the output')
      assert.notEqual(await port(a), await port(b))
    } finally {
      await a.stop(); await b.stop()
    }
  })
})

describe('paste-safe invite tokens', () => {
  it('thousands of generated invite tokens all pass through the real CLI parser unchanged', async () => {
    const store = new LevelMailboxStore(new MemoryLevel() as never, { ttlMs: 60_000, quotaMessages: 10, quotaBytes: 1 << 20 })
    await store.start()
    try {
      const relay = '/ip4/127.0.0.1/tcp/4100/p2p/12D3KooWLRPJAA5o6Z6Yx4ej7Hgmz5bzsNbMvmm5kiUxHz2nk1ni'
      for (let i = 0; i < 3000; i++) {
        const { token } = await store.createInvite()
        assert.match(token, PASTE_SAFE_TOKEN)
        assert.match(token, INVITE_TOKEN)
        // the command the relay prints, and the one that changes the relay of a running node
        assert.equal(parse(['--relay', relay, '--invite', token], START_OPTIONS, 0).values.invite, token)
        assert.equal(parse([relay, '--invite', token], RELAY_OPTIONS, [0, 1]).values.invite, token)
      }
    } finally {
      await store.stop()
    }
    // what the old base64url tokens did one time in 64: the parser refuses it (so this test can fail)
    assert.throws(() => parse(['--invite', '-Zk3x9Qa1bC2dE3fG4hI5jK6'], START_OPTIONS, 0), UsageError)
  })

  it('--edit-minutes / --recall-minutes give the edit and recall windows; a bad value stops the start with a usage error', async () => {
    const windows = (...args: string[]): unknown => changeWindowsOption(parse(args, START_OPTIONS, 0).values)
    assert.deepEqual(windows('--edit-minutes', '15', '--recall-minutes', '2'), { editMs: 15 * 60_000, recallMs: 2 * 60_000 })
    assert.deepEqual(windows('--recall-minutes', '0'), { recallMs: 0 })
    assert.equal(windows(), undefined)
    for (const bad of ['-1', '1.5', 'ten', '525601']) assert.throws(() => windows('--edit-minutes', bad), UsageError, bad)
    // the real CLI: refused before anything starts (exit 2, the flag named)
    const dir = await tmpDir('parley-windows-')
    const r = await run(PARLEY_BIN, ['start', '--data', join(dir, 'w1'), '--no-mdns', '--api-port', '0', '--recall-minutes', 'soon'])
    await removeDir(dir)
    assert.equal(r.code, 2, r.err)
    assert.match(r.err, /--recall-minutes must be a whole number of minutes/)
  })

  it('the token printed by `parley-relay invite create` admits a node started with exactly the printed command', async () => {
    const dir = await tmpDir('parley-invite-')
    const relay = new RelayProc({ dataDir: join(dir, 'relay'), args: ['--listen', '/ip4/127.0.0.1/tcp/0'], logFile: join(dir, 'relay.log') })
    let node: NodeProc | undefined
    try {
      await relay.start(60_000)
      // the log file is written asynchronously: wait for the line
      const addr = await until(() => /listening: (\S+)/.exec(relay.logText())?.[1], 'the relay address in its output')
      const printed = await new Promise<{ token: string, hint: string }>((resolve, reject) => {
        execFile(process.execPath, [RELAY_BIN, 'invite', 'create', '--data', join(dir, 'relay')], (err, stdout, stderr) => { if (err !== null) reject(err); else resolve({ token: stdout.trim(), hint: stderr }) })
      })
      assert.match(printed.token, PASTE_SAFE_TOKEN)
      // the hint shows the command; the user pastes it with the relay's address
      const cmd = /the user runs: parley (start --relay <relay address> --invite \S+)/.exec(printed.hint)?.[1]
      assert.ok(cmd !== undefined, printed.hint)
      const args = cmd.replace('<relay address>', addr).split(' ').slice(1)
      node = new NodeProc({ dataDir: join(dir, 'user'), name: 'Newcomer', args: ['--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', ...args], logFile: join(dir, 'user.log') })
      await node.start(60_000)
      const me = await node.api!.call<{ peerId: string }>('GET', '/identity')
      await until(() => (JSON.parse(relay.admin('users', '--json')) as RelayUser[]).some(u => u.peerId === me.peerId), 'the node admitted at the relay', 60_000, 200)
    } finally {
      await node?.stop()
      await relay.stop()
      await removeDir(dir)
    }
  })
})
