/** The relay's side of FILE_PROTOCOL: offer, put, have and get against its file store, for admitted users only. */
import { ParleyError } from '../../../core/errors.js'
import { FileWire, type FileAnswer, type FileRequest } from '../../../core/protocol/file-wire.js'
import type { RawStream } from '../../../core/rpc/stream.js'
import type { Logger } from '../../../core/util/log.js'
import { parseFileOffer, type RelayFileStore } from './file-store.js'

export function fileStreamHandler (store: RelayFileStore, isAdmitted: (peer: string) => boolean, log: Logger): (stream: RawStream, remote: string) => void {
  const answer = async (remote: string, req: FileRequest, payload: Uint8Array): Promise<FileAnswer> => {
    if (!isAdmitted(remote)) throw new ParleyError('ERR_NOT_ADMITTED', 'this relay has not admitted you')
    switch (req.op) {
      case 'offer': await store.offer(remote, req.f, parseFileOffer(req.body)); return {}
      case 'put': await store.put(req.f, remote, req.i ?? -1, payload); return {}
      case 'have': return { body: { have: store.have(req.f, remote) } }
      case 'get': return { payload: await store.get(req.f, remote, req.i ?? -1) }
      default: throw new ParleyError('ERR_INVALID_ARGUMENT', `a relay does not answer ${req.op}`)
    }
  }
  return (stream, remote) => {
    const wire = new FileWire(stream, async (req, payload) => await answer(remote, req, payload), log)
    void wire
  }
}
