/**
 * Mailbox deposits: messages that wait for unreachable peers go to the
 * relay's mailbox, one deposit per message for all its unreachable recipients
 * that the relay does not hold a copy for yet (the relay fans out). State
 * `sent`; they stay in the outboxes: each recipient's own ack, direct or
 * through a circuit, is what makes them `delivered`. A peer with nothing due,
 * or whose copies the relay refuses (no account, full mailbox), is looked at
 * again later, with backoff.
 */
import { compareHlc } from '../clock/hlc.js'
import { toParleyError } from '../../../core/errors.js'
import { remoteCode } from '../../../core/rpc/channel.js'
import { inWindows } from '../../../core/util/windows.js'
import { outboxPages } from '../store/pages.js'
import type { RelayClient } from './relay-client.js'
import type { DepositAnswer } from '../../../core/protocol/relay-rpc.js'
import type { MessageStore, StoredMessage } from '../store/types.js'
import type { Logger } from '../../../core/util/log.js'

/** a peer with nothing due is looked at again after this long; refusals back off from 10 s to DEPOSIT_MAX_BACKOFF_MS */
export const DEPOSIT_IDLE_MS = 5_000
export const DEPOSIT_MAX_BACKOFF_MS = 10 * 60 * 1000
const DEPOSIT_FIRST_BACKOFF_MS = 10_000

/** The relay's reason for keeping no copy, from a deposit answer that stored none. */
function answerReason (a: DepositAnswer): string {
  if (a.full.length === 0) return 'ERR_UNKNOWN_RECIPIENT'
  return (a.shareFull?.length ?? 0) === a.full.length ? 'ERR_SENDER_SHARE_FULL' : 'ERR_QUOTA_EXCEEDED'
}

class RefusalReasons {
  private readonly codes = new Map<string, string[]>()
  add (id: string, code: string): void { this.codes.set(code, [...(this.codes.get(code) ?? []), id]) }
  byCode (): IterableIterator<[string, string[]]> { return this.codes.entries() }
}

export interface DepositsInit {
  /** a message waits this long for an unreachable peer before it is deposited */
  depositAfterMs: number
  /** deposits in flight at a time */
  sendWindow: number
}

/** What deposits need of the relay client. */
export type DepositRelay = Pick<RelayClient, 'canDeposit' | 'deposit'>

export class Deposits {
  private current?: Promise<void>
  private readonly peers = new Map<string, { nextAt: number, backoffMs: number }>()

  constructor (
    private readonly c: { store: MessageStore, relay?: DepositRelay, log: Logger, changed: (m: StoredMessage) => void },
    private readonly init: DepositsInit
  ) {}

  /** A new message for `peer`: worth a pass soon, unless the relay keeps refusing this peer's copies. */
  poke (peer: string): void {
    const p = this.peers.get(peer)
    if (p !== undefined && p.backoffMs === 0) p.nextAt = 0
  }

  /** A pass now for peers that cannot be reached directly anyway (another office's): their new messages are due at once. */
  now (peers: string[]): void {
    for (const p of peers) { this.poke(p); this.soon.add(p) }
    if (this.current === undefined) this.runSoon()
  }

  /** peers asked for by `now` while a pass ran: the next pass follows it at once */
  private readonly soon = new Set<string>()
  private runSoon (): void {
    const peers = [...this.soon]
    this.soon.clear()
    void this.run(peers, Date.now() + this.init.depositAfterMs)
  }

  /** `peer` is reachable again: when it goes away next time, start afresh. */
  reset (peer: string): void {
    this.peers.delete(peer)
  }

  /** Starts a pass for these unreachable peers unless one is running; settles when it is over (never rejects). */
  async run (peers: string[], now: number): Promise<void> {
    if (this.current !== undefined || peers.length === 0) return
    try { await this.passOnce(peers, now, this.init.depositAfterMs) } finally {
      if (this.soon.size > 0) this.runSoon()
    }
  }

  /**
   * Before we stop: what is queued for these peers goes to the relay now, without the usual wait
   * (a message sent just before the app is closed would otherwise wait for our return). Peers whose
   * copies the relay refused recently stay in their backoff. Settles when done (never rejects).
   */
  async flush (peers: string[], now: number): Promise<void> {
    while (this.current !== undefined) await this.current
    if (peers.length === 0) return
    for (const peer of peers) {
      const p = this.peers.get(peer)
      if (p !== undefined && p.backoffMs === 0) p.nextAt = 0
    }
    await this.passOnce(peers, now, 0)
  }

  private async passOnce (peers: string[], now: number, waitMs: number): Promise<void> {
    this.current = this.pass(peers, now, waitMs).finally(() => { this.current = undefined })
    await this.current
  }

  private async pass (peers: string[], now: number, waitMs: number): Promise<void> {
    const relay = this.c.relay
    if (relay?.canDeposit !== true) return
    const looked: string[] = []
    const refused = new Set<string>()
    try {
      const due = new Map<string, { msg: StoredMessage, to: string[] }>()
      // per peer: when its earliest message that is not due yet becomes due
      const nextDue = new Map<string, number>()
      for (const peer of peers) {
        if (now < (this.peers.get(peer)?.nextAt ?? 0)) continue
        looked.push(peer)
        // page through the whole outbox: earlier pages may hold only messages already at the relay
        for await (const page of outboxPages(this.c.store, peer, 1000)) {
          const held = await this.c.store.depositedFor(peer, page)
          for (const m of page) {
            if (held.has(m.id)) continue
            if (now - m.storedAt < waitMs) {
              nextDue.set(peer, Math.min(nextDue.get(peer) ?? Infinity, m.storedAt + waitMs))
              continue
            }
            const d = due.get(m.id) ?? { msg: m, to: [] }
            d.to.push(peer)
            due.set(m.id, d)
          }
        }
      }
      const list = [...due.values()].sort((a, b) => compareHlc(a.msg.hlc, b.msg.hlc))
      const kept = new Map<string, string[]>()
      // messages that got no copy at all, by the relay's reason: the sender sees it on the queued message
      const reasons = new RefusalReasons()
      await inWindows(list, this.init.sendWindow, async ({ msg, to }) => {
        try {
          const answer = await relay.deposit(to, msg.envelope)
          // recipients without an account or with a full mailbox got no copy: deposited again later, with backoff
          const none = new Set([...answer.unknown, ...answer.full])
          for (const p of none) refused.add(p)
          const holders = to.filter(p => !none.has(p))
          if (holders.length === 0) { reasons.add(msg.id, answerReason(answer)); return null }
          kept.set(msg.id, holders)
          return msg.id
        } catch (err) {
          const code = remoteCode(err)
          if (code === 'ERR_UNKNOWN_RECIPIENT' || code === 'ERR_QUOTA_EXCEEDED' || code === 'ERR_SENDER_SHARE_FULL') {
            this.c.log.info('relay keeps no copy', { id: msg.id, code })
            for (const p of to) refused.add(p)
            reasons.add(msg.id, code)
            return null
          }
          throw err
        }
      }, async (ids) => {
        // with the deposited copy's number: a message that moved meanwhile is deposited again
        const seqOf = new Map(list.map(d => [d.msg.id, d.msg.seq]))
        for (const m of await this.c.store.markSent(ids.map(id => ({ id, peers: kept.get(id) ?? [], seq: seqOf.get(id) })))) this.c.changed(m)
      })
      for (const [code, ids] of reasons.byCode()) for (const m of await this.c.store.noteRelayRefusal(ids, code)) this.c.changed(m)
      for (const peer of looked) {
        const p = this.peers.get(peer) ?? { nextAt: 0, backoffMs: 0 }
        if (refused.has(peer)) {
          p.backoffMs = Math.min(Math.max(p.backoffMs * 2, DEPOSIT_FIRST_BACKOFF_MS), DEPOSIT_MAX_BACKOFF_MS)
          p.nextAt = now + p.backoffMs
        } else {
          p.backoffMs = 0
          // something was due: look again at once; else when the next message becomes due, or after a while
          p.nextAt = list.some(d => d.to.includes(peer)) ? 0 : Math.min(nextDue.get(peer) ?? Infinity, now + DEPOSIT_IDLE_MS)
        }
        this.peers.set(peer, p)
      }
    } catch (err) {
      this.c.log.info('mailbox deposit paused', { err: toParleyError(err).message })
    }
  }
}
