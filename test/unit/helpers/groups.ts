/** A GroupService for unit tests of the parts that consult it: it sends nothing and syncs nobody. */
import { silentLogger } from '../../../core/util/log.js'
import { GroupService } from '../../../node/src/messaging/group-service.js'
import type { MessagingComponents } from '../../../node/src/messaging/types.js'

export function testGroups (
  c: Pick<MessagingComponents, 'store' | 'events'>, self: string, isConnected: (peer: string) => boolean = () => true
): GroupService {
  return new GroupService({
    ...c,
    log: silentLogger,
    self,
    selfName: () => 'me',
    send: async () => { throw new Error('not used') },
    syncWith: () => {},
    isConnected
  })
}
