/** Loads from the admin API, optionally every `everyMs`; `reload()` after a change. */
import { useCallback, useEffect, useState } from 'preact/hooks'

export function useLoad<T> (fn: () => Promise<T>, everyMs = 0): { data: T | undefined, error: string, reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined)
  const [error, setError] = useState('')
  const reload = useCallback(() => {
    fn().then(d => { setData(d); setError('') }, (err: Error) => { setError(err.message) })
  }, [])
  useEffect(() => {
    reload()
    if (everyMs <= 0) return
    const timer = setInterval(reload, everyMs)
    return () => { clearInterval(timer) }
  }, [])
  return { data, error, reload }
}
