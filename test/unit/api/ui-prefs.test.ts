import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { parseUiPrefs, loadUiPrefs, saveUiPrefs } from '../../../node/src/api/ui-prefs.js'
import { DEFAULT_UI_PREFS } from '../../../node/src/api/contract.js'
import { ParleyError } from '../../../core/errors.js'
import type { MessageStore } from '../../../node/src/store/types.js'

/** the two calls the preferences use, on a Map */
const metaStore = (): Pick<MessageStore, 'getMeta' | 'putMeta'> => {
  const m = new Map<string, unknown>()
  return { getMeta: async (k) => m.get(k), putMeta: async (k, v) => { m.set(k, v) } }
}

describe('UI preferences', () => {
  it('checks each field, keeps the others, and survives a damaged value', async () => {
    assert.deepEqual(parseUiPrefs({ locale: 'zh-CN', dnd: true }), { locale: 'zh-CN', dnd: true })
    for (const bad of [{ locale: 'fr' }, { theme: 'pink' }, { dnd: 'yes' }, null, [], 'x']) {
      assert.throws(() => parseUiPrefs(bad), (e: unknown) => e instanceof ParleyError && e.code === 'ERR_INVALID_ARGUMENT', JSON.stringify(bad))
    }
    const store = metaStore() as MessageStore
    assert.deepEqual(await loadUiPrefs(store), DEFAULT_UI_PREFS)
    await saveUiPrefs(store, { theme: 'dark' })
    assert.deepEqual(await saveUiPrefs(store, { locale: 'en' }), { locale: 'en', theme: 'dark', dnd: false })
    await store.putMeta('ui-prefs', { locale: 'klingon', theme: 7 })
    assert.deepEqual(await loadUiPrefs(store), DEFAULT_UI_PREFS)
  })
})
