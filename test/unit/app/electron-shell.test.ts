/**
 * The Electron shell against a fake `electron`: the node is started as a
 * utility process with the user's flags, the window is hardened, navigation
 * away from the node's origin is blocked, the unread count reaches the badge.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
// @ts-expect-error plain ESM module without types
import { startShell, unreadFromTitle, WEB_PREFERENCES } from '../../../app/electron/shell.mjs'

interface Calls { fork?: { path: string, args: string[], execArgv?: string[] }, windows: Array<{ win: EventEmitter, opts: { webPreferences: Record<string, unknown> }, loaded?: string, contents: EventEmitter & { openHandler?: (d: { url: string }) => { action: string } } }>, badge: number[], external: string[], permission?: (wc: unknown, p: string, cb: (ok: boolean) => void) => void, quit: number }

function fakeElectron (calls: Calls): { electron: Record<string, unknown>, child: EventEmitter & { stdout: EventEmitter } } {
  const child = Object.assign(new EventEmitter(), { stdout: new EventEmitter(), kill: () => {} })
  const app = Object.assign(new EventEmitter(), {
    requestSingleInstanceLock: () => true,
    whenReady: async () => {},
    setBadgeCount: (n: number) => { calls.badge.push(n) },
    quit: () => { calls.quit++ }
  })
  class BrowserWindow extends EventEmitter {
    webContents = Object.assign(new EventEmitter(), { setWindowOpenHandler (h: (d: { url: string }) => { action: string }) { (this as { openHandler?: unknown }).openHandler = h } })
    constructor (opts: Calls['windows'][number]['opts']) { super(); calls.windows.push({ win: this, opts, contents: this.webContents }) }
    async loadURL (url: string): Promise<void> { calls.windows.at(-1)!.loaded = url }
    hide (): void {}
    show (): void {}
    focus (): void {}
  }
  class Tray extends EventEmitter { setToolTip (): void {} setContextMenu (): void {} }
  const electron = {
    app,
    BrowserWindow,
    Tray,
    Menu: { buildFromTemplate: (t: unknown) => t },
    nativeImage: { createFromPath: (p: string) => p },
    session: { defaultSession: { setPermissionRequestHandler: (h: Calls['permission']) => { calls.permission = h } } },
    shell: { openExternal: async (u: string) => { calls.external.push(u) } },
    utilityProcess: { fork: (path: string, args: string[], opts: { execArgv?: string[] }) => { calls.fork = { path, args, execArgv: opts.execArgv }; return child } }
  }
  return { electron, child }
}

describe('Electron shell', () => {
  it('starts the node with the flags of the user and opens a hardened window on the printed address', async () => {
    const calls: Calls = { windows: [], badge: [], external: [], quit: 0 }
    const { electron, child } = fakeElectron(calls)
    const { ready } = startShell(electron, { root: '/opt/parley', argv: ['/usr/bin/electron', '/opt/parley/app/electron/main.mjs', '--data', '/home/u/.parley', '--name', 'Ana'] })
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(calls.fork?.path, '/opt/parley/bin/parley.js')
    assert.deepEqual(calls.fork?.args, ['start', '--api-port', '0', '--data', '/home/u/.parley', '--name', 'Ana'])
    // the node's young generation capped as under `npm start` (scripts/programs.mjs NODE_FLAGS)
    assert.deepEqual(calls.fork?.execArgv, ['--max-semi-space-size=2'])
    child.stdout.emit('data', Buffer.from('Parley is running\n  open Parley in your browser: http://127.0.0.1:4567/#token=abc\nready\n'))
    await ready
    const win = calls.windows[0]!
    assert.equal(win.loaded, 'http://127.0.0.1:4567/#token=abc')
    assert.deepEqual(win.opts.webPreferences, { ...WEB_PREFERENCES })
    assert.equal(win.opts.webPreferences.contextIsolation, true)
    assert.equal(win.opts.webPreferences.sandbox, true)
    assert.equal(win.opts.webPreferences.nodeIntegration, false)
    assert.equal('preload' in win.opts.webPreferences, false)

    // navigation: own origin allowed, anything else blocked; new windows denied, web links go outside
    let prevented = 0
    win.contents.emit('will-navigate', { preventDefault: () => { prevented++ } }, 'http://127.0.0.1:4567/#x')
    win.contents.emit('will-navigate', { preventDefault: () => { prevented++ } }, 'https://evil.example/')
    assert.equal(prevented, 1)
    assert.deepEqual(win.contents.openHandler?.({ url: 'https://example.org/' }), { action: 'deny' })
    assert.deepEqual(calls.external, ['https://example.org/'])

    // permissions: notifications only
    const answers: boolean[] = []
    calls.permission?.(null, 'notifications', (ok) => answers.push(ok))
    calls.permission?.(null, 'media', (ok) => answers.push(ok))
    assert.deepEqual(answers, [true, false])
  })

  it('mirrors the unread count of the page title on the badge', async () => {
    const calls: Calls = { windows: [], badge: [], external: [], quit: 0 }
    const { electron, child } = fakeElectron(calls)
    const { ready } = startShell(electron, { root: '/r', argv: ['electron', 'main.mjs'] })
    await new Promise(resolve => setImmediate(resolve))
    child.stdout.emit('data', Buffer.from('open Parley in your browser: http://127.0.0.1:1/#token=t\n'))
    await ready
    const { win } = calls.windows[0]!
    win.emit('page-title-updated', {}, '(3) Parley')
    win.emit('page-title-updated', {}, 'Parley')
    assert.deepEqual(calls.badge, [3, 0])
    assert.equal(unreadFromTitle('(12) Parley'), 12)
  })

  it('quits with a message when the node cannot start', async () => {
    const calls: Calls = { windows: [], badge: [], external: [], quit: 0 }
    const { electron, child } = fakeElectron(calls)
    const { ready } = startShell(electron, { root: '/r', argv: ['electron', 'main.mjs'] })
    await new Promise(resolve => setImmediate(resolve))
    child.emit('exit', 1)
    await ready
    assert.equal(calls.windows.length, 0)
    assert.equal(calls.quit, 1)
  })
})
