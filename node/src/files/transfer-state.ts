/**
 * Durable transfer state: one JSON file per transfer in DATA/files/, written
 * whole to a temporary file, fsynced and renamed over the old one, so a kill -9
 * leaves either the previous state or the new one. A chunk is recorded as
 * verified only after its bytes were fsynced into the partial file, so after a
 * crash every chunk the state names is really there (at worst a few chunks
 * written after the last record are fetched again).
 */
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../../../core/util/log.js'
import { parseFileManifest } from '../../../core/protocol/file-manifest.js'
import type { TransferRecord } from './types.js'

export class TransferStates {
  constructor (private readonly dir: string, private readonly log: Logger) {}

  private path (r: Pick<TransferRecord, 'direction' | 'fileId'>): string { return join(this.dir, `${r.direction}-${r.fileId}.json`) }

  async loadAll (): Promise<TransferRecord[]> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    const out: TransferRecord[] = []
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith('.json')) {
        // a temporary file of a write cut short
        if (name.endsWith('.tmp')) await rm(join(this.dir, name), { force: true })
        continue
      }
      try {
        const r = JSON.parse(await readFile(join(this.dir, name), 'utf8')) as TransferRecord
        r.manifest = parseFileManifest(r.manifest)
        out.push(r)
      } catch (err) {
        this.log.warn('skipping an unreadable transfer state', { name, err: String(err) })
      }
    }
    return out
  }

  async save (r: TransferRecord): Promise<void> {
    const final = this.path(r)
    const tmp = `${final}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(JSON.stringify(r))
      await fh.datasync()
    } finally {
      await fh.close()
    }
    await rename(tmp, final)
  }

  async remove (r: TransferRecord): Promise<void> { await rm(this.path(r), { force: true }) }
}
