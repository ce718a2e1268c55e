/** Relay state at a glance, and charts of the last hours from the relay's own traffic samples. */
import { api, type TrafficSample } from '../api.js'
import { errorText } from '../errors.js'
import { bytes, useI18n } from '../i18n.js'
import { useLoad } from './load.js'

type Series = Array<[number, number]>

/** per-second rates of a counter between samples (a counter reset, i.e. a restart, starts again at 0) */
function rate (samples: TrafficSample[], pick: (s: TrafficSample) => number): Series {
  const out: Series = []
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1] as TrafficSample
    const b = samples[i] as TrafficSample
    const dt = (b.t - a.t) / 1000
    if (dt > 0) out.push([b.t, Math.max(0, pick(b) - pick(a)) / dt])
  }
  return out
}

function Chart ({ title, series, testid }: { title: string, series: Series, testid: string }) {
  const { t, f } = useI18n()
  const w = 320
  const h = 90
  const max = Math.max(1e-9, ...series.map(p => p[1]))
  const t0 = series[0]?.[0] ?? 0
  const t1 = series[series.length - 1]?.[0] ?? 1
  const x = (t: number): number => t1 === t0 ? w : ((t - t0) / (t1 - t0)) * w
  const y = (v: number): number => h - (v / max) * (h - 4)
  const points = series.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ')
  const last = series[series.length - 1]?.[1] ?? 0
  return (
    <figure class="chart" data-testid={testid} data-max={Math.max(0, ...series.map(p => p[1]))} data-last={last}>
      <figcaption>{title} <strong>{f.number(Math.round(last * 100) / 100)}</strong></figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} width={w} height={h} role="img" aria-label={title}>
        <line x1="0" y1={h} x2={w} y2={h} class="axis" />
        {series.length > 1 && <polyline points={points} class="line" />}
      </svg>
      {series.length > 0 && <div class="muted small">{f.time(t0)} – {f.time(t1)} · {t.chartMax(f.number(Math.round(max * 100) / 100))}</div>}
    </figure>
  )
}

export function Overview () {
  const { t, f } = useI18n()
  const stats = useLoad(api.stats, 5000)
  const traffic = useLoad(api.traffic, 10_000)
  const s = stats.data
  const samples = traffic.data?.samples ?? []
  return (
    <section>
      {stats.error !== null && <p class="error">{t.error(errorText(t, stats.error))}</p>}
      {s !== undefined && (
        <div class="tiles">
          <div class="tile"><span>{t.relayId}</span><code class="peer">{s.peerId}</code><span class="muted small">{t.uptime(s.uptimeMs)}</span></div>
          <div class="tile"><span>{t.connections}</span><strong data-testid="stat-connections">{f.number(s.connections)}</strong></div>
          <div class="tile"><span>{t.reservations}</span><strong>{f.number(s.reservations)}</strong></div>
          <div class="tile"><span>{t.users}</span><strong data-testid="stat-users">{f.number(s.users)}</strong></div>
          <div class="tile"><span>{t.mailWaiting}</span><strong>{f.number(s.mailbox.messages)}</strong></div>
          {s.files !== undefined && (
            <div class="tile">
              <span>{t.filesKept}</span><strong data-testid="stat-files">{t.filesKeptLine(s.files.files, bytes(s.files.bytes, f))}</strong>
            </div>
          )}
        </div>
      )}
      {samples.length < 2 && <p class="muted">{t.noSamples}</p>}
      <div class="charts">
        <Chart testid="chart-deliveries" title={t.charts.deliveries} series={rate(samples, x => x.acked)} />
        <Chart testid="chart-deposits" title={t.charts.deposits} series={rate(samples, x => x.deposited)} />
        <Chart testid="chart-refusals" title={t.charts.refusals} series={rate(samples, x => x.refused)} />
        <Chart testid="chart-connections" title={t.charts.connections} series={samples.map(x => [x.t, x.connections])} />
      </div>
    </section>
  )
}
