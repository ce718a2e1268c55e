/** Message info's route line for federation (issue 12): through which office's relay, and a bounce in words, in both languages. */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { routeLine } from '../../../app/ui/src/views/dialogs/Info.js'
import { uiI18n } from '../../../app/ui/src/i18n/index.js'
import type { MessageView, RecipientView } from '../../../node/src/api/contract.js'

const BO = '12D3KooWBoBoBoBoBoBoBoBoBoBoBoBoBoBoBoBoBoBoBoBoBoBo'
const msg = (over: Partial<MessageView>): MessageView => ({
  id: 'm1', conv: 'dm:a:b', author: 'me', seq: 1, hlc: { w: 1, c: 0 }, text: 'hi', outgoing: true, state: 'sent', storedAt: 1, ...over
}) as MessageView
const row = (over: Partial<RecipientView>): RecipientView => ({ peer: BO, state: 'sent', office: 'Shanghai office', ...over })
const person = (p: string): string => p.slice(-4)

describe('message info: the route through another office', () => {
  for (const locale of ['en', 'zh-CN'] as const) {
    const { t } = uiI18n(locale)
    it(`${locale}: waiting at our relay for the other office, delivered via it, received from it, failed with the reason`, () => {
      const sent = routeLine(t, msg({}), [row({})], person)
      assert.equal(sent, t.routeOfficeSent('Shanghai office'))
      assert.ok(sent.includes('Shanghai office'))
      const delivered = routeLine(t, msg({ state: 'delivered' }), [row({ state: 'delivered', via: 'mailbox' })], person)
      assert.equal(delivered, `${t.routeDelivered(t.routeVia.mailbox)} ${t.routeOfficeVia('Shanghai office')}`)
      const received = routeLine(t, msg({ outgoing: false, state: 'received', via: 'mailbox', office: 'Beijing office' }), [], person)
      assert.ok(received.startsWith(t.routeReceived(t.routeVia.mailbox)) && received.endsWith(t.routeOffice('Beijing office')))
      const expired = routeLine(t, msg({ state: 'failed', error: 'ERR_FED_EXPIRED' }), [], person)
      assert.equal(expired, `${t.fedFailed} ${t.fedRefusal.ERR_FED_EXPIRED}`)
      const unknown = routeLine(t, msg({ state: 'failed', error: 'ERR_UNKNOWN_RECIPIENT' }), [row({ state: 'failed' })], person)
      assert.equal(unknown, `${t.fedFailed} ${t.fedRefusal.ERR_UNKNOWN_RECIPIENT}`)
      // queued at our relay because that office's relay cannot be reached (the API's `waiting`), on the message or a recipient row
      const since = Date.UTC(2026, 0, 2, 9, 30)
      const waiting = routeLine(t, msg({ waiting: { office: 'Shanghai office', since } }), [row({})], person)
      assert.equal(waiting, t.routeOfficeWaiting('Shanghai office', since))
      assert.ok(waiting.includes('Shanghai office') && waiting !== t.routeOfficeSent('Shanghai office'))
      assert.equal(routeLine(t, msg({}), [row({ waiting: { office: 'Shanghai office', since } })], person), waiting)
      // dropped by an unpairing, refused by the other relay: in words
      const unpaired = routeLine(t, msg({ state: 'failed', error: 'ERR_FED_NOT_PAIRED' }), [], person)
      assert.equal(unpaired, `${t.fedFailed} ${t.fedRefusalMore.ERR_FED_NOT_PAIRED}`)
      assert.equal(routeLine(t, msg({ state: 'failed', error: 'ERR_FED_NOT_HOME' }), [row({ state: 'failed' })], person),
        `${t.fedFailed} ${t.fedRefusalMore.ERR_FED_NOT_HOME}`)
      // the LAN case is unchanged
      assert.equal(routeLine(t, msg({ state: 'delivered' }), [row({ state: 'delivered', via: 'lan', office: undefined })], person), t.routeDelivered(t.routeVia.lan))
    })
  }
})
