/**
 * The receive pipeline, the same for a direct delivery, a sync and the relay's
 * mailbox: check the addressing (group envelopes one at a time, each judged
 * after every op received before it is folded in), dedupe by id, verify and
 * decrypt in arrival order, then store durably; the ack waits for that write.
 */
import { ParleyError, toParleyError } from '../../../core/errors.js'
import { openEnvelope } from '../../../core/crypto/envelope.js'
import { recordNames } from '../../../core/protocol/account.js'
import { bodyFields, conversationMembers, isGroupConv, parseEnvelope, type Body, type Envelope, type GroupOp } from '../../../core/protocol/envelope.js'
import type { DeliverResult } from '../../../core/protocol/peer-rpc.js'
import { AckAfterWrite, answered } from '../../../core/rpc/channel.js'
import type { Route, StoredMessage } from '../store/types.js'
import type { GroupService } from './group-service.js'
import { groupVerdict } from './groups.js'
import type { AcceptMail } from './relay-client.js'
import type { MessagingComponents, PeerRpcHandlers } from './types.js'

export interface ReceiveComponents extends Pick<MessagingComponents, 'store' | 'identity' | 'clock' | 'events'>,
  Partial<Pick<MessagingComponents, 'host' | 'accounts'>> {
  groups: GroupService
}

export class ReceivePipeline {
  /** Settles when the group envelope received last has been judged and, if an op, folded in. */
  private groupTurn: Promise<void> = Promise.resolve()
  /** per author (1:1 envelopes): the turn of its last message received */
  private readonly authorTurns = new Map<string, Promise<void>>()

  readonly handlers: Pick<PeerRpcHandlers, 'deliver'> = {
    deliver: async (remote, body) => await this.receive(remote, parseEnvelope(body), this.c.host?.reach(remote) === 'relay' ? 'circuit' : 'lan')
  }

  constructor (private readonly c: ReceiveComponents) {}

  /**
   * An envelope from the relay's mailbox: same checks as a direct delivery.
   * Resolves once checked; `durable` settles after the write.
   */
  readonly acceptMail: AcceptMail = async (envelope, from, office) => {
    const durable = answered(await this.receive(from, envelope, 'mailbox', office)).then(v => v.status)
    durable.catch(() => {})
    return { durable }
  }

  /**
   * Verifies and decrypts now, in arrival order; the answer's `durable`
   * settles once the message is stored, so the ack never precedes the write.
   * A duplicate has nothing to write: answered with the plain value, which
   * the channel sends before it handles the next request (after the first
   * copy's write when that is still under way).
   */
  async receive (remote: string, env: Envelope, via?: Route, office?: string): Promise<DeliverResult | AckAfterWrite<DeliverResult>> {
    // group envelopes, from every channel and the mailbox, are judged one at a time, each after every
    // group op received before it is stored and folded in: the turn is taken before anything is awaited
    let release: (() => void) | undefined
    if (isGroupConv(env.conv)) {
      const previous = this.groupTurn
      this.groupTurn = new Promise<void>(resolve => { release = resolve })
      await previous
    } else {
      // one author's messages are written in the order they came (the mailbox hands a batch over without
      // waiting for each): else a message whose checks took longer (its account record) is stored after later ones
      const previous = this.authorTurns.get(env.author)
      const turn = new Promise<void>(resolve => { release = resolve })
      this.authorTurns.set(env.author, turn)
      void turn.then(() => { if (this.authorTurns.get(env.author) === turn) this.authorTurns.delete(env.author) })
      if (previous !== undefined) await previous
    }
    try {
      // the author's certificate chain: its account's ops, each signed by the account key (a forged one is refused)
      // taken only when it is the author's own account: a record about someone else is no certificate of the
      // author, and storing it would let any peer fill our store with throw-away accounts (review s4 M4)
      if (env.acct !== undefined && this.c.accounts !== undefined) {
        if (!recordNames(env.acct, env.author)) throw new ParleyError('ERR_INVALID_ENVELOPE', 'the account record beside the envelope is not the author\'s')
        try {
          await this.c.accounts.accept(env.acct)
        } catch (err) {
          throw new ParleyError('ERR_INVALID_ENVELOPE', `the author's account record does not verify: ${toParleyError(err).message}`)
        }
      }
      const groupCheck = this.checkAddressing(remote, env)
      const same = await this.c.store.getMessage(env.id)
      // the same id at a higher number is its author's move (verified below; the store takes it only if it is
      // the same message: time, kind and body, compared inside its write); at a lower one, an older copy of a
      // message that moved since: held here already
      const moving = same !== undefined && same.author === env.author && same.conv === env.conv && env.seq > same.seq
      if (same !== undefined && !moving) {
        if (same.author === env.author && same.conv === env.conv) {
          // a copy still being written (two routes brought it at once) is acknowledged only once it is on disk:
          // if that write fails, so does this answer, and the sender keeps the message and tries again
          const pending = this.c.store.pendingWrite(env.id)
          return pending === undefined ? { status: 'duplicate' } : new AckAfterWrite(pending.then(() => ({ status: 'duplicate' as const })))
        }
        throw new ParleyError('ERR_ID_CONFLICT', 'another message already has this id here')
      }
      const body = openEnvelope(this.c.identity, env)
      groupCheck?.(body)
      this.c.clock.observe(env.hlc)
      const stored = this.store(env, body, via === undefined ? {} : { via, ...(remote !== env.author ? { viaPeer: remote } : {}),
        ...(office !== undefined ? { office } : {}) })
      // an op keeps the turn until it is folded in (or failed); text gives it up now
      if (body.op !== undefined && release !== undefined) {
        const done = release
        release = undefined
        void stored.then(done, done)
      }
      return new AckAfterWrite(stored)
    } finally {
      release?.()
    }
  }

  /**
   * Throws what can be judged before decrypting; returns the check of a
   * group op, which needs the decrypted body.
   */
  private checkAddressing (remote: string, env: Envelope): ((body: Body) => void) | undefined {
    const groups = this.c.groups
    // members are accounts; a device counts for its account only through a valid certificate chain, and a
    // device its account revoked counts for nobody
    const author = groups.accountOf(env.author)
    if (author === null) throw new ParleyError('ERR_NOT_A_MEMBER', 'the author device was removed from its account')
    if (!isGroupConv(env.conv)) {
      const members = conversationMembers(env.conv)
      const me = this.c.accounts?.account ?? this.c.identity.peerId
      if (!members.includes(me)) throw new ParleyError('ERR_NOT_A_RECIPIENT', 'not a member of this conversation')
      if (!members.includes(author)) throw new ParleyError('ERR_INVALID_ENVELOPE', 'author is not a member of the conversation (nor a current device of one)')
      const sender = groups.accountOf(remote)
      if (sender === null || !members.includes(sender)) throw new ParleyError('ERR_INVALID_ENVELOPE', 'sender is not a member of the conversation')
      return undefined
    }
    // any member may forward (sync); the author's signature is what counts. Membership is judged at the
    // message's HLC against the folded ops, so the verdict does not depend on arrival order.
    const g = this.c.groups.get(env.conv)
    // an op still on its way (the group's start, an add, a re-add) may change the verdict: "not yet"
    // (ERR_UNKNOWN_GROUP, retried); refused for good only when no later op can help
    const verdict = (op?: GroupOp): void => {
      const v = groupVerdict(g, author, env.hlc, op)
      if (v === 'later') {
        throw new ParleyError('ERR_UNKNOWN_GROUP', 'this device does not know the group, or the author as a member at that time, yet')
      }
      if (v === 'never') {
        const why = op === undefined ? 'the author was not a member of the group at that time' : 'the author may not change this group'
        throw new ParleyError('ERR_NOT_A_MEMBER', why)
      }
    }
    if (env.kind === 'text') { verdict(); return undefined }
    return (body) => {
      if (body.op === undefined) throw new ParleyError('ERR_INVALID_ENVELOPE', 'a groupOp envelope without an op')
      verdict(body.op)
    }
  }

  /** Starts the durable write; settles with the answer once it is on disk. */
  private async store (env: Envelope, body: Body, route: Pick<StoredMessage, 'via' | 'viaPeer' | 'office'>): Promise<DeliverResult> {
    // ours: written on this device (given back after damage) or on another device of our account
    const outgoing = env.author === this.c.identity.peerId || (this.c.accounts !== undefined && this.c.groups.accountOf(env.author) === this.c.accounts.account)
    const msg: StoredMessage = {
      id: env.id,
      conv: env.conv,
      author: env.author,
      seq: env.seq,
      hlc: env.hlc,
      text: body.text,
      ...bodyFields(body),
      ...(outgoing ? {} : route),
      outgoing,
      state: outgoing ? 'delivered' : 'received',
      storedAt: Date.now(),
      envelope: env
    }
    // our own message given back into a number a move freed goes to its recipients again: not to this device,
    // nor to a revoked device of ours
    const self = this.c.identity.peerId
    const status = await this.c.store.storeIncoming(msg, { self, sendable: (d) => d !== self && this.c.groups.accountOf(d) !== null })
    if (status === 'conflict') {
      throw new ParleyError('ERR_SEQ_CONFLICT', `another message of this author already has sequence number ${msg.seq} here`)
    }
    if (status === 'id-conflict') throw new ParleyError('ERR_ID_CONFLICT', 'another message already has this id here')
    if (status === 'stored') { this.c.groups.applyOp(msg); this.c.events.emit('messageStored', msg) }
    // moved: the same message under its new number (nothing new to show)
    return { status: status === 'moved' ? 'stored' : status }
  }
}
