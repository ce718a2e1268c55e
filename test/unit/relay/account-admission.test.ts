/**
 * Relay admission per account (issue 11, review s4 B1): the relay judges by the account ops it keeps
 * itself, so a revoked device reconnecting with its old record stays out, and an admin's removal of a
 * person is not undone by the account's other device.
 */
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryLevel } from 'memory-level'
import { MailboxService } from '../../../relay/src/mailbox/service.js'
import { RelayMetrics } from '../../../relay/src/admin/metrics.js'
import { LevelMailboxStore } from '../../../relay/src/store/level-mailbox-store.js'
import { signAccountOp, signDeviceConsent } from '../../../core/crypto/account.js'
import type { AccountOp, AccountRecord } from '../../../core/protocol/account.js'
import { silentLogger } from '../../../core/util/log.js'
import type { DeviceIdentity } from '../../../core/keys.js'
import { newIdentities } from '../helpers/identities.js'
import * as acctAdm from '../../../relay/src/store/account-admission.js'

describe('relay admission per account', () => {
  let desktop: DeviceIdentity, laptop: DeviceIdentity, phone: DeviceIdentity, mallory: DeviceIdentity
  let store: LevelMailboxStore
  let service: MailboxService
  let disconnected: string[]
  let add: AccountOp, revoke: AccountOp
  const record = (...ops: AccountOp[]): AccountRecord => ({ v: 1, account: desktop.peerId, ops })
  const status = async (who: DeviceIdentity, rec?: AccountRecord): Promise<boolean> =>
    (await service.handlers.relayStatus(who.peerId, rec === undefined ? {} : { account: rec })).admitted

  beforeEach(async () => {
    [desktop, laptop, phone, mallory] = await newIdentities(4) as [DeviceIdentity, DeviceIdentity, DeviceIdentity, DeviceIdentity]
    store = new LevelMailboxStore(new MemoryLevel(), { ttlMs: 60_000, quotaMessages: 100, quotaBytes: 1 << 20 })
    await store.start()
    disconnected = []
    service = new MailboxService({ store, log: silentLogger, disconnect: async (p) => { disconnected.push(p) }, metrics: new RelayMetrics() }, { sweepIntervalMs: 60_000 })
    add = signAccountOp(desktop, 1, { type: 'add', device: laptop.peerId, label: 'laptop', dsig: signDeviceConsent(laptop, desktop.peerId) })
    revoke = signAccountOp(desktop, 2, { type: 'revoke', device: laptop.peerId })
    await store.admit(desktop.peerId, 'invite', 'T1')
  })
  afterEach(async () => { service.stop(); await store.stop() })

  it('admits a current device of an admitted account, and nobody else with it', async () => {
    assert.equal(await status(laptop, record(add)), true)
    assert.equal((await store.listUsers()).find(u => u.peerId === laptop.peerId)?.via, 'account')
    // a device the record does not list, and a record whose ops are not the account key's, admit no one
    assert.equal(await status(phone, record(add)), false)
    const forged = signAccountOp(mallory, 3, { type: 'add', device: phone.peerId, dsig: signDeviceConsent(phone, desktop.peerId) })
    assert.equal(await status(phone, record(add, { ...forged, account: desktop.peerId })), false)
  })

  it('a revoked laptop reconnecting with its old record stays out (the relay folds the ops it kept)', async () => {
    assert.equal(await status(laptop, record(add)), true)
    // the desktop reports the revoke while the laptop is away
    assert.equal(await status(desktop, record(add, revoke)), true)
    assert.equal(store.isAdmitted(laptop.peerId), false)
    assert.ok(disconnected.includes(laptop.peerId))
    // the laptop comes back with the record it had: still out, and after a restart of the relay too
    assert.equal(await status(laptop, record(add)), false)
    assert.equal(await status(laptop), false)
    assert.equal(await acctAdm.denied(store, laptop.peerId), 'revoked')
  })

  it('an admin removing a person removes every device of the account; the other device cannot undo it', async () => {
    assert.equal(await status(laptop, record(add)), true)
    assert.equal(await service.removeUser(desktop.peerId), true)
    assert.equal(store.isAdmitted(desktop.peerId), false)
    assert.equal(store.isAdmitted(laptop.peerId), false)
    assert.deepEqual(disconnected.sort(), [desktop.peerId, laptop.peerId].sort())
    // both report their record again: neither is let back in by the account
    assert.equal(await status(laptop, record(add)), false)
    assert.equal(await status(desktop, record(add)), false)
    // a new invite for the desktop lifts the removal of the person (never a revocation)
    const invite = await store.createInvite()
    await service.handlers.redeem(desktop.peerId, { token: invite.token })
    assert.equal(await status(laptop, record(add)), true)
  })

  it('a stranger calling relayStatus with throw-away accounts stores nothing', async () => {
    const own = signAccountOp(mallory, 1, { type: 'add', device: phone.peerId, dsig: signDeviceConsent(phone, mallory.peerId) })
    assert.equal(await status(mallory, { v: 1, account: mallory.peerId, ops: [own] }), false)
    assert.deepEqual(await acctAdm.getAccountOps(store, mallory.peerId), [])
    assert.equal(await status(mallory, record(add)), false)
    assert.deepEqual(await acctAdm.getAccountOps(store, desktop.peerId), [])
  })

  it('a fresh key listing an admitted device admits no one, and the removal of that person holds (review s4-11b N1)', async () => {
    // mallory (admitted by invite) mints account keys whose add op lists her own device with her own consent
    await store.admit(mallory.peerId, 'invite', 'T2')
    for (const k of [laptop, phone]) {
      const op = signAccountOp(k, 1, { type: 'add', device: mallory.peerId, dsig: signDeviceConsent(mallory, k.peerId) })
      const rec = { v: 1 as const, account: k.peerId, ops: [op] }
      assert.equal(await status(mallory, rec), true)
      assert.equal(await status(k, rec), false)
      assert.deepEqual(await acctAdm.getAccountOps(store, k.peerId), [])
    }
    assert.equal(await service.removeUser(mallory.peerId), true)
    for (const who of [mallory, laptop, phone]) assert.equal(store.isAdmitted(who.peerId), false)
  })

  it('a device belongs to one account at the relay: a second account listing it is refused, in words', async () => {
    assert.equal(await status(laptop, record(add)), true)
    // phone (admitted by invite) is an account key of its own and lists the laptop, which consents
    await store.admit(phone.peerId, 'invite', 'T3')
    const steal = signAccountOp(phone, 1, { type: 'add', device: laptop.peerId, dsig: signDeviceConsent(laptop, phone.peerId) })
    const addMallory = signAccountOp(phone, 2, { type: 'add', device: mallory.peerId, dsig: signDeviceConsent(mallory, phone.peerId) })
    const theirs = { v: 1 as const, account: phone.peerId, ops: [steal, addMallory] }
    const r = await service.handlers.relayStatus(laptop.peerId, { account: theirs })
    assert.equal(r.admitted, true) // still admitted, by its first account
    assert.equal(await acctAdm.accountOfDevice(store, laptop.peerId), desktop.peerId)
    // mallory joins the phone's account; the desktop's account cannot take her afterwards
    assert.equal(await status(mallory, theirs), true)
    const takeMallory = signAccountOp(desktop, 3, { type: 'add', device: mallory.peerId, dsig: signDeviceConsent(mallory, desktop.peerId) })
    await store.removeUser(mallory.peerId)
    const refused = await service.handlers.relayStatus(mallory.peerId, { account: record(add, takeMallory) })
    assert.equal(refused.admitted, false)
    assert.match(refused.refused ?? '', /belongs to another account/)
    // an account whose key device is already a device of another account is refused as a whole
    const nested = signAccountOp(laptop, 1, { type: 'add', device: mallory.peerId, dsig: signDeviceConsent(mallory, laptop.peerId) })
    const viaLaptop = await service.handlers.relayStatus(mallory.peerId, { account: { v: 1, account: laptop.peerId, ops: [nested] } })
    assert.equal(viaLaptop.admitted, false)
    assert.match(viaLaptop.refused ?? '', /first device belongs to another account/)
    assert.deepEqual(await acctAdm.getAccountOps(store, laptop.peerId), [])
  })

  it('removing a person through any device removes every account and device linked to it', async () => {
    assert.equal(await status(laptop, record(add)), true)
    // a chain kept from before one device, one account: the laptop is also the key of an account listing the phone
    const chained = signAccountOp(laptop, 1, { type: 'add', device: phone.peerId, dsig: signDeviceConsent(phone, laptop.peerId) })
    await store.putMeta(`acct:${laptop.peerId}`, [chained])
    await store.putMeta(`acctOf:${phone.peerId}`, laptop.peerId)
    await store.admit(phone.peerId, 'account', 'old')
    // the admin removes the person by the laptop (not the account key's device)
    assert.equal(await service.removeUser(laptop.peerId), true)
    for (const who of [desktop, laptop, phone]) assert.equal(store.isAdmitted(who.peerId), false)
    assert.deepEqual(disconnected.sort(), [desktop.peerId, laptop.peerId, phone.peerId].sort())
    assert.equal(await status(phone, { v: 1, account: laptop.peerId, ops: [chained] }), false)
  })

  it('a device with a one-device account of its own (its invite, its home) is still linked into another account', async () => {
    await store.admit(laptop.peerId, 'invite', 'T4')
    const home = signAccountOp(laptop, 1, { type: 'home', home: [] })
    assert.equal(await status(laptop, { v: 1, account: laptop.peerId, ops: [home] }), true)
    assert.equal(await acctAdm.accountOfDevice(store, laptop.peerId), laptop.peerId)
    // linked: the desktop's account now holds it, and its revocation drops the admission it had by invite
    assert.equal(await status(laptop, record(add)), true)
    assert.equal(await acctAdm.accountOfDevice(store, laptop.peerId), desktop.peerId)
    assert.equal(await status(desktop, record(add, revoke)), true)
    assert.equal(store.isAdmitted(laptop.peerId), false)
  })
})
