/**
 * Serves the web UI (app/ui/) on the API's TCP port, with a strict
 * Content-Security-Policy: scripts and styles from this origin only, no
 * inline code, no framing, connections only back to this origin.
 */
import { readFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'

const UI_DIR = new URL('../../../app/ui/', import.meta.url)
const FILES: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/style.css': 'style.css',
  '/icon.svg': 'icon.svg'
}
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', svg: 'image/svg+xml' }

export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' ws://127.0.0.1:* ws://localhost:*",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

/** Returns true when it handled the request. */
export function uiHandler (req: IncomingMessage, res: ServerResponse): boolean {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname
  const file = FILES[path]
  if (file === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) return false
  readFile(new URL(file, UI_DIR)).then((body) => {
    res.writeHead(200, {
      'content-type': TYPES[file.split('.').pop() ?? ''] ?? 'application/octet-stream',
      'content-security-policy': UI_CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache'
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }, () => {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"ERR_NOT_FOUND","message":"UI file missing"}')
  })
  return true
}
