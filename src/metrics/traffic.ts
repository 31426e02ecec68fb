/**
 * Per-version traffic of a pool, second by second, for rollout reports and
 * Prometheus. The hot path does a few integer increments on preallocated
 * typed arrays: no object, string or closure is made per request.
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

/**
 * The key under which src/proxy books a request that no instance answered
 * (a 503 when none is available): those counts are kept apart from every
 * version, so nothing downstream has to filter them out.
 */
export const NO_INSTANCE = ''

/** Bucket bounds (seconds) of baton_request_duration_seconds. */
export const DURATION_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/**
 * One revision's counters (a revision has one version label; two revisions
 * may share one, as an env-only canary does): the current second (handed to
 * the controller's timeline once it is over) and the totals since start that
 * Prometheus reads at scrape time, by version, so no prom-client call runs
 * per request.
 */
export class VersionTraffic {
  constructor (readonly version = NO_INSTANCE, readonly revision = 0) {}

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

  /** The current second's counts, replaced by fresh ones. */
  takeSecond (): SecondCounts {
    const taken = { counts: this.counts, hist: this.hist, max: this.max }
    this.counts = new Uint32Array(Slot.Size)
    this.hist = new Uint32Array(BUCKETS)
    this.max = 0
    this.dirty = false
    return taken
  }
}

/** One second of one version's requests (or of those no instance answered). */
export interface SecondCounts {
  /** Slot counters (see Slot). */
  counts: Uint32Array
  /** Latency histogram over BUCKETS. */
  hist: Uint32Array
  /** Slowest request, in µs. */
  max: number
}

/** One revision's counts of one second, with its version label. */
export interface RevisionCounts extends SecondCounts {
  version: string
  /** 0 when the member's revision was not known (counters made by version alone). */
  revision: number
}

/** One pool's traffic in one second, as a data plane reports it once the second is over. */
export interface TrafficSecond {
  pool: string
  /** Epoch second. */
  t: number
  /** By the revision (and version) of the instance that answered. */
  versions: RevisionCounts[]
  /** Requests no instance answered (none available: 503). */
  unanswered?: SecondCounts
}

/**
 * A pool's counters in one data plane, by revision and version: the hot path
 * increments them (each Upstream holds its own revision's), `takeSecond`
 * hands the second that ended to the controller (which keeps the timeline,
 * see timeline.ts) and Prometheus reads the totals, summed by version.
 * Keyed by revision so that the two sides of a canary that keeps its version
 * label are still told apart.
 */
export class PoolCounters {
  private readonly revisions = new Map<string, VersionTraffic>()
  readonly unanswered = new VersionTraffic()

  /** Every revision answered so far, with its totals (scrape time). */
  get all (): Iterable<VersionTraffic> { return this.revisions.values() }

  /** The counters of one revision (made on first use: when an Upstream is made, not per request). */
  of (revision: number, version: string): VersionTraffic {
    const key = `${revision}/${version}`
    let t = this.revisions.get(key)
    if (t === undefined) {
      t = new VersionTraffic(version, revision)
      this.revisions.set(key, t)
    }
    return t
  }

  /** The counters of a version whose revision is not known (revision 0); `NO_INSTANCE` gives `unanswered`. */
  version (v: string): VersionTraffic {
    return v === NO_INSTANCE ? this.unanswered : this.of(0, v)
  }

  /** The counts of the second that ended, and fresh ones for the next; undefined for a quiet second. */
  takeSecond (pool: string, epochSecond: number): TrafficSecond | undefined {
    const versions: TrafficSecond['versions'] = []
    for (const t of this.revisions.values()) if (t.dirty) versions.push({ version: t.version, revision: t.revision, ...t.takeSecond() })
    const unanswered = this.unanswered.dirty ? this.unanswered.takeSecond() : undefined
    if (versions.length === 0 && unanswered === undefined) return undefined
    return { pool, t: epochSecond, versions, unanswered }
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
