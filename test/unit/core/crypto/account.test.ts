import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { accountOpValid, signDeviceConsent, deviceStatus, foldAccount, signAccountOp, verifyAccountRecord } from '../../../../core/crypto/account.js'
import { formatLinkCode, mergeOps, parseAccountRecord, parseLinkCode, type AccountOp } from '../../../../core/protocol/account.js'
import { ParleyError } from '../../../../core/errors.js'
import { b64, unb64 } from '../../../../core/protocol/validate.js'
import { newIdentities } from '../../helpers/identities.js'
import type { DeviceIdentity } from '../../../../core/keys.js'

describe('account records', () => {
  let ana: DeviceIdentity, laptop: DeviceIdentity, phone: DeviceIdentity, mallory: DeviceIdentity
  before(async () => { [ana, laptop, phone, mallory] = await newIdentities(4) as [DeviceIdentity, DeviceIdentity, DeviceIdentity, DeviceIdentity] })

  it('a one-device account is its own key, with no op', () => {
    const s = foldAccount(ana.peerId, [])
    assert.deepEqual(s.devices, [ana.peerId])
    assert.equal(s.version, 0)
    assert.equal(deviceStatus(s, ana.peerId), 'current')
    assert.equal(deviceStatus(s, laptop.peerId), 'unknown')
  })

  it('add, revoke and home fold the same in any arrival order', () => {
    const ops = [
      signAccountOp(ana, 1, { type: 'add', device: laptop.peerId, label: 'laptop', dsig: signDeviceConsent(laptop, ana.peerId) }),
      signAccountOp(ana, 2, { type: 'add', device: phone.peerId, dsig: signDeviceConsent(phone, ana.peerId) }),
      signAccountOp(ana, 3, { type: 'home', home: [{ relay: mallory.peerId, addrs: [`/ip4/10.0.0.1/tcp/4001/p2p/${mallory.peerId}`] }] }),
      signAccountOp(ana, 4, { type: 'revoke', device: laptop.peerId })
    ]
    const expected = foldAccount(ana.peerId, ops)
    assert.deepEqual(expected.devices, [ana.peerId, phone.peerId])
    assert.deepEqual(expected.revoked, [laptop.peerId])
    assert.equal(expected.version, 4)
    assert.equal(expected.home[0]?.relay, mallory.peerId)
    assert.equal(expected.labels[laptop.peerId], 'laptop')
    for (const order of [[3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]]) {
      assert.deepEqual(foldAccount(ana.peerId, order.map(i => ops[i] as AccountOp)), expected)
    }
    // merging two partial views gives the whole record once
    assert.deepEqual(foldAccount(ana.peerId, mergeOps(ops.slice(0, 2), ops.slice(1))), expected)
    assert.equal(mergeOps(ops, ops).length, 4)
  })

  it('two ops with the same number (a data dir restored from a backup) fold the same in any order, by signature (review s4 m11)', () => {
    const a = signAccountOp(ana, 1, { type: 'add', device: laptop.peerId, dsig: signDeviceConsent(laptop, ana.peerId) })
    const b = signAccountOp(ana, 1, { type: 'home', home: [] })
    const c = signAccountOp(ana, 1, { type: 'add', device: phone.peerId, dsig: signDeviceConsent(phone, ana.peerId) })
    const expected = foldAccount(ana.peerId, [a, b, c])
    assert.equal(expected.version, 1)
    assert.deepEqual([...expected.devices].sort(), [ana.peerId, laptop.peerId, phone.peerId].sort())
    for (const order of [[c, b, a], [b, a, c], [a, c, b]]) assert.deepEqual(foldAccount(ana.peerId, order), expected)
    assert.deepEqual(mergeOps([c], [a, b]), mergeOps([b, a], [c]))
  })

  it('a revoked device stays revoked, even if added again later', () => {
    const ops = [
      signAccountOp(ana, 1, { type: 'add', device: laptop.peerId, dsig: signDeviceConsent(laptop, ana.peerId) }),
      signAccountOp(ana, 2, { type: 'revoke', device: laptop.peerId }),
      signAccountOp(ana, 3, { type: 'add', device: laptop.peerId, dsig: signDeviceConsent(laptop, ana.peerId) })
    ]
    const s = foldAccount(ana.peerId, ops)
    assert.equal(deviceStatus(s, laptop.peerId), 'revoked')
    // the account key's own device cannot be revoked (it holds the key)
    const self = foldAccount(ana.peerId, [signAccountOp(ana, 1, { type: 'revoke', device: ana.peerId })])
    assert.equal(deviceStatus(self, ana.peerId), 'current')
    // nor can an account revoke a device that is not its own
    const other = foldAccount(mallory.peerId, [signAccountOp(mallory, 1, { type: 'revoke', device: laptop.peerId })])
    assert.deepEqual(other.revoked, [])
  })

  it('a forged device certificate is no part of the account', () => {
    // mallory signs an add op in ana's name
    const forged: AccountOp = { ...signAccountOp(mallory, 1, { type: 'add', device: mallory.peerId, dsig: signDeviceConsent(mallory, ana.peerId) }), account: ana.peerId }
    assert.equal(accountOpValid(forged), false)
    const s = foldAccount(ana.peerId, [forged])
    assert.equal(deviceStatus(s, mallory.peerId), 'unknown')
    assert.throws(() => { verifyAccountRecord({ v: 1, account: ana.peerId, ops: [forged] }) }, (e: unknown) => e instanceof ParleyError && e.code === 'ERR_BAD_SIGNATURE')
    // a real op with one changed field (the device) does not verify either
    const real = signAccountOp(ana, 1, { type: 'add', device: laptop.peerId, dsig: signDeviceConsent(laptop, ana.peerId) })
    assert.equal(accountOpValid({ ...real, device: mallory.peerId }), false)
    const sig = unb64(real.sig); sig[5] = (sig[5] as number) ^ 1
    assert.equal(accountOpValid({ ...real, sig: b64(sig) }), false)
    assert.equal(accountOpValid(real), true)
    // an account cannot claim someone else's device: without the device's own consent the add is void
    const claim = signAccountOp(mallory, 1, { type: 'add', device: laptop.peerId, dsig: signDeviceConsent(laptop, ana.peerId) })
    assert.equal(accountOpValid(claim), false)
    assert.equal(deviceStatus(foldAccount(mallory.peerId, [claim]), laptop.peerId), 'unknown')
  })

  it('parses records from the wire and refuses ops of another account', () => {
    const op = signAccountOp(ana, 1, { type: 'add', device: laptop.peerId, dsig: signDeviceConsent(laptop, ana.peerId) })
    const r = parseAccountRecord(JSON.parse(JSON.stringify({ v: 1, account: ana.peerId, ops: [op], extra: 1 })))
    assert.deepEqual(r.ops, [op])
    const other = signAccountOp(mallory, 1, { type: 'add', device: laptop.peerId, dsig: signDeviceConsent(laptop, ana.peerId) })
    assert.throws(() => parseAccountRecord({ v: 1, account: ana.peerId, ops: [other] }), /another account/)
    assert.throws(() => parseAccountRecord({ v: 1, account: ana.peerId, ops: [{ ...op, type: 'grant' }] }))
  })

  it('link codes: the account device and a one-time secret', () => {
    const code = formatLinkCode({ device: ana.peerId, secret: 'abcdefghijklmnopqrstuvwxyz' })
    assert.deepEqual(parseLinkCode(` ${code.replace(/-(.*)$/, (_m, s: string) => '-' + s.toUpperCase())} `), { device: ana.peerId, secret: 'abcdefghijklmnopqrstuvwxyz' })
    assert.equal(parseLinkCode('12D3KooWnope-abc'), null)
    assert.equal(parseLinkCode(ana.peerId), null)
  })
})
