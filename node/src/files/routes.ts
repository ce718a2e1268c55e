/**
 * The local API's file routes (LOCAL-API.md, "Files"), added to the API
 * server's table: send files by path (CLI) or by upload (UI), list transfers,
 * pause / resume / cancel, get a received file, the downloads folder.
 */
import { createWriteStream } from 'node:fs'
import { rm, stat } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { isAbsolute, resolve } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { ParleyError } from '../../../core/errors.js'
import { MAX_THUMB_CHARS, type FileManifest } from '../../../core/protocol/file-manifest.js'
import { readJsonBody } from '../../../core/http/json-body.js'
import type { Route } from '../../../core/http/routes.js'
import type { FileService } from './service.js'
import type { FileSettingsStore } from './settings.js'

type Handler = (req: IncomingMessage, params: string[], url: URL) => Promise<unknown>

/** A handler's answer that is a file, sent as it is (not JSON). */
export class FileBody {
  constructor (readonly path: string, readonly name: string, readonly type: string, readonly size: number) {}
}

const UPLOAD_ID = /^[A-Za-z0-9_-]{12}$/
const MAX_FILES_BODY_BYTES = 256 * 1024

export function fileRoutes (files: FileService, settings: FileSettingsStore, resolveTo: (ref: string) => Promise<string>): Array<Route<Handler>> {
  /** uploads from the UI waiting to be sent: id → staged path */
  const uploads = new Map<string, string>()
  const parseThumb = (v: unknown): FileManifest['thumb'] | undefined => {
    if (v === undefined || v === null) return undefined
    const o = v as Record<string, unknown>
    const types = ['image/jpeg', 'image/png', 'image/webp']
    if (typeof o !== 'object' || !types.includes(o.type as string) || typeof o.data !== 'string' || o.data.length > MAX_THUMB_CHARS ||
      !/^[A-Za-z0-9+/=]*$/.test(o.data) || !Number.isInteger(o.w) || !Number.isInteger(o.h) || (o.w as number) < 1 || (o.h as number) < 1 ||
      (o.w as number) > 1024 || (o.h as number) > 1024) {
      throw new ParleyError('ERR_INVALID_ARGUMENT', `thumb must be { type: image/jpeg|png|webp, data: base64 of at most ${MAX_THUMB_CHARS} characters, w, h }`)
    }
    return { type: o.type as 'image/jpeg', data: o.data, w: o.w as number, h: o.h as number }
  }
  return [
    {
      // { to, paths: [absolute paths] } (the CLI) or { to, uploads: [{ id, name, type, thumb }] } (the UI)
      method: 'POST',
      pattern: /^\/files$/,
      handler: async (req) => {
        const body = await readJsonBody(req, MAX_FILES_BODY_BYTES)
        if (typeof body.to !== 'string') throw new ParleyError('ERR_INVALID_ARGUMENT', 'to must be a peer or a group')
        const to = await resolveTo(body.to)
        if (Array.isArray(body.paths)) {
          if (body.paths.length === 0 || body.paths.some(p => typeof p !== 'string' || !isAbsolute(p))) {
            throw new ParleyError('ERR_INVALID_ARGUMENT', 'paths must be a list of absolute paths')
          }
          return await files.send(to, body.paths as string[])
        }
        if (!Array.isArray(body.uploads) || body.uploads.length === 0) throw new ParleyError('ERR_INVALID_ARGUMENT', 'give paths or uploads')
        const items = (body.uploads as Array<Record<string, unknown>>).map((u) => {
          const path = typeof u.id === 'string' ? uploads.get(u.id) : undefined
          if (path === undefined) throw new ParleyError('ERR_NOT_FOUND', 'no such upload (uploads are kept until sent or the node stops)')
          if (typeof u.name !== 'string' || u.name === '' || u.name.length > 255) throw new ParleyError('ERR_INVALID_ARGUMENT', 'each upload needs a name')
          const type = typeof u.type === 'string' && u.type.length <= 127 ? u.type : undefined
          return { id: u.id as string, path, name: u.name, type, thumb: parseThumb(u.thumb) }
        })
        const views = await files.send(to, items.map(i => i.path), {
          names: items.map(i => i.name), thumbs: items.map(i => i.thumb), types: items.map(i => i.type ?? '')
        })
        for (const i of items) uploads.delete(i.id)
        return views
      }
    },
    {
      // the raw bytes of one file (?name=…); answers { id } to name in POST /files
      method: 'POST',
      pattern: /^\/files\/uploads$/,
      handler: async (req, _p, url) => {
        const name = url.searchParams.get('name') ?? 'file'
        const declared = Number(req.headers['content-length'] ?? NaN)
        if (Number.isFinite(declared) && declared > files.maxFileBytes) {
          throw new ParleyError('ERR_FILE_TOO_LARGE', `files may be at most ${files.maxFileBytes} bytes`)
        }
        const path = await files.stagingPath(name)
        let size = 0
        req.on('data', (d: Buffer) => {
          size += d.byteLength
          if (size > files.maxFileBytes) req.destroy(new ParleyError('ERR_FILE_TOO_LARGE', `files may be at most ${files.maxFileBytes} bytes`))
        })
        try {
          await pipeline(req, createWriteStream(path, { mode: 0o600 }))
        } catch (err) {
          await rm(path, { force: true })
          throw err instanceof ParleyError ? err : new ParleyError('ERR_INVALID_ARGUMENT', `upload interrupted: ${(err as Error).message}`)
        }
        const id = Buffer.from(crypto.getRandomValues(new Uint8Array(9))).toString('base64url')
        uploads.set(id, path)
        return { id, size }
      }
    },
    { method: 'GET', pattern: /^\/transfers$/, handler: async () => files.list() },
    { method: 'GET', pattern: /^\/transfers\/([^/]+)$/, handler: async (_r, [id]) => files.get(id ?? '') },
    { method: 'POST', pattern: /^\/transfers\/([^/]+)\/pause$/, handler: async (_r, [id]) => await files.pause(id ?? '') },
    { method: 'POST', pattern: /^\/transfers\/([^/]+)\/resume$/, handler: async (_r, [id]) => await files.resume(id ?? '') },
    { method: 'POST', pattern: /^\/transfers\/([^/]+)\/cancel$/, handler: async (_r, [id]) => await files.cancel(id ?? '') },
    {
      // a received file (complete only), for the UI's open / save
      method: 'GET',
      pattern: /^\/transfers\/([^/]+)\/file$/,
      handler: async (_r, [id]) => {
        const v = files.get(id ?? '')
        const path = files.completedPath(id ?? '')
        return new FileBody(path, v.name, v.type, (await stat(path)).size)
      }
    },
    { method: 'GET', pattern: /^\/files\/settings$/, handler: async () => ({ downloads: files.downloads, maxFileBytes: files.maxFileBytes }) },
    {
      method: 'PUT',
      pattern: /^\/files\/settings$/,
      handler: async (req) => {
        const body = await readJsonBody(req, 8192)
        if (typeof body.downloads !== 'string' || !isAbsolute(body.downloads)) {
          throw new ParleyError('ERR_INVALID_ARGUMENT', 'downloads must be an absolute folder path')
        }
        files.downloads = resolve(body.downloads)
        await settings.save({ downloads: files.downloads })
        return { downloads: files.downloads, maxFileBytes: files.maxFileBytes }
      }
    }
  ]
}
