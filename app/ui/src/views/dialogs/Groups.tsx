/** New group, group members (add, remove, rename, leave: removing and leaving ask first), and the confirmation. */
import { useState } from 'preact/hooks'
import type { GroupView } from '../../../../../node/src/api/contract.js'
import { ApiError } from '../../api.js'
import { useI18n } from '../../i18n/index.js'
import { isMe, type Store } from '../../store.js'
import { Avatar } from '../Avatar.js'
import { Confirm, Dialog, ErrorLine, NameOver } from '../Dialog.js'
import { errorText, words } from '../words.js'

const asApiError = (err: unknown): ApiError => err instanceof ApiError ? err : new ApiError('ERR_INTERNAL', String(err))

export function NewGroup ({ store, onClose, onCreated }: { store: Store, onClose: () => void, onCreated: (id: string) => void }) {
  const { t } = useI18n()
  const s = store.state
  const w = words(t, s)
  const [name, setName] = useState('')
  const [picked, setPicked] = useState<Set<string>>(new Set())
  const [error, setError] = useState<string | null>(null)
  const create = async (e: Event): Promise<void> => {
    e.preventDefault()
    if (picked.size === 0) { setError(t.error.groupMembers); return }
    try {
      const g = await store.api.createGroup(name.trim(), [...picked])
      store.putGroup(g)
      onCreated(g.id)
    } catch (err) { setError(errorText(t, asApiError(err), 'groupName')) }
  }
  const toggle = (p: string, on: boolean): void => { const next = new Set(picked); if (on) next.add(p); else next.delete(p); setPicked(next) }
  return (
    <Dialog id="group-new" label={t.newGroup} onClose={onClose}>
      <form id="group-new-form" onSubmit={(e) => { void create(e) }}>
        <h2>{t.newGroup}</h2>
        <label>{t.groupName} <input id="group-name" value={name} required
          onInput={(e) => { setName(e.currentTarget.value) }} /></label>
        <NameOver id="group-name-over" value={name} />
        <fieldset id="group-pick" class="pick">
          <legend>{t.groupMembers}</legend>
          {[...s.peers.values()].map(p => (
            <label key={p.peerId}>
              <input type="checkbox" value={p.peerId} checked={picked.has(p.peerId)} onChange={(e) => { toggle(p.peerId, e.currentTarget.checked) }} />
              <Avatar id={p.peerId} name={w.person(p.peerId)} small /><span>{w.person(p.peerId)}</span>
            </label>
          ))}
        </fieldset>
        <ErrorLine id="group-new-error" text={error} />
        <div class="dialog-actions">
          <button type="button" id="group-new-cancel" class="button-secondary" onClick={onClose}>{t.cancel}</button>
          <button type="submit" id="group-create">{t.create}</button>
        </div>
      </form>
    </Dialog>
  )
}

export function Members ({ store, group, onClose }: { store: Store, group: GroupView, onClose: () => void }) {
  const { t } = useI18n()
  const s = store.state
  const w = words(t, s)
  const admin = isMe(s, group.admin) && group.member
  const addable = [...s.peers.values()].filter(p => !group.members.includes(p.peerId))
  const [add, setAdd] = useState(addable[0]?.peerId ?? '')
  const [name, setName] = useState(group.name)
  const [error, setError] = useState<string | null>(null)
  const [ask, setAsk] = useState<{ text: string, run: () => Promise<GroupView>, close: boolean } | null>(null)
  const act = async (run: () => Promise<GroupView>, close = false): Promise<void> => {
    try {
      store.putGroup(await run())
      setError(null)
      if (close) onClose()
    } catch (err) { setError(errorText(t, asApiError(err), 'groupName')) }
  }
  return (
    <Dialog id="members" label={t.members} onClose={onClose}>
      <h2 id="members-title">{group.name}</h2>
      <ul id="members-list" class="members-list">
        {group.members.map(m => (
          <li key={m}>
            <Avatar id={m} name={w.person(m)} small />
            <span>{w.person(m, true)}{m === group.admin ? ` ${t.creator}` : ''}</span>
            {admin && !isMe(s, m) && (
              <button type="button" class="button-secondary" data-member={m} onClick={() => {
                setAsk({ text: t.confirmRemove(w.person(m), group.name), run: async () => await store.api.removeMember(group.id, m), close: false })
              }}>{t.remove}</button>
            )}
          </li>
        ))}
      </ul>
      {admin && (
        <div id="members-admin" class="members-admin">
          <label>{t.add}
            <select id="members-add" value={add} onChange={(e) => { setAdd(e.currentTarget.value) }}>
              {addable.map(p => <option key={p.peerId} value={p.peerId}>{w.person(p.peerId)}</option>)}
            </select>
          </label>
          <button type="button" id="members-add-btn" disabled={add === ''}
            onClick={() => { void act(async () => await store.api.addMember(group.id, add)) }}>{t.add}</button>
          <label>{t.rename} <input id="members-rename" value={name} onInput={(e) => { setName(e.currentTarget.value) }} /></label>
          <button type="button" id="members-rename-btn" class="button-secondary"
            onClick={() => { void act(async () => await store.api.renameGroup(group.id, name.trim())) }}>{t.rename}</button>
          <NameOver id="members-rename-over" value={name} />
        </div>
      )}
      <ErrorLine id="members-error" text={error} />
      <div class="dialog-actions">
        {group.member && (
          <button type="button" id="members-leave" class="button-secondary danger-text" onClick={() => {
            setAsk({ text: t.confirmLeave(group.name), run: async () => await store.api.leaveGroup(group.id), close: true })
          }}>{t.leave}</button>
        )}
        <button type="button" id="members-close" onClick={onClose}>{t.close}</button>
      </div>
      {ask !== null && <Confirm text={ask.text} onNo={() => { setAsk(null) }} onYes={() => { const a = ask; setAsk(null); void act(a.run, a.close) }} />}
    </Dialog>
  )
}

/** The members dialog, remounted per group so its fields start from that group. */
export const MembersFor = ({ store, group, onClose }: { store: Store, group: GroupView, onClose: () => void }) =>
  <Members key={group.id} store={store} group={group} onClose={onClose} />
