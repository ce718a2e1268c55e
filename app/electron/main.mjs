// Electron main process: starts the Parley node as a utility process and shows
// its web UI in a hardened window (context isolation, sandbox, no Node in the
// page, no preload: the page talks only to the node's local API on 127.0.0.1).
import { app, BrowserWindow, Menu, Tray, nativeImage, session, shell, utilityProcess } from 'electron'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const ICON = join(ROOT, 'app', 'ui', 'icon.svg')
let node = null
let win = null
let tray = null
let uiOrigin = null

function startNode () {
  return new Promise((resolve, reject) => {
    // everything after the script is for `parley start` (--data DIR, --name NAME, --relay ADDR, ...)
    const at = process.argv.findIndex(a => a.endsWith('main.mjs'))
    const args = ['start', '--api-port', '0', ...process.argv.slice(at + 1)]
    node = utilityProcess.fork(join(ROOT, 'bin', 'parley.js'), args, { stdio: 'pipe', serviceName: 'Parley node' })
    let out = ''
    node.stdout.on('data', (d) => {
      out += d.toString()
      const m = /open Parley in your browser: (\S+)/.exec(out)
      if (m) resolve(m[1])
    })
    node.stderr.on('data', (d) => { process.stderr.write(d) })
    node.on('exit', (code) => { if (!win) reject(new Error(`the Parley node exited with ${code}`)); else app.quit() })
  })
}

function harden (contents) {
  // nothing but our own origin inside the window; links open in the system browser
  contents.on('will-navigate', (e, url) => { if (new URL(url).origin !== uiOrigin) e.preventDefault() })
  contents.setWindowOpenHandler(({ url }) => { if (/^https?:/.test(url)) void shell.openExternal(url); return { action: 'deny' } })
}

async function createWindow (url) {
  uiOrigin = new URL(url).origin
  session.defaultSession.setPermissionRequestHandler((_wc, permission, cb) => cb(permission === 'notifications'))
  win = new BrowserWindow({
    width: 1100,
    height: 720,
    title: 'Parley',
    icon: ICON,
    webPreferences: { contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true, spellcheck: true }
  })
  harden(win.webContents)
  // the page title carries the unread count, "(3) Parley": mirror it on the badge and the tray
  win.on('page-title-updated', (_e, title) => {
    const unread = Number(/^\((\d+)\)/.exec(title)?.[1] ?? 0)
    app.setBadgeCount(unread)
    tray?.setToolTip(unread > 0 ? `Parley: ${unread} unread` : 'Parley')
  })
  win.on('close', (e) => { if (!app.isQuitting) { e.preventDefault(); win.hide() } })
  await win.loadURL(url)
}

function createTray () {
  tray = new Tray(nativeImage.createFromPath(ICON))
  tray.setToolTip('Parley')
  tray.setContextMenu(Menu.buildFromTemplate([
    { label: 'Open Parley', click: () => { win?.show(); win?.focus() } },
    { type: 'separator' },
    { label: 'Quit', click: () => { app.isQuitting = true; app.quit() } }
  ]))
  tray.on('click', () => { win?.show(); win?.focus() })
}

app.on('web-contents-created', (_e, contents) => { contents.on('will-attach-webview', (e) => { e.preventDefault() }) })
app.on('before-quit', () => { app.isQuitting = true; node?.kill() })
app.on('window-all-closed', () => {})

if (!app.requestSingleInstanceLock()) app.quit()
else {
  app.on('second-instance', () => { win?.show(); win?.focus() })
  app.whenReady().then(async () => {
    const url = await startNode()
    createTray()
    await createWindow(url)
  }).catch((err) => { console.error(`Parley could not start: ${err.message}`); app.quit() })
}
