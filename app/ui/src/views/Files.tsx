/**
 * Files in the chat (issue 13): the attach button, drag and drop and paste
 * (each file uploaded to the local node, which sends it), the file card in a
 * message (thumbnail of an image, made here on the sender; progress with
 * speed and time left; pause, resume, cancel; open or save once complete),
 * and the downloads folder setting.
 */
import { useEffect, useRef, useState } from 'preact/hooks'
import type { FileView, MessageView, TransferView } from '../../../../node/src/api/contract.js'
import { ApiError } from '../api.js'
import { useI18n } from '../i18n/index.js'
import type { Store } from '../store.js'
import { errorText } from './words.js'

/** a thumbnail's longest side, px */
const THUMB_PX = 200
/** what the manifest carries at most (MAX_THUMB_CHARS) */
const THUMB_MAX_CHARS = 24_000

/** A small JPEG of an image, made in the browser; undefined when it is not an image the browser can draw. */
export async function makeThumb (file: Blob): Promise<FileView['thumb'] | undefined> {
  if (!file.type.startsWith('image/') || file.type.includes('svg')) return undefined
  try {
    const bitmap = await createImageBitmap(file)
    const scale = Math.min(1, THUMB_PX / Math.max(bitmap.width, bitmap.height))
    const w = Math.max(1, Math.round(bitmap.width * scale))
    const h = Math.max(1, Math.round(bitmap.height * scale))
    const canvas = document.createElement('canvas')
    canvas.width = w
    canvas.height = h
    canvas.getContext('2d')?.drawImage(bitmap, 0, 0, w, h)
    bitmap.close()
    for (const q of [0.8, 0.6, 0.4, 0.25]) {
      const data = canvas.toDataURL('image/jpeg', q).replace(/^data:image\/jpeg;base64,/, '')
      if (data.length <= THUMB_MAX_CHARS) return { type: 'image/jpeg', data, w, h }
    }
  } catch { /* not drawable: sent without a thumbnail */ }
  return undefined
}

/** Sends files to the open conversation: each uploaded to the node, then sent together. */
export async function sendFiles (store: Store, files: File[], onError: (e: ApiError | null) => void, t: ReturnType<typeof useI18n>['t']): Promise<void> {
  const to = store.state.current
  if (to === null || files.length === 0) return
  onError(null)
  try {
    const uploads = []
    for (const [i, f] of files.entries()) {
      // a pasted screenshot has no useful name
      const name = f.name !== '' && f.name !== 'image.png' ? f.name : t.files.pastedName(new Date(), i, f.type)
      const [{ id }, thumb] = await Promise.all([store.api.upload(f, name), makeThumb(f)])
      uploads.push({ id, name, type: f.type, ...(thumb !== undefined ? { thumb } : {}) })
    }
    for (const v of await store.api.sendUploads(to, uploads)) store.apply({ v: 1, type: 'transferChanged', data: v })
  } catch (err) {
    onError(err instanceof ApiError ? err : new ApiError('ERR_INTERNAL', String(err)))
  }
}

/** The paperclip beside the message box, and the error line of a send that failed. */
export function AttachButton ({ store }: { store: Store }) {
  const { t } = useI18n()
  const input = useRef<HTMLInputElement>(null)
  const [error, setError] = useState<string | null>(null)
  return (
    <>
      <button type="button" id="attach" class="icon-button" aria-label={t.files.attach} title={t.files.attach}
        onClick={() => { input.current?.click() }}>📎</button>
      <input ref={input} id="attach-input" type="file" multiple hidden onChange={(e) => {
        const files = Array.from(e.currentTarget.files ?? [])
        e.currentTarget.value = ''
        void sendFiles(store, files, (e) => { setError(e === null ? null : errorText(t, e)) }, t)
      }} />
      {error !== null && <div id="file-error" class="error" role="alert">{error}</div>}
    </>
  )
}

/** Drag and drop on the conversation, paste on the message box: both send the files at once. */
export interface FileDrop {
  dragging: boolean
  onDragOver: (e: DragEvent) => void
  onDragLeave: () => void
  onDrop: (e: DragEvent) => void
  onPaste: (e: ClipboardEvent) => void
}

export function useFileDrop (store: Store): FileDrop {
  const { t } = useI18n()
  const [dragging, setDragging] = useState(false)
  const report = (e: ApiError | null): void => { if (e !== null) store.showError(e) }
  const hasFiles = (dt: DataTransfer | null): boolean => dt !== null && [...dt.types].includes('Files')
  return {
    dragging,
    onDragOver: (e) => { if (hasFiles(e.dataTransfer)) { e.preventDefault(); setDragging(true) } },
    onDragLeave: () => { setDragging(false) },
    onDrop: (e) => {
      setDragging(false)
      const files = Array.from(e.dataTransfer?.files ?? [])
      if (files.length === 0) return
      e.preventDefault()
      void sendFiles(store, files, report, t)
    },
    onPaste: (e) => {
      const files = Array.from(e.clipboardData?.items ?? []).filter(i => i.kind === 'file').map(i => i.getAsFile()).filter((f): f is File => f !== null)
      if (files.length === 0) return
      e.preventDefault()
      void sendFiles(store, files, report, t)
    }
  }
}

const pct = (v: TransferView): number => v.size === 0 ? 100 : Math.min(100, Math.floor(v.bytes * 100 / v.size))

/** A file message: name, size, thumbnail, progress and what can be done with it. */
export function FileCard ({ store, m }: { store: Store, m: MessageView & { file: FileView } }) {
  const { t } = useI18n()
  const v = store.state.transfers.get(m.id)
  const file = m.file
  const [, tick] = useState(0)
  // time left moves on between events
  useEffect(() => {
    if (v?.state !== 'active') return
    const timer = setInterval(() => { tick(n => n + 1) }, 1000)
    return () => { clearInterval(timer) }
  }, [v?.state])
  const act = (action: 'pause' | 'resume' | 'cancel'): void => {
    if (v === undefined) return
    void store.api.transferAction(v.id, action).then(nv => { store.apply({ v: 1, type: 'transferChanged', data: nv }) }, () => {})
  }
  const complete = v?.state === 'complete'
  const href = v !== undefined && complete && v.direction === 'in' ? store.api.fileUrl(v.id) : undefined
  const thumb = file.thumb !== undefined ? `data:${file.thumb.type};base64,${file.thumb.data}` : undefined
  return (
    <div class={`file-card state-${v?.state ?? 'unknown'}`} data-transfer={v?.id} data-state={v?.state}>
      {thumb !== undefined && (() => {
        const img = <img class="file-thumb" src={thumb} width={file.thumb?.w} height={file.thumb?.h} alt={file.name} />
        return href !== undefined ? <a href={href} target="_blank" rel="noopener" class="file-thumb-link">{img}</a> : img
      })()}
      <div class="file-line">
        <span class="file-icon" aria-hidden="true">{file.type.startsWith('image/') ? '🖼' : '📄'}</span>
        <span class="file-name" title={file.name}>{v?.name ?? file.name}</span>
        <span class="file-size muted small">{t.files.bytes(file.size)}</span>
      </div>
      {v !== undefined && !complete && v.state !== 'cancelled' && v.state !== 'failed' && (
        <div class="file-progress">
          <progress class="file-bar" max={100} value={pct(v)} aria-label={t.files.progress} />
          <span class="file-status muted small">
            {v.state === 'paused'
              ? t.files.paused(pct(v))
              : v.speed > 0
                ? t.files.moving(pct(v), t.files.bytes(v.speed), v.etaS === null ? null : t.files.duration(v.etaS))
                : v.direction === 'out' && v.relay?.state === 'uploaded' ? t.files.atRelay : t.files.waiting(pct(v))}
          </span>
        </div>
      )}
      <div class="file-actions">
        {v?.state === 'active' && <button type="button" class="link-button file-pause" onClick={() => { act('pause') }}>{t.files.pause}</button>}
        {v?.state === 'paused' && <button type="button" class="link-button file-resume" onClick={() => { act('resume') }}>{t.files.resume}</button>}
        {(v?.state === 'active' || v?.state === 'paused') && (
          <button type="button" class="link-button file-cancel" onClick={() => { act('cancel') }}>{t.files.cancel}</button>
        )}
        {href !== undefined && <a class="file-open" href={href} target="_blank" rel="noopener">{t.files.open}</a>}
        {href !== undefined && <a class="file-save" href={href} download={v?.name ?? file.name}>{t.files.save}</a>}
        {complete && v?.direction === 'out' && <span class="muted small file-delivered">{t.files.delivered}</span>}
        {v?.state === 'cancelled' && <span class="muted small">{t.files.cancelled}</span>}
        {v?.state === 'failed' && <span class="error small">{t.files.failed(v.error ?? '')}</span>}
        {v?.relay?.state === 'refused' && <span class="warning small file-relay-refused" title={v.relay.message}>{t.files.relayRefused}</span>}
        {(v?.rejected ?? 0) > 0 && <span class="muted small" title={t.files.rejectedTitle}>{t.files.rejected(v?.rejected ?? 0)}</span>}
      </div>
    </div>
  )
}

/** Settings: the folder received files go to. */
export function DownloadsSetting ({ store }: { store: Store }) {
  const { t } = useI18n()
  const [dir, setDir] = useState('')
  const [saved, setSaved] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => { void store.api.fileSettings().then(s => { setDir(s.downloads); setSaved(s.downloads) }, () => {}) }, [])
  const save = async (): Promise<void> => {
    try {
      const s = await store.api.saveFileSettings(dir.trim())
      setSaved(s.downloads); setError(null)
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError('ERR_INTERNAL', String(err))
      setError(e.code === 'ERR_INVALID_ARGUMENT' ? t.files.downloadsInvalid : errorText(t, e))
    }
  }
  return (
    <div class="downloads-setting">
      <label>{t.files.downloads}
        <span class="settings-row">
          <input id="set-downloads" value={dir} onInput={(e) => { setDir(e.currentTarget.value) }} />
          <button type="button" id="save-downloads" class="button-secondary" disabled={dir.trim() === '' || dir.trim() === saved}
            onClick={() => { void save() }}>{t.save}</button>
        </span>
      </label>
      {error !== null && <div class="error small" role="alert">{error}</div>}
    </div>
  )
}
