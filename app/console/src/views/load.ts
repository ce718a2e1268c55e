/** Loads from the admin API, optionally every `everyMs`; `reload()` after a change. */
import { useCallback, useEffect, useState } from 'preact/hooks'

/** `error`: the last failure (say it with errorText), null while the last call worked */
export function useLoad<T> (fn: () => Promise<T>, everyMs = 0): { data: T | undefined, error: unknown, reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined)
  const [error, setError] = useState<unknown>(null)
  const reload = useCallback(() => {
    fn().then(d => { setData(d); setError(null) }, (err: unknown) => { setError(err) })
  }, [])
  useEffect(() => {
    reload()
    if (everyMs <= 0) return
    const timer = setInterval(reload, everyMs)
    return () => { clearInterval(timer) }
  }, [])
  return { data, error, reload }
}
