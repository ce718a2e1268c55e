/**
 * The company directory: CSV import (批量导入组织结构) and the department
 * tree that admitted nodes browse. The CSV has a header row naming its
 * columns in English or Chinese; departments nest with "/" or ">"
 * ("销售部/华东"). An import is checked whole before anything is written:
 * one wrong row refuses the file with every problem named by line.
 */
import { randomBytes } from 'node:crypto'
import { parse } from 'csv-parse/sync'
import { stringify } from 'csv-stringify/sync'
import { ParleyError } from '../../../core/errors.js'
import { refusal } from './refusal.js'
import type { CsvProblem, InviteSheetRow, Person } from '../../../core/protocol/admin-api.js'
import type { DepartmentNode } from '../../../core/protocol/directory.js'

/** @default 10000 */
export const MAX_IMPORT_ROWS = 10_000
/** @default 4 MiB */
export const MAX_IMPORT_BYTES = 4 * 1024 * 1024
const MAX_FIELD_CHARS = 200

type Column = 'name' | 'department' | 'email' | 'staffNo'
const HEADERS: Record<string, Column> = {
  name: 'name',
  'full name': 'name',
  姓名: 'name',
  名字: 'name',
  department: 'department',
  dept: 'department',
  部门: 'department',
  email: 'email',
  'e-mail': 'email',
  mail: 'email',
  邮箱: 'email',
  电子邮件: 'email',
  'staff number': 'staffNo',
  'staff no': 'staffNo',
  staffno: 'staffNo',
  'employee id': 'staffNo',
  工号: 'staffNo',
  员工编号: 'staffNo'
}

export interface ImportRow { name: string, department: string[], email: string, staffNo: string }

/** controls and bidi overrides have no place in a name shown to the whole office */
const UNSAFE = /[\p{Cc}\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/u
const EMAIL = /^[^\s@]+@[^\s@]+$/u

const clean = (v: string): string => v.normalize('NFC').trim()

/** Parses and checks a directory CSV; throws ERR_INVALID_ARGUMENT listing every bad line. */
export function parseDirectoryCsv (text: string): ImportRow[] {
  if (Buffer.byteLength(text) > MAX_IMPORT_BYTES) {
    throw refusal(`the CSV file is larger than ${MAX_IMPORT_BYTES / 1024 / 1024} MiB`, { reason: 'csvTooLarge', maxMiB: MAX_IMPORT_BYTES / 1024 / 1024 })
  }
  let records: string[][]
  try {
    records = parse(text.replace(/^\uFEFF/, ''), { bom: true, relax_column_count: true, skip_empty_lines: true, trim: false }) as string[][]
  } catch (err) {
    throw new ParleyError('ERR_INVALID_ARGUMENT', `the CSV file cannot be read: ${(err as Error).message}`, { cause: err, detail: { reason: 'csvUnreadable' } })
  }
  const [header, ...rows] = records
  if (header === undefined) {
    throw refusal('the CSV file is empty: it needs a header row (name, department, email, staff number)', { reason: 'csvEmpty' })
  }
  const columns = header.map(h => HEADERS[clean(h).toLowerCase()])
  if (!columns.includes('name')) throw refusal(`the header row has no name column (姓名); it has: ${header.join(', ')}`, { reason: 'csvNoName' })
  if (!columns.includes('email') && !columns.includes('staffNo')) {
    throw refusal('the header row needs an email (邮箱) or a staff number (工号) column', { reason: 'csvNoId' })
  }
  if (rows.length > MAX_IMPORT_ROWS) {
    throw refusal(`at most ${MAX_IMPORT_ROWS} people per import, the file has ${rows.length}`, { reason: 'csvTooMany', max: MAX_IMPORT_ROWS, got: rows.length })
  }
  const problems: CsvProblem[] = []
  const seen = new Map<string, number>()
  const out: ImportRow[] = []
  rows.forEach((r, i) => {
    const line = i + 2
    const get = (c: Column): string => clean(r[columns.indexOf(c)] ?? '')
    const row: ImportRow = { name: get('name'), department: splitDepartment(get('department')), email: get('email').toLowerCase(), staffNo: get('staffNo') }
    if (row.name === '') problems.push({ line, problem: 'nameEmpty' })
    for (const [field, v] of [['name', row.name], ['email', row.email], ['staffNo', row.staffNo], ['department', row.department.join('/')]] as const) {
      if (v.length > MAX_FIELD_CHARS) problems.push({ line, problem: 'tooLong', field, max: MAX_FIELD_CHARS })
      if (UNSAFE.test(v)) problems.push({ line, problem: 'unsafe', field })
    }
    if (row.email === '' && row.staffNo === '') problems.push({ line, problem: 'needsId' })
    if (row.email !== '' && !EMAIL.test(row.email)) problems.push({ line, problem: 'badEmail', value: row.email.slice(0, 80) })
    const id = personId(row)
    const before = seen.get(id)
    if (before !== undefined) problems.push({ line, problem: 'duplicate', sameAs: before })
    else seen.set(id, line)
    out.push(row)
  })
  if (problems.length > 0) {
    const shown = problems.slice(0, 20).map(csvProblemText).join('; ')
    throw refusal(`the CSV file was not imported, ${problems.length} problem(s): ${shown}${problems.length > 20 ? '; …' : ''}`,
      { reason: 'csvLines', count: problems.length, problems: problems.slice(0, 20) })
  }
  return out
}

const FIELD_WORDS = { name: 'name', email: 'email', staffNo: 'staff number', department: 'department' } as const

/** one bad line in English (the CLI's words; the console has its own) */
function csvProblemText (p: CsvProblem): string {
  return `line ${p.line}: ${csvProblemWhy(p)}`
}
function csvProblemWhy (p: CsvProblem): string {
  switch (p.problem) {
    case 'nameEmpty': return 'the name is empty'
    case 'needsId': return 'needs an email or a staff number'
    case 'duplicate': return `the same person as line ${p.sameAs}`
    case 'tooLong': return `the ${FIELD_WORDS[p.field]} is longer than ${p.max} characters`
    case 'unsafe': return `the ${FIELD_WORDS[p.field]} contains control or text-direction characters`
    case 'badEmail': return `"${p.value}" is not an email address`
  }
}

export function splitDepartment (v: string): string[] {
  return v.split(/[/>＞／]/u).map(clean).filter(s => s !== '')
}

/** Staff number first (it never changes), else the e-mail address. */
export const personId = (row: Pick<ImportRow, 'email' | 'staffNo'>): string =>
  row.staffNo !== '' ? `staff:${row.staffNo}` : row.email !== '' ? `email:${row.email}` : `id:${randomBytes(9).toString('base64url')}`


/** The department tree, sorted by the locale's collation (pinyin order for Chinese with 'zh'). */
export function departmentTree (people: Array<Person & { devices: string[] }>, locale = 'zh-CN'): DepartmentNode {
  const root: DepartmentNode = { name: '', people: [], departments: [] }
  for (const p of people) {
    let node = root
    for (const d of p.department) {
      let next = node.departments.find(n => n.name === d)
      if (next === undefined) { next = { name: d, people: [], departments: [] }; node.departments.push(next) }
      node = next
    }
    node.people.push({ id: p.id, name: p.name, email: p.email, staffNo: p.staffNo, devices: p.devices })
  }
  const collator = new Intl.Collator(locale)
  const sort = (n: DepartmentNode): void => {
    n.people.sort((a, b) => collator.compare(a.name, b.name))
    n.departments.sort((a, b) => collator.compare(a.name, b.name))
    n.departments.forEach(sort)
  }
  sort(root)
  return root
}

export type { InviteSheetRow }

/** A cell a spreadsheet would run as a formula (=, +, -, @) is kept as text. */
const cell = (v: string): string => /^[=+\-@\t\r]/.test(v) ? `'${v}` : v

/** The CSV of links the admin hands out (or mail-merges). */
export function invitesCsv (rows: InviteSheetRow[]): string {
  return stringify([
    ['name', 'department', 'email', 'staff number', 'invite token', 'link', 'valid until'],
    // only what came from the CSV is escaped: a token may start with "-" and must stay as it is
    ...rows.map(r => [...[r.name, r.department.join('/'), r.email, r.staffNo].map(cell), r.token, r.link, new Date(r.expiresAt).toISOString()])
  ])
}
