/**
 * Serves a built web app (dist/<name>/, made by scripts/build.mjs) with a
 * strict Content-Security-Policy: scripts and styles from this origin only, no
 * inline code, no framing, connections only back to this origin. Any file of
 * the folder whose extension is on the allow-list is served; dot files,
 * other extensions and paths leaving the folder are not.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, extname, join, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** The nearest folder above `file` with a package.json: the repository root, from the source or a compiled chunk. */
function packageRoot (file: string): string {
  let dir = dirname(file)
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) return resolve(dirname(file), '../..')
    dir = up
  }
  return dir
}

/** dist/ at the repository root (this file runs from core/http/ or compiled from dist/bin/) */
export const DIST_DIR = join(packageRoot(fileURLToPath(import.meta.url)), 'dist') + sep

/** The extensions served, with their content type. */
export const STATIC_TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2'
})

export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  // the page's own origin only: its WebSocket (ws:// to the same host and port) counts as 'self' (CSP 3), any other local port does not
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

export interface StaticHandlerInit {
  /** the folder served at / */
  root: string
  /** @default UI_CSP */
  csp?: string
}

/** The file under `root` that `pathname` names, or null when it is not one we serve. */
export function staticFile (root: string, pathname: string): string | null {
  let path: string
  try { path = decodeURIComponent(pathname) } catch { return null }
  if (path.endsWith('/')) path += 'index.html'
  if (path.includes('\0') || path.split('/').some(part => part.startsWith('.'))) return null
  if (STATIC_TYPES[extname(path)] === undefined) return null
  const base = resolve(root)
  const file = resolve(base, '.' + path)
  return file.startsWith(base + sep) ? file : null
}

/** A request handler for the API server's `staticHandler`; returns true when it handled the request. */
export function staticHandler (init: StaticHandlerInit): (req: IncomingMessage, res: ServerResponse) => boolean {
  const csp = init.csp ?? UI_CSP
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false
    const file = staticFile(init.root, new URL(req.url ?? '/', 'http://localhost').pathname)
    if (file === null) return false
    readFile(file).then((body) => {
      res.writeHead(200, {
        'content-type': STATIC_TYPES[extname(file)] ?? 'application/octet-stream',
        'content-security-policy': csp,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'cache-control': 'no-cache'
      })
      res.end(req.method === 'HEAD' ? undefined : body)
    }, (err: NodeJS.ErrnoException) => {
      const message = err.code === 'ENOENT' || err.code === 'EISDIR'
        ? (file.endsWith('index.html') ? 'the UI is not built: run `npm start` (or `node scripts/build.mjs`)' : 'no such file')
        : 'the UI file could not be read'
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ code: 'ERR_NOT_FOUND', message }))
    })
    return true
  }
}

/** The node's own web UI: dist/ui/. */
export const uiHandler = staticHandler({ root: DIST_DIR + 'ui' })
