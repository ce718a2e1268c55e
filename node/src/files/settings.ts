/** The file settings the user changes (the downloads folder), kept in DATA/files/settings.json. */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

export interface FileSettings { downloads?: string }

export class FileSettingsStore {
  constructor (private readonly dir: string) {}
  async load (): Promise<FileSettings> {
    try { return JSON.parse(await readFile(join(this.dir, 'settings.json'), 'utf8')) as FileSettings } catch { return {} }
  }

  async save (s: FileSettings): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    const tmp = join(this.dir, 'settings.json.tmp')
    await writeFile(tmp, JSON.stringify(s), { mode: 0o600 })
    await rename(tmp, join(this.dir, 'settings.json'))
  }
}
