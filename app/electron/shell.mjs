// The desktop shell, written against an injected `electron` object so it can
// be tested without Electron: start the node as a utility process, then show
// its UI in a hardened window (context isolation, sandbox, no Node in the page,
// no preload: the page talks only to the node's local API on 127.0.0.1).
import { dirname, join } from 'node:path'
import { NODE_FLAGS } from '../../scripts/programs.mjs'

/** Window settings: nothing of Node or Electron reaches the page. */
export const WEB_PREFERENCES = Object.freeze({ contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true, spellcheck: true })

/** "(3) Parley" -> 3 */
export const unreadFromTitle = (title) => Number(/^\((\d+)\)/.exec(title)?.[1] ?? 0)

export function startShell (electron, { root, argv }) {
  const { app, BrowserWindow, Menu, Tray, nativeImage, session, shell, utilityProcess } = electron
  const icon = join(root, 'app', 'ui', 'public', 'icon.svg')
  const state = { node: null, win: null, tray: null, origin: null, quitting: false }

  const startNode = () => new Promise((resolve, reject) => {
    // everything after the script is for `parley start` (--data DIR, --name NAME, --relay ADDR, ...)
    const at = argv.findIndex(a => a.endsWith('main.mjs'))
    const args = ['start', '--api-port', '0', ...argv.slice(at + 1)]
    state.node = utilityProcess.fork(join(root, 'bin', 'parley.js'), args, { stdio: 'pipe', serviceName: 'Parley node', execArgv: NODE_FLAGS })
    let out = ''
    state.node.stdout.on('data', (d) => {
      out += d.toString()
      const m = /open Parley in your browser: (\S+)/.exec(out)
      if (m) resolve(m[1])
    })
    state.node.stderr?.on('data', (d) => { process.stderr.write(d) })
    state.node.on('exit', (code) => { if (!state.win) reject(new Error(`the Parley node exited with ${code}`)); else app.quit() })
  })

  const harden = (contents) => {
    // nothing but our own origin inside the window; web links open in the system browser
    contents.on('will-navigate', (e, url) => { if (new URL(url).origin !== state.origin) e.preventDefault() })
    contents.setWindowOpenHandler(({ url }) => { if (/^https?:/.test(url)) void shell.openExternal(url); return { action: 'deny' } })
  }

  const createWindow = async (url) => {
    state.origin = new URL(url).origin
    session.defaultSession.setPermissionRequestHandler((_wc, permission, cb) => cb(permission === 'notifications'))
    const win = new BrowserWindow({ width: 1100, height: 720, title: 'Parley', icon, webPreferences: { ...WEB_PREFERENCES } })
    state.win = win
    harden(win.webContents)
    // the page title carries the unread count: mirror it on the badge and the tray
    win.on('page-title-updated', (_e, title) => {
      const unread = unreadFromTitle(title)
      app.setBadgeCount(unread)
      state.tray?.setToolTip(unread > 0 ? `Parley: ${unread} unread` : 'Parley')
    })
    win.on('close', (e) => { if (!state.quitting) { e.preventDefault(); win.hide() } })
    await win.loadURL(url)
  }

  const createTray = () => {
    state.tray = new Tray(nativeImage.createFromPath(icon))
    state.tray.setToolTip('Parley')
    state.tray.setContextMenu(Menu.buildFromTemplate([
      { label: 'Open Parley', click: () => { state.win?.show(); state.win?.focus() } },
      { type: 'separator' },
      { label: 'Quit', click: () => { state.quitting = true; app.quit() } }
    ]))
    state.tray.on('click', () => { state.win?.show(); state.win?.focus() })
  }

  app.on('web-contents-created', (_e, contents) => { contents.on('will-attach-webview', (e) => { e.preventDefault() }) })
  app.on('before-quit', () => { state.quitting = true; state.node?.kill() })
  app.on('window-all-closed', () => {})

  if (!app.requestSingleInstanceLock()) { app.quit(); return { state, ready: Promise.resolve() } }
  app.on('second-instance', () => { state.win?.show(); state.win?.focus() })
  const ready = app.whenReady().then(async () => {
    const url = await startNode()
    createTray()
    await createWindow(url)
  }).catch((err) => { console.error(`Parley could not start: ${err.message}`); app.quit() })
  return { state, ready }
}

export const repoRoot = (metaUrl) => join(dirname(new URL(metaUrl).pathname), '..', '..')
