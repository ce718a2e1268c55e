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
