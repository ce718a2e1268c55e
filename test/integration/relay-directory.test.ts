/**
 * Directory import end to end: a CSV of 200 people with odd names (CJK,
 * commas, quotes, apostrophes, long department paths) through
 * `parley-relay directory import`, one invite each; all 200 tokens redeemed,
 * a sample by real nodes from their links (at start, `parley join`, the
 * settings API); the tree browsed from a node's
 * local API; removing a person withdraws every device of theirs.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parse } from 'csv-parse/sync'
import { stringify } from 'csv-stringify/sync'
import QRCode from 'qrcode'
import jsQRModule from 'jsqr'
import { loopbackNode, removeDir, tmpDir, until } from '../helpers/nodes.js'
import { PARLEY_BIN, RELAY_BIN } from '../helpers/proc.js'
import { RelayServer } from '../../relay/src/relay-server.js'
import { createLogger } from '../../core/util/log.js'
import { createIdentityBytes, loadIdentity } from '../../core/keys.js'
import { parseInviteLink } from '../../core/protocol/invite-link.js'
import type { ParleyNode } from '../../node/src/parley-node.js'
import type { DepartmentNode } from '../../core/protocol/directory.js'
import type { PersonView } from '../../relay/src/admin/admin-service.js'

const SURNAMES = ['王', '李', '張', '陈', 'O\'Brien', 'Müller', 'van der Berg', 'Nguyễn', '佐藤', 'Smith, Jr.']
const GIVEN = ['小明', '娜', '"The Rock"', 'Zoë', 'José María', '美玲', 'Ана', 'Søren', 'François', 'Li, Wei']
const DEPARTMENTS = ['销售部/华东', '销售部/华南', 'R&D/Core, Platform', 'R&D/"Labs"', '财务部', 'Ops/夜班/Team "B"', '人事 HR']

/** 200 distinct people: each name mixes scripts, commas or quotes */
function people (): Array<{ name: string, department: string, email: string, staff: string }> {
  const out = []
  for (let i = 0; i < 200; i++) {
    const name = `${SURNAMES[i % 10] as string} ${GIVEN[Math.floor(i / 10) % 10] as string}${i >= 100 ? ' 二' : ''}`
    out.push({ name, department: DEPARTMENTS[i % DEPARTMENTS.length] as string, email: `user${i}@example.com`, staff: i % 3 === 0 ? '' : `S-${1000 + i}` })
  }
  return out
}

describe('company directory import', () => {
  let dir: string
  let relay: RelayServer
  const nodes: ParleyNode[] = []
  const staff = people()
  const cli = async (...args: string[]): Promise<string> =>
    (await promisify(execFile)(process.execPath, [RELAY_BIN, ...args, '--data', join(dir, 'relay')], { encoding: 'utf8' })).stdout.trim()
  let links: Array<Record<string, string>>

  before(async () => {
    dir = await tmpDir('parley-rdir-')
    relay = new RelayServer({ dataDir: join(dir, 'relay'), listen: ['/ip4/127.0.0.1/tcp/0'], admin: { port: 0 } }, createLogger('relay', 'error'))
    await relay.start()
  })
  after(async () => {
    for (const n of nodes) await n.stop()
    await relay?.stop()
    await removeDir(dir)
  })

  it('refuses a file with bad rows, naming each line, and imports nothing', async () => {
    const bad = 'name,department,email\n"Ann",Ops,ann@example.com\n,Ops,x@example.com\n"Ann again",Ops,ann@example.com\nBad\u202Ename,Ops,b@example.com\n'
    await writeFile(join(dir, 'bad.csv'), bad)
    await assert.rejects(cli('directory', 'import', join(dir, 'bad.csv')), (err: Error & { stderr: string }) => {
      assert.match(err.stderr, /ERR_INVALID_ARGUMENT: the CSV file was not imported, 3 problem\(s\)/)
      assert.match(err.stderr, /line 3: the name is empty/)
      assert.match(err.stderr, /line 4: the same person as line 2/)
      assert.match(err.stderr, /line 5: the name contains control or text-direction characters/)
      return true
    })
    assert.deepEqual(JSON.parse(await cli('directory', 'list', '--json')), [])
  })

  it('imports 200 people with odd names: one invite each, a CSV of links and a printable sheet', async () => {
    // as a spreadsheet exports it: BOM, Chinese headers, quoted fields
    const csv = '\uFEFF' + stringify([['姓名', '部门', '邮箱', '工号'], ...staff.map(p => [p.name, p.department, p.email, p.staff])])
    await writeFile(join(dir, 'staff.csv'), csv)
    const out = await cli('directory', 'import', join(dir, 'staff.csv'), '--csv', join(dir, 'links.csv'), '--sheet', join(dir, 'sheet.html'))
    assert.match(out, /^imported 200 people, one invite each/)
    links = parse((await readFile(join(dir, 'links.csv'), 'utf8')).replace(/^\uFEFF/, ''), { columns: true }) as Array<Record<string, string>>
    assert.equal(links.length, 200)
    assert.deepEqual(links.map(l => l.name), staff.map(p => p.name), 'every name comes back exactly, commas and quotes included')
    assert.deepEqual(links.map(l => l.department), staff.map(p => p.department))
    assert.equal(new Set(links.map(l => l['invite token'])).size, 200)
    for (const l of links) {
      const parsed = parseInviteLink(l.link as string)
      assert.equal(parsed.invite, l['invite token'])
      assert.equal(parsed.relay, relay.addresses()[0])
    }
    const sheet = await readFile(join(dir, 'sheet.html'), 'utf8')
    assert.equal(sheet.match(/<div class="card">/g)?.length, 200)
    assert.equal(sheet.match(/<svg/g)?.length, 200, 'a QR code per person')
    assert.ok(sheet.includes('O&#39;Brien &quot;The Rock&quot;'), 'names are escaped in the sheet')
    assert.ok(!sheet.includes('<script'))
    // importing the same file again adds nobody
    assert.match(await cli('directory', 'import', join(dir, 'staff.csv')), /^imported 0 people.*200 already in the directory were skipped/)
  })

  it('a link fits a QR code that decodes back to the link', async () => {
    const link = links[5]?.link as string
    const qr = QRCode.create(link, { errorCorrectionLevel: 'M' })
    const scale = 4
    const margin = 4
    const size = (qr.modules.size + 2 * margin) * scale
    const rgba = new Uint8ClampedArray(size * size * 4).fill(255)
    for (let y = 0; y < qr.modules.size; y++) {
      for (let x = 0; x < qr.modules.size; x++) {
        if (qr.modules.get(x, y) === 0) continue
        for (let dy = 0; dy < scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const i = (((y + margin) * scale + dy) * size + (x + margin) * scale + dx) * 4
            rgba[i] = rgba[i + 1] = rgba[i + 2] = 0
          }
        }
      }
    }
    // a CommonJS module whose default export is the function itself
    const jsQR = jsQRModule as unknown as typeof jsQRModule.default
    assert.equal(jsQR(rgba, size, size)?.data, link)
  })

  it('all 200 tokens are working invites: a sample redeemed by real nodes from their links, the rest by device keys', async () => {
    const sample = [0, 9, 33] // 王 小明, "Smith, Jr. 小明", "O'Brien "The Rock""
    // three ways in: the link's parts at start, `parley join LINK`, and the settings API's `join`
    const [first, second, third] = sample.map(i => links[i]?.link as string) as [string, string, string]
    const a = loopbackNode(join(dir, 'n0'), { name: links[0]?.name as string, ...parseInviteLink(first), relayClient: { mailboxPollMs: 300 } })
    const b = loopbackNode(join(dir, 'n9'), { name: links[9]?.name as string, relayClient: { mailboxPollMs: 300 } })
    const c = loopbackNode(join(dir, 'n33'), { name: links[33]?.name as string, relayClient: { mailboxPollMs: 300 } })
    for (const n of [a, b, c]) { await n.start(); nodes.push(n) }
    await promisify(execFile)(process.execPath, [PARLEY_BIN, 'join', second, '--data', join(dir, 'n9')], { encoding: 'utf8' })
    const token = new URLSearchParams((c.uiUrl as string).split('#')[1]).get('token') as string
    const put = await fetch(`http://127.0.0.1:${String(c.apiPort)}/v1/settings`, {
      method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ join: third })
    })
    assert.equal(put.status, 200)
    const badLink = await fetch(`http://127.0.0.1:${String(c.apiPort)}/v1/settings`, {
      method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ join: 'https://evil.example/?invite=x' })
    })
    assert.equal(badLink.status, 400)
    for (const n of nodes) await until(() => n.relay.status().admitted === true, 'node admitted', 15_000)
    for (const [i, l] of links.entries()) {
      if (sample.includes(i)) continue
      const peerId = loadIdentity(await createIdentityBytes()).peerId
      const user = await relay.mailbox.redeem(l['invite token'] as string, peerId)
      assert.equal(user.via, 'invite')
      assert.equal(relay.mailbox.isAdmitted(peerId), true)
    }
    const listed = JSON.parse(await cli('directory', 'list', '--json')) as PersonView[]
    assert.equal(listed.length, 200)
    assert.ok(listed.every(p => p.devices.length === 1 && p.inviteState === 'active'), 'each person has their device, and uses left for more')
  })

  it('an admitted node browses the department tree through its local API', async () => {
    const n = nodes[0] as ParleyNode
    const token = new URLSearchParams((n.uiUrl as string).split('#')[1]).get('token') as string
    const res = await fetch(`http://127.0.0.1:${String(n.apiPort)}/v1/directory`, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(res.status, 200)
    const tree = await res.json() as DepartmentNode
    const names = (d: DepartmentNode): string[] => d.departments.map(x => x.name)
    assert.ok(names(tree).includes('销售部') && names(tree).includes('R&D') && names(tree).includes('Ops'))
    const rd = tree.departments.find(d => d.name === 'R&D') as DepartmentNode
    assert.deepEqual(names(rd).sort(), ['"Labs"', 'Core, Platform'].sort())
    const ops = tree.departments.find(d => d.name === 'Ops') as DepartmentNode
    const teamB = ops.departments[0]?.departments[0] as DepartmentNode
    assert.equal(teamB.name, 'Team "B"')
    const count = (d: DepartmentNode): number => d.people.length + d.departments.reduce((s, x) => s + count(x), 0)
    assert.equal(count(tree), 200)
    const me = JSON.stringify(tree).includes(n.peerId)
    assert.ok(me, 'the node finds its own device under its name')
    // a node the relay has not admitted gets a clear refusal
    const stranger = loopbackNode(join(dir, 'stranger'), { name: 'Stranger', relay: relay.addresses()[0], relayClient: { mailboxPollMs: 300 } })
    await stranger.start()
    nodes.push(stranger)
    await until(() => stranger.relay.status().connected === true, 'stranger connected')
    const st = new URLSearchParams((stranger.uiUrl as string).split('#')[1]).get('token') as string
    const refused = await fetch(`http://127.0.0.1:${String(stranger.apiPort)}/v1/directory`, { headers: { authorization: `Bearer ${st}` } })
    assert.equal(refused.status, 403)
    assert.equal((await refused.json() as { code: string }).code, 'ERR_NOT_ADMITTED')
  })

  it('removing a person withdraws the admission of all their devices', async () => {
    const n = nodes[0] as ParleyNode
    const person = (JSON.parse(await cli('directory', 'list', '--json')) as PersonView[]).find(p => p.devices.includes(n.peerId)) as PersonView
    // a second device of the same person, from the same invite
    const second = loadIdentity(await createIdentityBytes()).peerId
    await relay.mailbox.redeem(person.invite, second)
    assert.match(await cli('directory', 'remove', person.id), /removed; 2 device\(s\) lost admission/)
    assert.equal(relay.mailbox.isAdmitted(second), false)
    await until(() => n.relay.status().admitted === false, 'the node is told it is no longer admitted', 15_000)
    await assert.rejects(relay.mailbox.redeem(person.invite, loadIdentity(await createIdentityBytes()).peerId), { code: 'ERR_INVITE_INVALID' })
    const audit = await cli('audit', '--limit', '20')
    assert.match(audit, /person\.remove/)
    assert.match(audit, /directory\.import/)
  })
})
