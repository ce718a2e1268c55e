/**
 * A small in-memory ring of traffic samples taken from the relay's own
 * metrics, for the console's charts (the last hours; Prometheus keeps the
 * long history). Each sample holds counter totals; the console draws rates
 * from the differences.
 */
import type { TrafficSample } from '../../../core/protocol/admin-api.js'

export type { TrafficSample }

/** @default 30 s */
export const DEFAULT_SAMPLE_INTERVAL_MS = 30_000
/** @default 6 hours of 30 s samples */
export const DEFAULT_SAMPLES_KEPT = 720

export class TrafficRing {
  private readonly samples: TrafficSample[] = []
  private timer?: NodeJS.Timeout

  constructor (
    private readonly take: () => Promise<Omit<TrafficSample, 't'>>,
    private readonly intervalMs = DEFAULT_SAMPLE_INTERVAL_MS,
    private readonly kept = DEFAULT_SAMPLES_KEPT
  ) {}

  start (): void {
    if (this.timer !== undefined) return
    void this.sample()
    this.timer = setInterval(() => { void this.sample() }, this.intervalMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  async sample (now = Date.now()): Promise<void> {
    let s: Omit<TrafficSample, 't'>
    // a sample that cannot be taken (store closing) is simply missing from the chart
    try { s = await this.take() } catch { return }
    this.samples.push({ t: now, ...s })
    if (this.samples.length > this.kept) this.samples.splice(0, this.samples.length - this.kept)
  }

  list (sinceMs = 0): TrafficSample[] { return this.samples.filter(s => s.t >= sinceMs) }
  get interval (): number { return this.intervalMs }
}
