import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { staticFile, staticHandler } from '../../../../core/http/static.js'

describe('static app files', () => {
  const root = join(tmpdir(), `parley-static-${process.pid}`)
  let server: Server
  let base: string

  before(async () => {
    await mkdir(join(root, 'img'), { recursive: true })
    await writeFile(join(root, 'index.html'), '<!doctype html><p>hi')
    await writeFile(join(root, 'main.js'), 'export {}')
    await writeFile(join(root, 'img', 'a.png'), 'png')
    await writeFile(join(root, '.inputs.json'), '[]')
    await writeFile(join(root, 'notes.md'), 'secret')
    const handler = staticHandler({ root })
    server = createServer((req, res) => { if (!handler(req, res)) res.writeHead(404).end('not ours') })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const addr = server.address()
    base = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`
  })
  after(async () => {
    await new Promise(resolve => server.close(resolve))
    await rm(root, { recursive: true, force: true })
  })

  it('maps paths to files by the extension allow-list, never outside the folder or to dot files', () => {
    assert.equal(staticFile(root, '/'), join(root, 'index.html'))
    assert.equal(staticFile(root, '/img/a.png'), join(root, 'img', 'a.png'))
    assert.equal(staticFile(root, '/notes.md'), null)
    assert.equal(staticFile(root, '/.inputs.json'), null)
    assert.equal(staticFile(root, '/../secret.js'), null)
    assert.equal(staticFile(root, '/%2e%2e/secret.js'), null)
    assert.equal(staticFile(root, '/a%00.js'), null)
    assert.equal(staticFile(root, '/%E0%A4%A.js'), null)
  })

  it('serves allowed files with the CSP and content type, and leaves the rest to the server', async () => {
    const index = await fetch(`${base}/`)
    assert.equal(index.status, 200)
    assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8')
    assert.match(index.headers.get('content-security-policy') ?? '', /script-src 'self'/)
    assert.equal(index.headers.get('x-content-type-options'), 'nosniff')
    assert.equal((await fetch(`${base}/main.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8')
    assert.equal(await (await fetch(`${base}/notes.md`)).text(), 'not ours')
    const missing = await fetch(`${base}/nope.js`)
    assert.equal(missing.status, 404)
    assert.equal(((await missing.json()) as { code: string }).code, 'ERR_NOT_FOUND')
    assert.equal((await fetch(`${base}/main.js`, { method: 'POST' })).status, 404)
  })
})
