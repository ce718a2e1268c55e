// A second node:test reporter for scripts/test.sh: the time each test file took (the sum of its
// top-level tests' durations; process start-up not counted), slowest first, to watch the suite's 20-minute budget.
export default async function * fileTimes (source) {
  const totals = new Map()
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue
    const { file, nesting, details } = event.data ?? {}
    if (typeof file !== 'string' || nesting !== 0 || typeof details?.duration_ms !== 'number') continue
    totals.set(file, (totals.get(file) ?? 0) + details.duration_ms / 1000)
  }
  const rows = [...totals].map(([file, s]) => ({ file: file.replace(`${process.cwd()}/`, ''), s }))
  rows.sort((a, b) => b.s - a.s)
  const total = rows.reduce((sum, row) => sum + row.s, 0)
  yield `# time per test file, slowest first (total ${total.toFixed(1)} s over ${rows.length} files)\n`
  for (const row of rows) yield `${row.s.toFixed(1).padStart(7)} s  ${row.file}\n`
}
