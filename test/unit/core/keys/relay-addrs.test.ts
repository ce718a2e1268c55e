/**
 * relayAddrs (core/keys.ts): a relay setting names one instance, or several
 * of one relay cluster, comma- or space-separated; each must end in /p2p/.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { relayAddrs } from '../../../../core/keys.js'
import { ParleyError } from '../../../../core/errors.js'

const A = '/ip4/10.0.0.1/tcp/4100/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'
const B = '/dns4/r2.relay.example.com/tcp/443/wss/p2p/12D3KooWDi9tu2EqZR7mpRGnBRkrnoTYAu6un5SK1Y1hRRp8eGue'

describe('relayAddrs', () => {
  it('takes one address, or several separated by commas or spaces, in order', () => {
    assert.deepEqual(relayAddrs(A), [A])
    assert.deepEqual(relayAddrs(`${A},${B}`), [A, B])
    assert.deepEqual(relayAddrs(` ${B} , ${A}\n`), [B, A])
  })
  it('refuses any address that is not a multiaddr with /p2p/, naming it', () => {
    assert.throws(() => relayAddrs(`${A},/ip4/10.0.0.2/tcp/4100`), (err: unknown) =>
      err instanceof ParleyError && err.code === 'ERR_INVALID_ARGUMENT' && err.message.includes('/ip4/10.0.0.2/tcp/4100'))
    assert.throws(() => relayAddrs('relay.example.com'), (err: unknown) => err instanceof ParleyError && err.code === 'ERR_INVALID_ARGUMENT')
  })
})
