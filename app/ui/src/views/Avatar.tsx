import { colourOf, initials, isGroup } from '../util.js'
import type { PresenceDot } from './Sidebar.js'

/** Initials on a colour chosen by the id; a dot for presence when `presence` is given. */
export function Avatar ({ id, name, presence, small = false }: { id: string, name: string, presence?: PresenceDot, small?: boolean }) {
  return (
    <span class={`avatar c${colourOf(id)}${isGroup(id) ? ' group' : ''}${small ? ' small' : ''}`} aria-hidden="true">
      {initials(name)}
      {presence !== undefined && <span class={`dot ${presence === 'off' ? '' : presence}`} />}
    </span>
  )
}
