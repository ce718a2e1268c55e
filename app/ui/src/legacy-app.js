// Parley web UI. Talks only to the local API of the node that served it.
// Everything from the network is inserted with textContent, never as HTML.

const TOKEN_KEY = 'parley-token'
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token')
if (fromHash) { sessionStorage.setItem(TOKEN_KEY, fromHash); history.replaceState(null, '', location.pathname) }
const token = sessionStorage.getItem(TOKEN_KEY) ?? ''

const $ = (id) => document.getElementById(id)
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e }

const isGroup = (id) => typeof id === 'string' && id.startsWith('g:')
const state = { me: null, peers: new Map(), groups: new Map(), convs: new Map(), current: null, messages: [], search: '', typingTimer: null, lastTypingSent: 0, sending: false, drafts: new Map() }

async function api (method, path, body) {
  const res = await fetch(`/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined
  })
  const data = await res.json().catch(() => ({ code: 'ERR_INTERNAL', message: `HTTP ${res.status}` }))
  if (!res.ok) { const e = new Error(data.message ?? 'request failed'); e.code = data.code; throw e }
  return data
}

// errors of this node that the user can act on, in words
const ERROR_WORDS = { ERR_DISK_FULL: 'Not saved: the disk holding Parley\'s data is full. Free some space on it; Parley carries on by itself.' }

function showError (where, err) {
  const box = $(where)
  box.textContent = err ? `${ERROR_WORDS[err.code] ?? err.message}${err.code ? ` (${err.code})` : ''}` : ''
  box.hidden = !err
}

const displayName = (p) => p?.name ?? (p?.peerId ? `${p.peerId.slice(0, 8)}…${p.peerId.slice(-6)}` : 'someone')
const presenceText = (p) => !p?.online ? (p?.lastSeen ? `offline, last seen ${new Date(p.lastSeen).toLocaleString()}` : 'offline') : p.reach === 'relay' ? 'online via relay' : 'online on the LAN'
const STATE_LABEL = { failed: '⚠ not delivered', queued: '… queued', sent: '✓ sent to relay', delivered: '✓✓ delivered', read: '✓✓ read' }
// why a recipient refused a message for good (MessageView.error), in words
const FAIL_REASON = {
  ERR_NOT_A_MEMBER: 'the recipient does not count you as a member of this group',
  ERR_SEQ_CONFLICT: 'the recipient already has another message of yours under this number (was this device restored from an old backup?)',
  ERR_DECRYPT_FAILED: 'the recipient could not decrypt it',
  ERR_BAD_SIGNATURE: 'the recipient could not verify its signature',
  ERR_NOT_A_RECIPIENT: 'the recipient is not in this conversation',
  ERR_INVALID_ENVELOPE: 'the recipient found it malformed'
}
// why the relay keeps no copy of a queued message (MessageView.relayRefusal); RELAY_REFUSAL_TEXT in node/src/api/contract.ts
const HOLD_REASON = {
  ERR_SENDER_SHARE_FULL: 'your share of their relay mailbox is full',
  ERR_QUOTA_EXCEEDED: 'their relay mailbox is full',
  ERR_UNKNOWN_RECIPIENT: 'they have no account on your relay'
}
const STATE_RANK = { failed: 4, queued: 0, sent: 1, delivered: 2, read: 3, received: 0, seen: 1 }

/** A list entry that opens with a click, or with Enter / Space once it has the keyboard focus. */
function operable (li, label, open) {
  li.tabIndex = 0
  li.setAttribute('role', 'button')
  li.setAttribute('aria-label', label)
  if (li.classList.contains('active')) li.setAttribute('aria-current', 'true')
  li.addEventListener('click', open)
  li.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open() } })
}

const badge = (n) => { const b = el('span', 'badge', String(n)); b.setAttribute('aria-label', `${n} unread`); return b }

function renderPeople () {
  const list = $('people')
  list.replaceChildren()
  const peers = [...state.peers.values()].sort((a, b) => (b.online - a.online) || displayName(a).localeCompare(displayName(b)))
  $('no-people').hidden = peers.length > 0
  let unreadTotal = 0
  for (const p of peers) {
    const conv = state.convs.get(p.peerId)
    const li = el('li', `person${state.current === p.peerId ? ' active' : ''}`)
    li.dataset.peer = p.peerId
    li.append(el('span', `dot ${p.online ? p.reach ?? 'lan' : ''}`))
    const name = el('span', 'name', displayName(p))
    if (p.keyWarning) name.append(el('span', 'warn-mark', ' ⚠'))
    if (conv?.lastText) name.append(el('span', 'last', conv.lastText))
    li.append(name)
    if (conv?.unread > 0 && (state.current !== p.peerId || document.hidden)) { li.append(badge(conv.unread)); unreadTotal += conv.unread }
    li.title = presenceText(p)
    operable(li, `${displayName(p)}, ${presenceText(p)}${conv?.unread > 0 ? `, ${conv.unread} unread` : ''}`, () => { void openConversation(p.peerId) })
    list.append(li)
  }
  const glist = $('groups')
  glist.replaceChildren()
  for (const g of [...state.groups.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const conv = state.convs.get(g.id)
    const li = el('li', `person group${state.current === g.id ? ' active' : ''}`)
    li.dataset.group = g.id
    li.append(el('span', 'dot group-dot', ''))
    const name = el('span', 'name', g.name)
    if (!g.member) name.append(el('span', 'last', 'you are no longer a member'))
    else if (conv?.lastText) name.append(el('span', 'last', conv.lastText))
    li.append(name)
    if (conv?.unread > 0 && (state.current !== g.id || document.hidden)) { li.append(badge(conv.unread)); unreadTotal += conv.unread }
    operable(li, `group ${g.name}${conv?.unread > 0 ? `, ${conv.unread} unread` : ''}`, () => { void openConversation(g.id) })
    glist.append(li)
  }
  document.title = unreadTotal > 0 ? `(${unreadTotal}) Parley` : 'Parley'
}

function renderHeader () {
  $('open-members').hidden = !isGroup(state.current)
  $('open-verify').hidden = isGroup(state.current)
  if (isGroup(state.current)) {
    const g = state.groups.get(state.current)
    $('peer-name').textContent = g?.name ?? 'Group'
    $('peer-presence').textContent = g ? `${g.members.length} members${g.member ? '' : ' · you are no longer a member'}` : ''
    $('key-warning').hidden = true
    $('composer').hidden = g?.member === false
    return
  }
  $('composer').hidden = false
  const p = state.peers.get(state.current)
  $('peer-name').textContent = displayName(p)
  $('peer-presence').textContent = presenceText(p) + (p?.verified ? ' · verified' : '')
  $('key-warning').textContent = p?.keyWarning ?? ''
  $('key-warning').hidden = !p?.keyWarning
}

/** Membership lines are written here from the signed op itself, never from text the author chose. */
function opText (m) {
  const who = (id) => id === state.me?.peerId ? 'You' : displayName(state.peers.get(id) ?? { peerId: id })
  const by = who(m.author)
  switch (m.op.type) {
    case 'create': return `${by} created “${m.op.name}”`
    case 'add': return `${by} added ${who(m.op.member)}`
    case 'remove': return `${by} removed ${who(m.op.member)}`
    case 'rename': return `${by} renamed the group to “${m.op.name}”`
    case 'leave': return `${by} left`
    default: return `${by} changed the group`
  }
}

function messageItem (m) {
  if (m.op) { const sys = el('li', 'msg system', opText(m)); sys.dataset.id = m.id; return sys }
  const li = el('li', `msg${m.outgoing ? ' mine' : ''}`)
  li.dataset.id = m.id
  if (isGroup(m.conv) && !m.outgoing) li.append(el('div', 'author', displayName(state.peers.get(m.author) ?? { peerId: m.author })))
  li.append(el('div', 'body', m.text))
  const meta = el('div', 'meta', new Date(m.hlc.w).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }))
  if (m.outgoing) {
    const s = el('span', `state state-${m.state}`, ` ${STATE_LABEL[m.state] ?? m.state}`)
    s.dataset.state = m.state
    if (m.state === 'failed' && m.error) s.title = FAIL_REASON[m.error] ?? `refused by the recipient (${m.error})`
    if (m.state === 'queued' && m.relayRefusal) {
      s.textContent = ` ${STATE_LABEL.queued}: ${HOLD_REASON[m.relayRefusal] ?? `refused by the relay (${m.relayRefusal})`}`
      s.title = 'It stays queued and goes directly when they are online.'
      s.dataset.refusal = m.relayRefusal
    }
    meta.append(s)
  }
  li.append(meta)
  return li
}

function renderMessages (force = false) {
  const list = $('messages')
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40
  list.replaceChildren(...state.messages.map(messageItem))
  $('search-banner').hidden = state.search === ''
  $('search-banner').textContent = state.search === '' ? '' : `${state.messages.length} message(s) matching “${state.search}”. Clear the search box to see everything.`
  if (atBottom || force) list.scrollTop = list.scrollHeight
}

async function loadPeers () {
  for (const p of await api('GET', '/peers')) state.peers.set(p.peerId, p)
  for (const c of await api('GET', '/conversations')) state.convs.set(c.peer, c)
  for (const g of await api('GET', '/groups')) state.groups.set(g.id, g)
  renderPeople()
}

async function loadMessages () {
  if (!state.current) return
  const current = state.current
  const search = state.search
  const q = search ? `?limit=500&search=${encodeURIComponent(search)}` : '?limit=500'
  const messages = await api('GET', `/conversations/${current}/messages${q}`)
  // another chat was opened, or the search changed, while this answer was on its way: it is stale
  if (current !== state.current || search !== state.search) return
  state.messages = messages
  renderMessages(true)
}

async function openConversation (peerId) {
  // what was typed stays with its chat
  if (state.current) state.drafts.set(state.current, $('text').value)
  $('text').value = state.drafts.get(peerId) ?? ''
  state.current = peerId
  state.search = ''
  $('search').value = ''
  $('empty').hidden = true
  $('conversation').hidden = false
  $('typing').hidden = true
  showError('error', null)
  renderHeader()
  await loadMessages()
  await markSeen()
  renderPeople()
  $('text').focus()
}

async function markSeen () {
  if (!state.current || document.hidden) return
  const conv = state.convs.get(state.current)
  if (conv) conv.unread = 0
  await api('POST', `/conversations/${state.current}/seen`).catch(() => {})
}

async function send (ev) {
  ev.preventDefault()
  const text = $('text').value
  const to = state.current
  // Enter while a send is on its way must not send it again
  if (!to || text.trim() === '' || state.sending) return
  state.sending = true
  $('send').disabled = true
  try {
    const m = await api('POST', '/messages', { to, text })
    // only clear what was sent (the user may have switched chats or typed on)
    if (state.current === to && $('text').value === text) $('text').value = ''
    state.drafts.delete(to)
    showError('error', null)
    upsertMessage(m)
  } catch (err) {
    showError('error', err)
  } finally {
    state.sending = false
    $('send').disabled = false
    $('text').focus()
  }
}

function upsertMessage (m) {
  // an answer or event for another chat (the user switched meanwhile) is not shown here
  if (state.search !== '' || conversationPeer(m.conv) !== state.current) return
  const i = state.messages.findIndex(x => x.id === m.id)
  // an HTTP answer can arrive after the event that already moved the message on: never go back
  if (i >= 0) { if (STATE_RANK[m.state] >= STATE_RANK[state.messages[i].state]) state.messages[i] = m } else {
    state.messages.push(m)
    state.messages.sort((a, b) => a.hlc.w - b.hlc.w || a.hlc.c - b.hlc.c || (a.id < b.id ? -1 : 1))
  }
  renderMessages()
}

function conversationPeer (conv) {
  return isGroup(conv) ? conv : conv.split(':').slice(1).find(p => p !== state.me?.peerId)
}

function notify (m) {
  if (!document.hidden || !('Notification' in window) || Notification.permission !== 'granted') return
  const p = state.peers.get(m.author)
  const n = new Notification(`Message from ${displayName(p)}`, { body: m.text.slice(0, 140), tag: m.conv })
  n.onclick = () => { window.focus(); void openConversation(isGroup(m.conv) ? m.conv : m.author) }
}

function onEvent (ev) {
  const { type, data } = ev
  if (type === 'messageStored' || type === 'messageStateChanged') {
    const peer = conversationPeer(data.conv)
    if (type === 'messageStored') {
      const conv = state.convs.get(peer) ?? { peer, unread: 0 }
      conv.lastText = data.text
      // the open chat counts too while the window is hidden (tray, other desktop): nobody has seen it
      if (!data.outgoing && (state.current !== peer || document.hidden)) conv.unread = (conv.unread ?? 0) + 1
      state.convs.set(peer, conv)
      if (!data.outgoing && !data.op) { notify(data); $('typing').hidden = true }
      if (isGroup(peer) ? !state.groups.has(peer) : !state.peers.has(peer)) void loadPeers()
    }
    if (peer === state.current) {
      upsertMessage(data)
      if (type === 'messageStored' && !data.outgoing) void markSeen()
    }
    renderPeople()
  } else if (type === 'peerOnline' || type === 'peerOffline' || type === 'peerUpdated') {
    state.peers.set(data.peerId, { ...state.peers.get(data.peerId), ...data })
    renderPeople()
    if (data.peerId === state.current) renderHeader()
  } else if (type === 'groupUpdated') {
    state.groups.set(data.conv, { id: data.conv, name: data.name, admin: data.admin, members: data.members, member: data.members.includes(state.me.peerId) })
    renderPeople()
    if (data.conv === state.current) {
      renderHeader()
      if ($('members').open) openMembers()
    }
  } else if (type === 'peerTyping') {
    const here = isGroup(state.current) ? data.conv === state.current : data.peerId === state.current && !isGroup(data.conv)
    if (!here) return
    $('typing').textContent = `${displayName(state.peers.get(data.peerId))} is typing…`
    $('typing').hidden = false
    clearTimeout(state.typingTimer)
    state.typingTimer = setTimeout(() => { $('typing').hidden = true }, 4000)
  } else if (type === 'relayChanged') {
    renderRelay(data)
  }
}

function connectEvents (reconnecting = false) {
  const ws = new WebSocket(`ws://${location.host}/v1/events?token=${encodeURIComponent(token)}`)
  ws.onmessage = (m) => { try { onEvent(JSON.parse(m.data)) } catch (err) { console.error('bad event', err) } }
  // after a reconnect, events missed while the socket was down are caught up by reloading, once it is open
  ws.onopen = () => {
    $('offline').hidden = true
    if (reconnecting) void resync().catch(() => {})
  }
  ws.onclose = () => {
    $('offline').hidden = false
    setTimeout(() => { connectEvents(true) }, 1500)
  }
}

async function resync () {
  await loadPeers()
  renderHeader()
  renderRelay((await api('GET', '/settings')).relay)
  await loadMessages()
  await markSeen()
  renderPeople()
}

function renderRelay (relay) {
  const waiting = relay?.connected && relay.waiting > 0 ? ` · fetching ${relay.waiting} message${relay.waiting === 1 ? '' : 's'} kept for you` : ''
  const text = !relay?.addr ? 'LAN only (no relay)' : relay.connected ? (relay.admitted === false ? 'relay refused this device' : `relay connected${waiting}`) : 'relay unreachable, retrying'
  $('relay-status').textContent = text
  // why, in the relay's words (an invite that is used up, not admitted yet…), on hover
  $('relay-status').title = relay?.lastError ? `${relay.lastError.message} (${relay.lastError.code})` : ''
}

async function openSettings () {
  const s = await api('GET', '/settings')
  $('set-name').value = s.name
  $('set-relay').value = s.relay.addr ?? ''
  state.relayAddr = s.relay.addr ?? ''
  $('set-invite').value = ''
  $('my-id').textContent = state.me.peerId
  showError('settings-error', null)
  $('settings').showModal()
}

async function saveSettings (ev) {
  ev.preventDefault()
  try {
    const relay = $('set-relay').value.trim()
    const invite = $('set-invite').value.trim()
    const body = { name: $('set-name').value.trim() }
    // the relay is sent only when it or the invite changed: re-sending it would reset a pending invite
    if (relay !== state.relayAddr || invite !== '') { body.relay = relay === '' ? null : relay; body.invite = invite === '' ? null : invite }
    const s = await api('PUT', '/settings', body)
    state.me.name = s.name
    $('my-name').textContent = s.name
    renderRelay(s.relay)
    $('settings').close()
  } catch (err) {
    showError('settings-error', err)
  }
}

function openVerify () {
  const p = state.peers.get(state.current)
  if (!p) return
  $('verify-name').textContent = displayName(p)
  $('safety-number').textContent = p.safetyNumber.replace(/(\d{5} \d{5} \d{5}) /g, '$1\n')
  $('verify-id').textContent = p.peerId
  $('verify-state').textContent = p.verified ? 'You marked this key as verified.' : 'Not verified yet.'
  $('verify-toggle').textContent = p.verified ? 'Clear verification' : 'Mark as verified'
  $('verify').showModal()
}

async function toggleVerified () {
  const p = state.peers.get(state.current)
  const v = await api('POST', `/peers/${p.peerId}/verify`, { verified: !p.verified })
  state.peers.set(v.peerId, v)
  renderHeader(); renderPeople(); openVerify()
}

function onTyping () {
  if (!state.current || Date.now() - state.lastTypingSent < 2500) return
  state.lastTypingSent = Date.now()
  void api('POST', `/conversations/${state.current}/typing`).catch(() => {})
}

function openNewGroup () {
  const pick = $('group-pick')
  pick.replaceChildren(el('legend', '', 'Members'))
  for (const p of state.peers.values()) {
    const label = el('label')
    const box = el('input')
    box.type = 'checkbox'
    box.value = p.peerId
    label.append(box, el('span', '', displayName(p)))
    pick.append(label)
  }
  $('group-name').value = ''
  showError('group-new-error', null)
  $('group-new').showModal()
}

async function createGroup (ev) {
  ev.preventDefault()
  const members = [...$('group-pick').querySelectorAll('input:checked')].map(b => b.value)
  try {
    const g = await api('POST', '/groups', { name: $('group-name').value.trim(), members })
    state.groups.set(g.id, g)
    $('group-new').close()
    await openConversation(g.id)
  } catch (err) { showError('group-new-error', err) }
}

function openMembers () {
  const g = state.groups.get(state.current)
  if (!g) return
  const admin = g.admin === state.me.peerId && g.member
  $('members-title').textContent = g.name
  const list = $('members-list')
  list.replaceChildren()
  for (const m of g.members) {
    const li = el('li', '', '')
    li.append(el('span', '', `${m === state.me.peerId ? 'You' : displayName(state.peers.get(m) ?? { peerId: m })}${m === g.admin ? ' (creator)' : ''}`))
    if (admin && m !== state.me.peerId) {
      const rm = el('button', 'button-secondary', 'Remove')
      rm.dataset.member = m
      rm.addEventListener('click', () => { void groupAction(() => api('DELETE', `/groups/${g.id}/members/${m}`)) })
      li.append(rm)
    }
    list.append(li)
  }
  const add = $('members-add')
  add.replaceChildren(...[...state.peers.values()].filter(p => !g.members.includes(p.peerId)).map(p => { const o = el('option', '', displayName(p)); o.value = p.peerId; return o }))
  $('members-admin').hidden = !admin
  $('members-rename').value = g.name
  $('members-leave').hidden = !g.member
  showError('members-error', null)
  if (!$('members').open) $('members').showModal()
}

async function groupAction (fn, close = false) {
  try {
    const g = await fn()
    state.groups.set(g.id, g)
    renderPeople(); renderHeader()
    if (close) $('members').close(); else openMembers()
  } catch (err) { showError('members-error', err) }
}

let searchTimer
function onSearch () {
  clearTimeout(searchTimer)
  searchTimer = setTimeout(() => { state.search = $('search').value.trim(); void loadMessages() }, 250)
}

async function main () {
  if (!token) {
    document.body.replaceChildren(el('p', 'pad', 'Open Parley with the address printed by `parley start` (it carries the access token).'))
    return
  }
  state.me = await api('GET', '/identity')
  $('my-name').textContent = state.me.name
  renderRelay((await api('GET', '/settings')).relay)
  $('composer').addEventListener('submit', (e) => { void send(e) })
  // Enter sends, Shift+Enter is a new line; Enter that ends an IME composition (Chinese, Japanese…) does not send
  $('text').addEventListener('keydown', (e) => { if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); $('composer').requestSubmit() } })
  $('text').addEventListener('input', onTyping)
  $('search').addEventListener('input', onSearch)
  $('open-settings').addEventListener('click', () => { void openSettings() })
  $('settings-form').addEventListener('submit', (e) => { void saveSettings(e) })
  $('settings-cancel').addEventListener('click', () => $('settings').close())
  $('open-verify').addEventListener('click', openVerify)
  $('new-group').addEventListener('click', openNewGroup)
  $('group-new-form').addEventListener('submit', (e) => { void createGroup(e) })
  $('group-new-cancel').addEventListener('click', () => $('group-new').close())
  $('open-members').addEventListener('click', openMembers)
  $('members-close').addEventListener('click', () => $('members').close())
  $('members-add-btn').addEventListener('click', () => { const p = $('members-add').value; if (p) void groupAction(() => api('POST', `/groups/${state.current}/members`, { peer: p })) })
  $('members-rename-btn').addEventListener('click', () => { void groupAction(() => api('PUT', `/groups/${state.current}`, { name: $('members-rename').value.trim() })) })
  $('members-leave').addEventListener('click', () => { void groupAction(() => api('POST', `/groups/${state.current}/leave`), true) })
  $('verify-close').addEventListener('click', () => $('verify').close())
  $('verify-toggle').addEventListener('click', () => { void toggleVerified() })
  document.addEventListener('visibilitychange', () => { void markSeen().then(renderPeople) })
  document.addEventListener('click', () => { if ('Notification' in window && Notification.permission === 'default') void Notification.requestPermission() }, { once: true })
  await loadPeers()
  connectEvents()
}

main().catch((err) => { document.body.replaceChildren(el('p', 'pad error', `Parley could not start: ${err.message}`)) })
