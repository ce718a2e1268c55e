/**
 * A hostile relay process for the federation namespace test (test/nat/federation-nat.test.ts): a real
 * relay (RelayServer) whose host speaks `/parley/fed/1.0.0` to a target relay by hand. It first calls as
 * an unpaired relay, then pairs with the target's token (a genuine pairing: the target's admin paired it)
 * and forwards forged and replayed batches. It prints one line `RESULT {json}` with what the target
 * answered (typed error codes, receipts), then stops.
 *
 * Run inside a namespace: node --import tsx --import ./core/polyfill.ts test/helpers/hostile-relay.ts '<json HostileInit>'
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'
import { RpcChannel, remoteCode } from '../../core/rpc/channel.js'
import { toParleyError } from '../../core/errors.js'
import { newMessageId, sealEnvelope } from '../../core/crypto/envelope.js'
import { signAccountOp } from '../../core/crypto/account.js'
import { dmConversationId, type Envelope } from '../../core/protocol/envelope.js'
import type { AccountRecord } from '../../core/protocol/account.js'
import { createIdentityBytes, loadIdentity, type DeviceIdentity } from '../../core/keys.js'
import { FED_METHODS, FED_PROTOCOL, parseFedReceipt, type FedMethod } from '../../relay/src/federation/protocol.js'
import type { FederationHost } from '../../relay/src/federation/federation.js'
import type { FedReceipt, FederationStore } from '../../relay/src/federation/types.js'

export interface HostileInit {
  /** the relay attacked: its peer ID and addresses */
  target: { peerId: string, addrs: string[] }
  /** a pairing token from the target (`parley-relay federation invite` there) */
  token: string
  /** a user of the target relay (the recipient of every forged item) */
  victim: string
  /** a user of a third relay (its relay's peer ID `otherRelay`): forged as the author */
  stranger: string
  otherRelay: string
}

export interface HostileResult {
  peerId: string
  unpaired: { forward: string, directory: string }
  malformed: string
  /**
   * forged origin, a user homed elsewhere, a user with no signed home, `to` not sealed for, a user homed at the
   * target itself (claimed as an instance of this relay at the pairing, with relay A): one batch
   */
  forged: FedReceipt
  /** a genuine item of its own user (homed here): stored once */
  genuine: FedReceipt
  /** the genuine batch again; a new envelope at the old seq; the forged batch again */
  replayed: FedReceipt[]
  /** xavier's mail with the stale prefix of his record (home: this relay) after the full one (moved to relay A) was shown */
  stale: FedReceipt
}

const init = JSON.parse(process.argv[2] ?? '{}') as HostileInit
const dir = mkdtempSync(join(tmpdir(), 'parley-hostile-'))
const log = createLogger('hostile', 'error')
const relay = new RelayServer({ dataDir: dir, listen: ['/ip4/0.0.0.0/tcp/4100'], federation: { allowed: true, name: 'office C', tickMs: 60_000 },
  admin: { port: null } }, log)

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try { await p; return 'ok' } catch (err) { return remoteCode(err) ?? toParleyError(err).code }
}
const user = async (): Promise<DeviceIdentity> => loadIdentity(await createIdentityBytes())
const letter = (from: DeviceIdentity, to: string, text: string): Envelope => sealEnvelope(from, {
  id: newMessageId(), conv: dmConversationId(from.peerId, to), seq: 1, hlc: { w: Date.now(), c: 0 }, recipients: [to], body: { text }
})
/** a one-device account's signed record naming `relay` as its home */
const homedAt = (u: DeviceIdentity, relayId: string): AccountRecord =>
  ({ v: 1, account: u.peerId, ops: [signAccountOp(u, 1, { type: 'home', home: [{ relay: relayId, addrs: [] }] })] })

try {
  await relay.start()
  const host = (relay as unknown as { host: FederationHost }).host
  const channel = async (): Promise<RpcChannel<FedMethod>> => new RpcChannel<FedMethod>(
    await host.openStream(init.target.peerId, init.target.addrs, FED_PROTOCOL, AbortSignal.timeout(15_000)), undefined, log, { methods: FED_METHODS })
  const [xavier, yvonne, wanda] = [await user(), await user(), await user()]
  const genuine = letter(wanda, init.victim, 'from a user of office C')
  const genuineBatch = { batch: '6-6', items: [{ seq: 6, to: [init.victim], envelope: genuine }], accounts: [homedAt(wanda, relay.peerId)] }

  // 1. not paired: refused, whatever it asks
  let ch = await channel()
  const unpaired = { forward: await codeOf(ch.call('forward', genuineBatch)), directory: await codeOf(ch.call('directory', {})) }
  await ch.close()

  // 2. paired for real (the target's admin made the token), then hostile; it names the target and relay A as
  // instances of its own (the target would then take their users' homes as ours)
  const store = relay.mailbox as unknown as FederationStore
  for (const peerId of [init.target.peerId, init.otherRelay]) await store.putInstance({ peerId, addrs: [`/ip4/10.9.9.9/tcp/4100/p2p/${peerId}`], seenAt: Date.now() })
  await relay.federation.add(init.token)
  ch = await channel()
  const malformed = await codeOf(ch.call('forward', { batch: '1-1', items: 'not a list' }))
  // forged origin: the stranger's name on our signature
  const forgedOrigin = { ...letter(xavier, init.victim, 'forged'), author: init.stranger }
  const strangerHome = { ...letter(xavier, init.victim, 'homed elsewhere') }
  const sealedForOther = letter(yvonne, (await user()).peerId, 'not for the victim')
  const zelda = await user()
  // xavier moved: his home was this relay (op 1), now it is the third relay (op 2)
  const moved = [signAccountOp(xavier, 1, { type: 'home', home: [{ relay: relay.peerId, addrs: [] }] }),
    signAccountOp(xavier, 2, { type: 'home', home: [{ relay: init.otherRelay, addrs: [] }] })]
  const forgedBatch = {
    batch: '1-5',
    items: [
      { seq: 1, to: [init.victim], envelope: forgedOrigin },
      { seq: 2, to: [init.victim], envelope: strangerHome },
      { seq: 3, to: [init.victim], envelope: letter(yvonne, init.victim, 'no signed home') },
      { seq: 4, to: [init.victim], envelope: sealedForOther },
      { seq: 5, to: [init.victim], envelope: letter(zelda, init.victim, 'homed at the target') }
    ],
    // xavier's record names the third relay as home (a route claim for a user it does not host), zelda's the target
    accounts: [{ v: 1 as const, account: xavier.peerId, ops: moved }, homedAt(zelda, init.target.peerId)]
  }
  const forged = parseFedReceipt(await ch.call('forward', forgedBatch))
  const stored = parseFedReceipt(await ch.call('forward', genuineBatch))
  const replayed = [
    parseFedReceipt(await ch.call('forward', genuineBatch)),
    parseFedReceipt(await ch.call('forward', { ...genuineBatch, items: [{ seq: 6, to: [init.victim], envelope: letter(wanda, init.victim, 'old seq') }] })),
    parseFedReceipt(await ch.call('forward', forgedBatch))
  ]
  const stale = parseFedReceipt(await ch.call('forward', { batch: '7-7', items: [{ seq: 7, to: [init.victim], envelope: letter(xavier, init.victim, 'stale prefix') }],
    accounts: [{ v: 1, account: xavier.peerId, ops: moved.slice(0, 1) }] }))
  await ch.close()
  const result: HostileResult = { peerId: relay.peerId, unpaired, malformed, forged, genuine: stored, replayed, stale }
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
} finally {
  await relay.stop().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
}
