/** English: the source catalog; its shape is the type every other catalog follows. */
import type { Formatters } from '../../../shared/i18n.js'
import type { MessageState, NameWarning, PermanentRefusal, Route } from '../../../../node/src/api/contract.js'

export const en = (f: Formatters) => ({
  appName: 'Parley',
  noToken: 'Open Parley with the address printed by “parley start” (it carries the access token).',
  startFailed: (why: string) => `Parley could not start: ${why}`,
  someone: 'someone',
  you: 'You',

  // sidebar
  settings: 'Settings',
  chats: 'Chats',
  newGroup: 'New group',
  searchAll: 'Search all chats',
  noPeople: 'Nobody found yet. Colleagues running Parley on this network appear here by themselves.',
  unread: (n: number) => f.plural(n, { one: '# unread message', other: '# unread messages' }),
  noLongerMember: 'you are no longer a member',
  previewYou: (text: string) => `You: ${text}`,
  previewAuthor: (name: string, text: string) => `${name}: ${text}`,
  previewRecalled: 'Message recalled',
  searchHits: (n: number, text: string) => f.plural(n, { one: `# message contains “${text}”`, other: `# messages contain “${text}”` }),
  searchNone: (text: string) => `No message contains “${text}”.`,
  searchClear: 'Clear search',
  chatWith: (name: string, presence: string) => `${name}, ${presence}`,
  groupLabel: (name: string) => `Group ${name}`,

  // our own node and the relay
  linkDown: 'Lost the connection to Parley on this computer; reconnecting…',
  linkConnecting: 'Connecting to Parley on this computer…',
  relayNone: 'LAN only (no relay)',
  relayConnected: 'Relay connected',
  relayFetching: (n: number) => f.plural(n, {
    one: 'Relay connected · fetching # message kept for you',
    other: 'Relay connected · fetching # messages kept for you'
  }),
  relayRefused: 'The relay refused this device',
  relayRefusedHint: 'Ask your admin for a new invite and enter it in Settings.',
  relayInvite: 'Relay connected · checking admission…',
  relayInviteRefused: 'The relay refused your invite',
  relayUnreachable: 'Relay unreachable, retrying',
  relayUnknown: 'Relay status unknown',

  // presence
  presenceLan: 'online on the LAN',
  presenceRelay: 'online via the relay',
  presenceOffline: 'offline',
  presenceLastSeen: (ms: number) => `offline, last seen ${f.relative(ms)}`,
  presenceUnknown: 'status unknown while Parley on this computer is not reachable',
  presenceAway: 'away (idle)',
  presenceDnd: 'do not disturb',
  verifiedSuffix: ' · verified',

  // chat header
  back: 'Back to chats',
  searchChat: 'Search this chat',
  verify: 'Verify',
  members: 'Members',
  memberCount: (n: number) => f.plural(n, { one: '# member', other: '# members' }),
  memberList: (names: string[]) => f.list(names),
  filterBanner: (n: number, text: string) => f.plural(n, {
    one: `# message matching “${text}”. Clear the search box to see everything.`,
    other: `# messages matching “${text}”. Clear the search box to see everything.`
  }),
  pickChat: 'Pick a colleague on the left to start chatting. Messages are end-to-end encrypted and go straight to them on the office network.',

  // messages
  state: {
    failed: '⚠ not delivered', queued: '… queued', sent: '✓ sent to relay', delivered: '✓✓ delivered', read: '✓✓ read', received: 'received', seen: 'seen'
  } satisfies Record<MessageState, string>,
  refusal: {
    ERR_NOT_A_MEMBER: 'The recipient does not count you as a member of this group.',
    ERR_SEQ_CONFLICT: 'The recipient already has another message of yours under this number. Was this computer restored from an old backup?',
    ERR_ID_CONFLICT: 'The recipient already has a different message under this message’s id; it was not accepted.',
    ERR_DECRYPT_FAILED: 'The recipient could not decrypt it.',
    ERR_BAD_SIGNATURE: 'The recipient could not verify its signature.',
    ERR_NOT_A_RECIPIENT: 'The recipient is not in this conversation.',
    ERR_INVALID_ENVELOPE: 'The recipient found it malformed.'
  } satisfies Record<PermanentRefusal, string>,
  refusalOther: (code: string) => `The recipient refused it (${code}).`,
  /** why the relay keeps no copy of a queued message (MessageView.relayRefusal) */
  relayRefusal: {
    ERR_SENDER_SHARE_FULL: 'your share of their relay mailbox is full',
    ERR_QUOTA_EXCEEDED: 'their relay mailbox is full',
    ERR_UNKNOWN_RECIPIENT: 'they have no account on your relay'
  } as Record<string, string>,
  relayRefusalOther: (code: string) => `refused by the relay (${code})`,
  relayRefusalNext: 'It stays queued and goes directly when they are online.',
  opCreated: (by: string, name: string) => `${by} created “${name}”`,
  opAdded: (by: string, who: string) => `${by} added ${who}`,
  opRemoved: (by: string, who: string) => `${by} removed ${who}`,
  opRenamed: (by: string, name: string) => `${by} renamed the group to “${name}”`,
  opLeft: (by: string) => `${by} left`,
  opChanged: (by: string) => `${by} changed the group`,
  newMessages: 'New messages',
  showMore: 'Show more',
  showLess: 'Show less',
  loadingOlder: 'Loading older messages…',
  beginning: 'This is the beginning of the conversation.',
  reply: 'Reply',
  edit: 'Edit',
  recall: 'Recall',
  replyingTo: (name: string) => `Replying to ${name}`,
  editing: 'Editing your message',
  cancelCompose: 'Cancel (Esc)',
  edited: 'edited',
  editedAt: (ms: number) => `Edited ${f.dateTime(ms)}`,
  recalledYou: 'You recalled a message',
  recalledBy: (name: string) => `${name} recalled a message`,
  confirmRecall: 'Recall this message? It disappears for everyone in this chat; they see that you recalled it.',
  quoteMissing: 'an earlier message',
  copy: 'Copy',
  copied: 'Copied',
  info: 'Info',
  typing: (name: string) => `${name} is typing…`,
  messageLabel: 'Message',
  placeholder: 'Write a message',
  placeholderGroup: (group: string) => `Message ${group}`,
  send: 'Send',
  tooLong: (over: number, max: number) => f.plural(over, {
    one: `# character over the limit of ${f.number(max)}: shorten it or send it in two parts.`,
    other: `# characters over the limit of ${f.number(max)}: shorten it or send it in two parts.`
  }),
  charCount: (n: number, max: number) => `${f.number(n)} / ${f.number(max)}`,
  emoji: 'Emoji',
  mentionYou: 'mentions you',

  // message info
  infoTitle: 'Message info',
  infoWritten: 'Written',
  infoStored: 'Stored on this computer',
  infoState: 'State',
  infoRoute: 'Route',
  routeIncoming: 'Received and stored on this computer.',
  routeQueued: 'Queued on this computer: the recipient is not reachable directly yet, nor through a relay. It is sent as soon as one of them is.',
  routeRelay: 'Held by the relay for the recipient, who was not reachable directly. It is delivered when they come online.',
  routeDirect: 'Delivered to the recipient’s computer (directly on the LAN, or through the relay’s bridge).',
  routeFailed: 'Refused by the recipient; it is not retried.',
  routeVia: {
    lan: 'directly on the LAN', circuit: 'through the relay’s bridge (no direct connection)', mailbox: 'from the relay’s mailbox'
  } satisfies Record<Route, string>,
  routeDelivered: (via: string) => `Delivered to the recipient’s computer ${via}.`,
  routeReceived: (via: string) => `Received ${via} and stored on this computer.`,
  routeForwarded: (name: string) => `Passed on by ${name} (a member of this group).`,
  infoRecipients: 'Recipients',
  infoRefusedBy: 'Refused',
  infoWaiting: 'Not confirmed by everyone yet',
  close: 'Close',

  // the company directory (from the office relay)
  directory: 'Directory',
  directoryTitle: 'Company directory',
  directoryLoading: 'Loading…',
  directoryEmpty: 'The relay has no directory yet.',
  directoryChat: 'Chat',
  directoryNoDevice: 'not joined yet',
  directorySearch: 'Search the directory',
  directoryYou: '(you)',
  directoryNoRelay: 'The company directory comes from your office relay: set the relay (or the invite link your admin gave you) in Settings first.',
  directoryUnreachable: 'The relay cannot be reached right now, so the directory cannot be shown. Try again in a moment.',

  // settings
  displayName: 'Display name',
  relayAddress: 'Relay address',
  relayPlaceholder: '/dns4/relay.example.com/tcp/4100/p2p/12D3KooW…',
  invite: 'Invite token',
  invitePlaceholder: 'from your admin, used once',
  yourId: 'Your peer ID:',
  language: 'Language',
  languageAuto: 'Same as the system',
  theme: 'Appearance',
  themeAuto: 'Same as the system',
  themeLight: 'Light',
  themeDark: 'Dark',
  dnd: 'Do not disturb (no notifications)',
  dndShort: 'Do not disturb',
  cancel: 'Cancel',
  save: 'Save',

  // first run
  welcomeTitle: 'Welcome to Parley',
  welcomeText: 'Which name should your colleagues see? You can change it later in Settings.',
  welcomeStart: 'Start',

  // groups
  groupName: 'Name',
  groupMembers: 'Members',
  create: 'Create',
  creator: '(creator)',
  remove: 'Remove',
  add: 'Add',
  rename: 'Rename',
  leave: 'Leave group',
  confirmRemove: (who: string, group: string) => `Remove ${who} from “${group}”? They will not see new messages.`,
  confirmLeave: (group: string) => `Leave “${group}”? You will not get its new messages unless someone adds you again.`,
  confirm: 'Confirm',

  // verification
  /** another key used this name (or one that looks like it) first: a new device, or an impostor */
  nameWarning: (w: NameWarning) => `Another key (${w.key}) used ` +
    `${w.code === 'same-name' ? `the name “${w.name}”` : `the name “${w.firstName}”, which looks like “${w.name}”,`} before. ` +
    'This may be a new device, or someone else: compare safety numbers before you trust it.',
  verifyTitle: (name: string) => `Verify ${name}`,
  verifyExplain: 'Compare this safety number with the one on their screen, in person or on a call. If they match, nobody is in between.',
  theirId: 'Their peer ID:',
  verifiedState: 'You marked this key as verified.',
  notVerified: 'Not verified yet.',
  markVerified: 'Mark as verified',
  clearVerified: 'Clear verification',

  // quick switcher
  switcherLabel: 'Go to a chat',
  switcherPlaceholder: 'Type a name… (Ctrl+K)',
  switcherNone: 'No chat with that name.',

  // notifications
  notifyFrom: (name: string) => `Message from ${name}`,
  notifyInGroup: (name: string, group: string) => `${name} in ${group}`,
  notifyMention: (name: string, group: string) => `${name} mentioned you in ${group}`,

  // errors, in the user's words
  error: {
    ERR_UNREACHABLE: 'Parley on this computer is not answering. It may be restarting: try again in a moment.',
    ERR_UNAUTHORIZED: 'This page’s access key is no longer valid. Open Parley again with the address printed by “parley start”.',
    ERR_NOT_A_MEMBER: 'You are not a member of this group any more, so you cannot write to it.',
    ERR_UNKNOWN_PEER: 'Parley does not know this person yet.',
    ERR_AMBIGUOUS_PEER: 'Several people have this name: pick one from the list.',
    ERR_PEER_UNREACHABLE: 'That computer cannot be reached right now. Check that it is on and on the network.',
    ERR_TIMEOUT: 'This took too long. It goes on in the background; check again in a moment.',
    ERR_DISK_FULL: 'The disk is full, so Parley cannot save this. Free some space: Parley notices by itself and takes messages again.',
    ERR_STORE: 'Parley could not save to this computer’s disk. Is the disk full? Free some space, then restart Parley.',
    ERR_NOT_FOUND: 'That no longer exists here.',
    ERR_NOT_ADMITTED: 'Your office relay has not admitted this computer (yet): enter the invite your admin gave you in Settings.',
    relayAddress: 'This is not a relay address. It looks like /dns4/relay.example.com/tcp/4100/p2p/12D3KooW…: copy it exactly from your admin.',
    invite: 'This is not an invite token. Copy the token your relay admin gave you, without spaces.',
    name: 'A name needs 1 to 64 characters, without control characters.',
    groupName: 'A group name needs 1 to 64 characters.',
    groupMembers: 'Pick at least one colleague for the group.',
    tooLate: 'This message is too old to be changed now.',
    other: (code: string) => `Something went wrong (${code}). Try again; if it keeps happening, restart Parley.`
  },

  // issue 16 gaps (ui2): the API's other errors, in the user's words (errorText looks here after `error`)
  errorCodes: {
    ERR_INVALID_ARGUMENT: 'Parley could not use what was entered. Check it and try again.',
    ERR_UNKNOWN_GROUP: 'This group is not known on this computer: it may have been deleted, or you were never added to it.',
    ERR_STORE_UNAVAILABLE: 'Parley’s message store is not available right now. Parley retries by itself; if this stays, restart Parley.',
    ERR_RESOURCE_LIMIT: 'That was too much at once, so Parley refused it to protect this computer. Wait a moment and try again with less.',
    ERR_INVITE_INVALID: 'The relay did not accept this invite: it is unknown, revoked, expired or used up. Ask your admin for a new one.',
    ERR_NOT_STARTED: 'Parley is still starting (or stopping). Try again in a moment.'
  } satisfies Record<string, string>,

  // damaged store, held messages (issue 9)
  storeDamaged: 'Parley found its message store damaged when it started.',
  storeLost: (n: number) => n === 0 ? 'No messages were lost.' : f.plural(n, { one: '# message was lost here.', other: '# messages were lost here.' }),
  storeLostAtLeast: (n: number) => f.plural(n, { one: 'At least # message was lost here.', other: 'At least # messages were lost here.' }),
  storeLostUnknown: 'Some messages may have been lost here.',
  storeComesBack: 'They come back from your colleagues when they connect.',
  storeChecking: 'New messages wait until your colleagues have confirmed your message numbers.',
  storeDismiss: 'OK',
  heldState: 'checking message numbers with colleagues',
  heldHint: 'Parley first makes sure no message number is used twice (after a damaged store, or in a group after a restart). ' +
    'It goes out as soon as your colleagues answer, or within a minute.',

  // other offices (issue 12: federation)
  offices: 'Other offices',
  officesTitle: 'People in other offices',
  officesHint: 'Colleagues of the offices your relay is paired with, who chose to be listed.',
  officesSearch: 'Search by name, department or office',
  officesLoading: 'Loading…',
  officesEmpty: 'Nobody found. Only people who chose to be listed appear here.',
  officesChat: 'Chat',
  officesNoRelay: 'Other offices are reached through your office relay: set the relay in Settings first.',
  officesUnreachable: 'Your relay could not give the other offices\' directory right now. Try again in a moment.',
  officesListMe: 'List me in the other offices\' directories',
  officesListMeHint: 'Off by default. When on, people in the paired offices see your name and department and can write to you.',
  officesDepartment: 'Department (optional)',
  officesSaved: 'Saved.',

  // files (issue 13)
  files: {
    attach: 'Attach files',
    dropHere: 'Drop files to send them',
    pastedName: (d: Date, i: number, type: string) =>
      `Screenshot ${d.toISOString().slice(0, 19).replace('T', ' ').replace(/:/g, '.')}${i > 0 ? ` (${i + 1})` : ''}.${type.split('/')[1]?.replace('jpeg', 'jpg') ?? 'png'}`,
    bytes: (n: number) => n >= 1024 ** 3
      ? `${f.number(Math.round(n / 1024 ** 3 * 10) / 10)} GB`
      : n >= 1024 ** 2 ? `${f.number(Math.round(n / 1024 ** 2 * 10) / 10)} MB`
      : n >= 1024 ? `${f.number(Math.round(n / 1024))} KB` : f.plural(n, { one: '# byte', other: '# bytes' }),
    duration: (s: number) => s < 60 ? f.plural(s, { one: '# second', other: '# seconds' }) : s < 3600
      ? f.plural(Math.ceil(s / 60), { one: '# minute', other: '# minutes' }) : f.plural(Math.round(s / 360) / 10, { one: '# hour', other: '# hours' }),
    progress: 'Transfer progress',
    moving: (pct: number, speed: string, left: string | null) => `${pct} % · ${speed}/s${left !== null ? ` · ${left} left` : ''}`,
    waiting: (pct: number) => `${pct} % · waiting for the other side to be online`,
    paused: (pct: number) => `${pct} % · paused`,
    atRelay: 'Kept at the office relay until they are online',
    pause: 'Pause',
    resume: 'Resume',
    cancel: 'Cancel',
    open: 'Open',
    save: 'Save as…',
    delivered: 'Received',
    cancelled: 'Cancelled',
    failed: (code: string) => code === 'ERR_FILE_TOO_LARGE' ? 'Too large for this computer’s limit' : `Could not be received (${code})`,
    relayRefused: 'The relay has no room for it: it goes directly when they are online',
    rejected: (n: number) => f.plural(n, { one: '# damaged piece fetched again', other: '# damaged pieces fetched again' }),
    rejectedTitle: 'A piece did not match its checksum: it was thrown away and fetched again, so the file is exactly what was sent.',
    downloads: 'Received files go to',
    downloadsInvalid: 'Give the full path of a folder, e.g. /home/you/Downloads.'
  },

  // accounts and devices (issue 11)
  devices: 'Devices',
  devicesIntro: 'Every computer you use Parley on. Colleagues see one of you; each device gets your messages.',
  deviceThis: 'this computer',
  deviceOnline: 'online',
  deviceNeverSeen: 'not seen yet',
  deviceLastSeen: (when: string) => `last seen ${when}`,
  deviceFirst: 'first device',
  deviceUnnamed: 'device',
  deviceRevoke: 'Revoke',
  deviceRevokeConfirm: 'Revoke this device? Nothing sent from now on can be read on it. Use this for a lost or stolen computer.',
  deviceHistoryNote: (when: string) => `This computer joined your account on ${when}. Messages from before are on your other devices only.`,
  linkMake: 'Link a new device',
  linkShow: (until: string) => `On the new computer, choose “Link to an existing account” and scan or paste this code. It works once, until ${until}.`,
  linkQrAlt: 'QR code of the link code',
  linkOnFirstDevice: 'To link or revoke devices, open Settings → Devices on your first computer.',
  linkExisting: 'Link to an existing account',
  linkJoinTitle: 'Link to your account',
  linkJoinText: 'On the computer you already use, open Settings → Devices → Link a new device (or run “parley link”), then paste the code here.',
  linkCode: 'Link code',
  deviceLabel: 'Name of this computer',
  deviceLabelPlaceholder: 'e.g. laptop',
  linkHistoryWarning: 'Earlier messages stay on your other computer: only messages from now on come here.',
  linkJoin: 'Link',
  linkCodeInvalid: 'This code is not valid any more (used, or too old). Make a new one on your other computer.',
  linkNotFresh: 'This computer already has chats of its own. Link a computer where Parley was just installed.',
  needsUpdate: 'uses an older Parley: ask them to update',

  // accounts and devices, session 4 (issue 11)
  needsUpdateBanner: (name: string) =>
    `${name} uses an older version of Parley. Ask them to update: until then, messages from or to a second computer of yours or theirs do not get through.`,
  needsUpdateShort: 'needs an update',
  peerDevices: (n: number) => n === 1 ? '1 device' : `${n} devices`,
  linkInvite: 'Away from the office? Your relay invite link (from your admin), else leave empty',
  linkViaRelay: 'Connecting to your other computer through the office relay…',

  // issue 16 (ui4): a name over the limit is kept whole and counted (the field never cuts a pasted name)
  nameTooLong: (over: number, max: number) => f.plural(over, {
    one: `# character over the limit of ${f.number(max)}: shorten the name.`,
    other: `# characters over the limit of ${f.number(max)}: shorten the name.`
  }),
  directoryNoMatch: (q: string) => `Nobody in the directory matches “${q}”.`,

  // federation: the route through another office's relay, and its bounces (issue 12)
  routeOffice: (office: string) => `It came from ${office}, through that office’s relay and ours.`,
  routeOfficeSent: (office: string) => `Taken by our relay, which forwards it to the relay of ${office}; the recipient gets it from there.`,
  routeOfficeVia: (office: string) => `(via the relay of ${office})`,
  fedFailed: 'Not delivered: our relay gave it up.',
  fedRefusal: {
    ERR_FED_EXPIRED: 'The other office’s relay could not be reached for too long, so the message expired. Send it again when that office is reachable.',
    ERR_UNKNOWN_RECIPIENT: 'The other office’s relay has no such user (the account moved or was removed).'
  } as Record<string, string>,

  // issue 16 (ui5): the edit/recall windows this node runs with (parley start --edit-minutes N --recall-minutes N)
  changeWindowsNote: (editMs: number, recallMs: number) => {
    const span = (ms: number): string => {
      const m = Math.round(ms / 60_000)
      if (m > 0 && m % 1440 === 0) return f.plural(m / 1440, { one: '# day', other: '# days' })
      if (m > 0 && m % 60 === 0) return f.plural(m / 60, { one: '# hour', other: '# hours' })
      return f.plural(m, { one: '# minute', other: '# minutes' })
    }
    return `You can edit a message for ${span(editMs)} and recall it for ${span(recallMs)} after sending it.`
  },

  // issue 12 (fed12): queued because the other office's relay cannot be reached; mail dropped by an unpairing or refused there
  routeOfficeWaiting: (office: string, since: number) =>
    `Queued: the relay of ${office} cannot be reached (since ${f.dateTime(since)}). Our relay keeps the message and sends it when that relay is back.`,
  fedRefusalMore: {
    ERR_FED_NOT_PAIRED: 'Our relay is no longer paired with that office’s relay, so the message was not sent there. ' +
      'Ask your admin to pair the offices again, then send it again.',
    ERR_FED_NOT_HOME: 'The other office’s relay refused it: your account does not name our relay as its home yet. Send it again in a moment.',
    ERR_INVALID_ENVELOPE: 'The other office’s relay refused it as damaged. Send it again.'
  } as Record<string, string>
})

export type Messages = ReturnType<typeof en>
