/**
 * Runs `fn` on `size` items at a time; `done` gets the ids of each window's
 * successful prefix, in order (null results are skipped); the first failure
 * stops everything after it, so what is retried later keeps its order.
 */
export async function inWindows<T> (items: T[], size: number, fn: (item: T) => Promise<string | null>, done: (ids: string[]) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) {
    const results = await Promise.allSettled(items.slice(i, i + size).map(fn))
    const firstFail = results.findIndex(r => r.status === 'rejected')
    const ok = (firstFail === -1 ? results : results.slice(0, firstFail))
      .map(r => (r as PromiseFulfilledResult<string | null>).value)
      .filter((id): id is string => id !== null)
    if (ok.length > 0) await done(ok)
    if (firstFail !== -1) throw (results[firstFail] as PromiseRejectedResult).reason
  }
}

/**
 * A sliding window: keeps up to `size` calls of `fn` in flight, starting the
 * next one as soon as any settles (so the sender never waits for a whole
 * window while the receiver works). `done` gets the ids of the successful
 * prefix as it grows, in order, one call at a time (ids that settled while one
 * ran go together into the next). The first failure (in item order) stops new
 * calls; once those in flight settle, the prefix before it is handed to `done`
 * and the failure is thrown, so what is retried later keeps its order. A
 * failure of `done` stops new calls too (what they sent could not be marked).
 */
export async function inSlidingWindow<T> (
  items: T[], size: number, fn: (item: T) => Promise<string | null>, done: (ids: string[]) => Promise<void>
): Promise<void> {
  const results: Array<{ ok: true, id: string | null } | { ok: false, err: unknown } | undefined> = new Array(items.length)
  let next = 0
  let prefix = 0
  let failed = -1
  // `done` failed (the store latched): nothing acked now could be marked, so no new call starts
  let doneFailed = false
  let ready: string[] = []
  let handing: Promise<void> = Promise.resolve()
  const advance = (): void => {
    for (let r = results[prefix]; r?.ok === true; r = results[++prefix]) if (r.id !== null) ready.push(r.id)
    if (ready.length === 0) return
    handing = handing.then(async () => {
      const ids = ready
      ready = []
      if (ids.length > 0) await done(ids)
    })
    // a failure of `done` stops new calls and is thrown at the end; the calls in flight still settle
    handing.catch(() => { doneFailed = true })
  }
  const lane = async (): Promise<void> => {
    while (failed === -1 && !doneFailed && next < items.length) {
      const i = next++
      try {
        results[i] = { ok: true, id: await fn(items[i] as T) }
      } catch (err) {
        results[i] = { ok: false, err }
        if (failed === -1 || i < failed) failed = i
      }
      advance()
    }
  }
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, lane))
  await handing
  const first = failed === -1 ? undefined : results[failed]
  if (first?.ok === false) throw first.err
}
