/**
 * Per-version traffic of a pool, second by second, for rollout reports. The
 * hot path does a few integer increments on preallocated typed arrays: no
 * object, string or closure is made per request.
 */

/** Latency buckets over microseconds: exact below 16 µs, then 4 per power of two (≤ ~19% wide). */
export const BUCKETS = 128

export function bucketOf (micros: number): number {
  const v = micros < 0 ? 0 : micros > 0x7fffffff ? 0x7fffffff : micros | 0
  if (v < 16) return v
  const e = 31 - Math.clz32(v)
  return 16 + (e - 4) * 4 + ((v >>> (e - 2)) & 3)
}

/** The lower and upper bound (µs) of a bucket. */
export function bucketRange (b: number): [number, number] {
  if (b < 16) return [b, b + 1]
  const e = ((b - 16) >> 2) + 4
  const sub = (b - 16) & 3
  const lo = (1 << e) + sub * (1 << (e - 2))
  return [lo, lo + (1 << (e - 2))]
}

/** Counter slots of one second of one version. */
export enum Slot {
  Requests, Ok2xx, Redirect3xx, Client4xx,
  /** The app answered 5xx. */
  App5xx,
  /** baton answered 5xx itself with no upstream failure (no instance available, upstream timeout). */
  Baton5xx,
  /** The upstream failed and retries could not hide it (502, or a response cut short). */
  UpstreamFailed,
  /** Failed upstream attempts, retried or not. */
  AttemptErrors,
  Retries,
  /** The client went away first: not the server side's failure, counted apart. */
  ClientAborts,
  Size
}

/** What happened to one request, from baton's side. */
export enum Outcome { App, Baton5xx, UpstreamFailed, ClientAbort }

export interface SecondSample {
  /** Epoch second. */
  t: number
  counts: Uint32Array
  hist: Uint32Array
  max: number
}

/** Bucket bounds (seconds) of baton_request_duration_seconds. */
export const DURATION_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/**
 * One version's counters: the current second (rolled into the pool's
 * timeline) and the totals since start that Prometheus reads at scrape time,
 * so no prom-client call runs per request.
 */
export class VersionTraffic {
  counts = new Uint32Array(Slot.Size)
  hist = new Uint32Array(BUCKETS)
  dirty = false
  /** Since start: responses by status code, and the duration histogram (per bucket, not cumulative). */
  readonly codes = new Map<number, number>()
  readonly durations = new Float64Array(DURATION_BOUNDS.length + 1)
  durationSum = 0

  /** Slowest request of this second, in µs. */
  max = 0

  record (status: number, micros: number, outcome: Outcome): void {
    const c = this.counts
    this.dirty = true
    c[Slot.Requests]++
    if (micros > this.max) this.max = micros
    if (outcome === Outcome.ClientAbort) c[Slot.ClientAborts]++
    else if (outcome === Outcome.Baton5xx) c[Slot.Baton5xx]++
    else if (outcome === Outcome.UpstreamFailed) c[Slot.UpstreamFailed]++
    else if (status < 300) c[Slot.Ok2xx]++
    else if (status < 400) c[Slot.Redirect3xx]++
    else if (status < 500) c[Slot.Client4xx]++
    else c[Slot.App5xx]++
    this.hist[bucketOf(micros)]++
    this.codes.set(status, (this.codes.get(status) ?? 0) + 1)
    const seconds = micros / 1e6
    let b = 0
    while (b < DURATION_BOUNDS.length && seconds > DURATION_BOUNDS[b]) b++
    this.durations[b]++
    this.durationSum += seconds
  }

  attemptError (): void { this.dirty = true; this.counts[Slot.AttemptErrors]++ }
  retry (): void { this.dirty = true; this.counts[Slot.Retries]++ }
}

const KEEP_SECONDS = 3600

/** A pool's traffic by version, kept per second for the last hour. */
export class PoolTraffic {
  private readonly versions = new Map<string, VersionTraffic>()
  /** version → samples, oldest first. */
  readonly timeline = new Map<string, SecondSample[]>()

  /** Every version seen, with its counters (scrape time). */
  get all (): ReadonlyMap<string, VersionTraffic> { return this.versions }

  version (v: string): VersionTraffic {
    let t = this.versions.get(v)
    if (t === undefined) {
      t = new VersionTraffic()
      this.versions.set(v, t)
    }
    return t
  }

  /** Moves the second that ended into the timeline (called once a second). */
  tick (epochSecond: number): void {
    for (const [v, t] of this.versions) {
      if (!t.dirty) continue
      const samples = this.timeline.get(v) ?? []
      samples.push({ t: epochSecond, counts: t.counts, hist: t.hist, max: t.max })
      if (samples.length > KEEP_SECONDS) samples.splice(0, samples.length - KEEP_SECONDS)
      this.timeline.set(v, samples)
      t.counts = new Uint32Array(Slot.Size)
      t.hist = new Uint32Array(BUCKETS)
      t.max = 0
      t.dirty = false
    }
  }

  /** Samples of every version within [from, to] epoch seconds, plus the current second's. */
  samples (from: number, to: number): Array<{ version: string } & SecondSample> {
    const out: Array<{ version: string } & SecondSample> = []
    for (const [version, samples] of this.timeline) {
      for (const s of samples) if (s.t >= from && s.t <= to) out.push({ version, ...s })
    }
    const now = Math.floor(Date.now() / 1000)
    if (now >= from && now <= to) {
      for (const [version, t] of this.versions) if (t.dirty) out.push({ version, t: now, counts: t.counts, hist: t.hist, max: t.max })
    }
    return out.sort((a, b) => a.t - b.t)
  }
}

/** A latency quantile (seconds) from summed histograms: the upper bound of the bucket it falls in. */
export function quantile (hist: Uint32Array, q: number): number | null {
  let total = 0
  for (let i = 0; i < hist.length; i++) total += hist[i]
  if (total === 0) return null
  const rank = Math.ceil(q * total)
  let seen = 0
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i]
    if (seen >= rank) return bucketRange(i)[1] / 1e6
  }
  return bucketRange(hist.length - 1)[1] / 1e6
}
