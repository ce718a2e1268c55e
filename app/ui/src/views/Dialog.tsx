/** A modal <dialog>: opened on mount, Esc (the browser's cancel) and the close buttons call `onClose`, focus returns after. */
import type { ComponentChildren } from 'preact'
import { useEffect, useRef } from 'preact/hooks'
import { useI18n } from '../i18n/index.js'
import { MAX_NAME_CHARS } from '../../../../node/src/api/contract.js'

export function Dialog ({ id, label, onClose, children, wide = false }: {
  id: string, label: string, onClose: () => void, children: ComponentChildren, wide?: boolean
}) {
  const ref = useRef<HTMLDialogElement>(null)
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null
    const d = ref.current
    if (d !== null && !d.open) d.showModal()
    return () => { d?.close(); before?.focus?.() }
  }, [])
  return (
    <dialog id={id} ref={ref} aria-label={label} class={wide ? 'wide' : undefined}
      onCancel={(e) => { e.preventDefault(); onClose() }}>
      {children}
    </dialog>
  )
}

/** under a name field: how far over the limit the name is, counted as the node counts it (the field never cuts a pasted name) */
export function NameOver ({ id, value }: { id: string, value: string }) {
  const { t } = useI18n()
  const over = value.normalize('NFKC').length - MAX_NAME_CHARS
  return over > 0 ? <p id={id} class="error" role="alert">{t.nameTooLong(over, MAX_NAME_CHARS)}</p> : null
}

export function ErrorLine ({ id, text }: { id: string, text: string | null }) {
  return <p id={id} class="error" role="alert" hidden={text === null}>{text ?? ''}</p>
}
/** A yes/no question; Esc or Cancel is no. */
export function Confirm ({ text, onYes, onNo }: { text: string, onYes: () => void, onNo: () => void }) {
  const { t } = useI18n()
  return (
    <Dialog id="confirm" label={t.confirm} onClose={onNo}>
      <p id="confirm-text">{text}</p>
      <div class="dialog-actions">
        <button type="button" id="confirm-no" class="button-secondary" onClick={onNo}>{t.cancel}</button>
        <button type="button" id="confirm-yes" class="danger" onClick={onYes}>{t.confirm}</button>
      </div>
    </Dialog>
  )
}

