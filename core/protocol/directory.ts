/**
 * The company directory as the relay serves it to admitted nodes
 * (`directory` on RELAY_PROTOCOL) and the node's local API passes it on
 * (`GET /v1/directory`): a department tree with people and their devices.
 * The relay builds it from the admin's CSV import; the node checks every
 * field, because names and departments reach the UI.
 */
import { Checker, PEER_ID } from './validate.js'

export interface DirectoryPerson { id: string, name: string, email: string, staffNo: string, devices: string[] }
export interface DepartmentNode { name: string, people: DirectoryPerson[], departments: DepartmentNode[] }

/** departments nest at most this deep. @default 12 */
export const MAX_DIRECTORY_DEPTH = 12
/** people in one answer (it must fit one frame). @default 5000 */
export const MAX_DIRECTORY_PEOPLE = 5000
const MAX_DEVICES = 32

const check = new Checker('ERR_MALFORMED_FRAME', 'directory')
const text = (o: Record<string, unknown>, field: string, min = 0): string => check.str(o, field, { min, max: 200 })

export function parseDirectory (value: unknown): DepartmentNode {
  let people = 0
  const node = (v: unknown, depth: number): DepartmentNode => {
    if (depth > MAX_DIRECTORY_DEPTH) check.fail(`departments nest deeper than ${MAX_DIRECTORY_DEPTH}`)
    const o = check.obj(v, 'department')
    const list = (field: string): unknown[] => {
      const a = o[field]
      if (!Array.isArray(a)) return check.fail(`${field} must be a list`)
      return a
    }
    const persons = list('people').map((p): DirectoryPerson => {
      if (++people > MAX_DIRECTORY_PEOPLE) check.fail(`more than ${MAX_DIRECTORY_PEOPLE} people`)
      const q = check.obj(p, 'person')
      const devices = Array.isArray(q.devices) ? q.devices : check.fail('devices must be a list')
      if (devices.length > MAX_DEVICES) check.fail('too many devices')
      return {
        id: text(q, 'id', 1),
        name: text(q, 'name', 1),
        email: text(q, 'email'),
        staffNo: text(q, 'staffNo'),
        devices: devices.map(d => check.str({ d }, 'd', { max: 60, pattern: PEER_ID }))
      }
    })
    return { name: text(o, 'name', depth === 0 ? 0 : 1), people: persons, departments: list('departments').map(d => node(d, depth + 1)) }
  }
  return node(value, 0)
}
