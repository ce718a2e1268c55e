// A second node:test reporter for scripts/test.sh: the wall time of each test file (from its first
// event to its last, files run one at a time), slowest first, so the suite's 20-minute budget can be watched.
export default async function * fileTimes (source) {
  const spans = new Map()
  for await (const event of source) {
    const file = event.data?.file
    if (typeof file !== 'string') continue
    const now = Date.now()
    const span = spans.get(file)
    if (span === undefined) spans.set(file, { first: now, last: now })
    else span.last = now
  }
  const rows = [...spans].map(([file, { first, last }]) => ({ file: file.replace(`${process.cwd()}/`, ''), s: (last - first) / 1000 }))
  rows.sort((a, b) => b.s - a.s)
  const total = rows.reduce((sum, row) => sum + row.s, 0)
  yield `# wall time per test file, slowest first (total ${total.toFixed(1)} s over ${rows.length} files)\n`
  for (const row of rows) yield `${row.s.toFixed(1).padStart(7)} s  ${row.file}\n`
}
