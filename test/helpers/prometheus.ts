/**
 * Parses Prometheus text exposition with Prometheus's own client library
 * parser (python3-prometheus-client, `text_string_to_metric_families`): the
 * reference implementation, strict about the format, so a malformed line
 * fails the test instead of being guessed at.
 */
import { execFile } from 'node:child_process'

export interface PromSample { name: string, labels: Record<string, string>, value: number }
export interface PromFamily { name: string, type: string, help: string, samples: PromSample[] }

const SCRIPT = `
import sys, json, math
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value if math.isfinite(s.value) else str(s.value)} for s in f.samples]})
print(json.dumps(out))
`

export async function parsePrometheusText (text: string): Promise<PromFamily[]> {
  return await new Promise((resolve, reject) => {
    const child = execFile('/usr/bin/python3', ['-c', SCRIPT], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) { reject(new Error(`the Prometheus parser refused the text: ${stderr || err.message}`)); return }
      resolve(JSON.parse(stdout) as PromFamily[])
    })
    child.stdin?.end(text)
  })
}

/** Sum of the samples named `name` whose labels include `labels`. */
export function promValue (families: PromFamily[], name: string, labels: Record<string, string> = {}): number {
  const all = families.flatMap(f => f.samples).filter(s => s.name === name)
  if (all.length === 0) throw new Error(`no series ${name}`)
  return all.filter(s => Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + Number(s.value), 0)
}
