import client from 'prom-client'
import { DURATION_BOUNDS, type PoolCounters } from './traffic.js'

/** A counter registered in `registry` only (each part of baton keeps a registry of its own). */
export function counterIn<L extends string> (registry: client.Registry, name: string, help: string, labelNames: readonly L[]): client.Counter<L> {
  return new client.Counter({ name, help, labelNames, registers: [registry] })
}

/** A gauge registered in `registry` only. */
export function gaugeIn<L extends string> (registry: client.Registry, name: string, help: string, labelNames: readonly L[]): client.Gauge<L> {
  return new client.Gauge({ name, help, labelNames, registers: [registry] })
}

/** A registry's metrics as prom-client JSON: what a data plane hands over for aggregation. */
export type MetricsJson = Awaited<ReturnType<client.Registry['getMetricsAsJSON']>>

/** What the data plane's metrics read at scrape time, per pool. */
export interface PoolReading {
  pool: string
  traffic: PoolCounters
  /** Requests and upgraded connections in flight to the pool's upstreams. */
  inflight: number
}

/**
 * baton_requests_total, read at scrape time from the pools' traffic counters
 * (traffic.ts), so that the request path never calls prom-client.
 */
class RequestsCounter extends client.Counter<'pool' | 'version' | 'code'> {
  constructor (private readonly read: () => Array<{ labels: { pool: string, version: string, code: string }, value: number }>) {
    super({ name: 'baton_requests_total', help: 'Requests answered, by pool, version of the instance that answered, and status code', labelNames: ['pool', 'version', 'code'], registers: [] })
  }

  override async get (): ReturnType<client.Counter<'pool' | 'version' | 'code'>['get']> {
    return { ...await super.get(), values: this.read() }
  }
}

/** A version's totals since start, summed over its revisions (metrics are labelled by version). */
interface VersionTotals { codes: Map<number, number>, durations: Float64Array, durationSum: number }

/** The counters' totals by version label: two revisions of one version add up (scrape time only). */
function sumByVersion (traffic: PoolCounters): Map<string, VersionTotals> {
  const out = new Map<string, VersionTotals>()
  for (const t of traffic.all) {
    let v = out.get(t.version)
    if (v === undefined) {
      v = { codes: new Map(), durations: new Float64Array(DURATION_BOUNDS.length + 1), durationSum: 0 }
      out.set(t.version, v)
    }
    for (const [code, n] of t.codes) v.codes.set(code, (v.codes.get(code) ?? 0) + n)
    for (let i = 0; i < t.durations.length; i++) v.durations[i] += t.durations[i]
    v.durationSum += t.durationSum
  }
  return out
}

type DurationLabel = 'pool' | 'version' | 'le'

/** baton_request_duration_seconds, from the counters' buckets (the same bounds) at scrape time. */
class DurationHistogram extends client.Histogram<DurationLabel> {
  constructor (private readonly read: () => Iterable<PoolReading>) {
    super({ name: 'baton_request_duration_seconds', help: 'Time from request to the end of the response', labelNames: ['pool', 'version'], buckets: DURATION_BOUNDS, registers: [] })
  }

  override async get (): ReturnType<client.Histogram<DurationLabel>['get']> {
    const name = 'baton_request_duration_seconds'
    const values: Array<{ metricName: string, labels: Partial<Record<DurationLabel, string | number>>, value: number }> = []
    for (const { pool, traffic } of this.read()) {
      for (const [version, t] of sumByVersion(traffic)) {
        let cumulative = 0
        DURATION_BOUNDS.forEach((le, i) => {
          cumulative += t.durations[i]
          values.push({ metricName: `${name}_bucket`, labels: { le, pool, version }, value: cumulative })
        })
        cumulative += t.durations[DURATION_BOUNDS.length]
        values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', pool, version }, value: cumulative })
        values.push({ metricName: `${name}_sum`, labels: { pool, version }, value: t.durationSum })
        values.push({ metricName: `${name}_count`, labels: { pool, version }, value: cumulative })
      }
    }
    return { ...await super.get(), values }
  }
}

/**
 * The data plane's Prometheus metrics (README "Metrics"): requests,
 * durations, upstream errors, retries, client errors, in-flight, on a
 * registry of its own. The controller has its own (instances, rollouts) and
 * GET /metrics aggregates them all, so several data planes add up. Hot-path
 * callers keep nothing per request here: requests and durations are read
 * from the traffic counters at scrape time.
 */
export class Metrics {
  readonly registry = new client.Registry()
  private source: () => Iterable<PoolReading> = () => []

  /**
   * Requests answered with no instance at all (the 503 when a pool has none
   * available): rare, so counted here rather than in a version's counters.
   */
  private readonly unanswered = new Map<string, number>()
  readonly requests = {
    labels: (pool: string, version: string, code: string) => ({
      inc: () => {
        const key = JSON.stringify([pool, version, code])
        this.unanswered.set(key, (this.unanswered.get(key) ?? 0) + 1)
      }
    })
  }

  readonly upstreamErrors = counterIn(this.registry, 'baton_upstream_errors_total', 'Failed upstream attempts, by kind (refused, reset, timeout, ...)', ['pool', 'kind'])
  readonly retries = counterIn(this.registry, 'baton_retries_total', 'Attempts retried on another instance', ['pool'])
  readonly clientErrors = counterIn(this.registry, 'baton_client_errors_total', 'Client requests refused before routing (malformed, oversized, timed out)', ['code'])

  /** Read from the upstreams at scrape time. */
  private readonly inflight: client.Gauge<'pool'> = new client.Gauge({
    name: 'baton_inflight_requests',
    help: 'Requests and upgraded connections in flight',
    labelNames: ['pool'] as const,
    registers: [this.registry],
    collect: () => {
      this.inflight.reset()
      for (const p of this.source()) this.inflight.labels(p.pool).set(p.inflight)
    }
  })

  constructor () {
    this.registry.registerMetric(new RequestsCounter(() => this.requestCounts()))
    this.registry.registerMetric(new DurationHistogram(() => this.source()))
  }

  /** Where the pools are read at scrape time: set by the data plane. */
  readFrom (source: () => Iterable<PoolReading>): void {
    this.source = source
  }

  async json (): Promise<MetricsJson> {
    return await this.registry.getMetricsAsJSON()
  }

  private requestCounts (): Array<{ labels: { pool: string, version: string, code: string }, value: number }> {
    const values: Array<{ labels: { pool: string, version: string, code: string }, value: number }> = []
    for (const { pool, traffic } of this.source()) {
      for (const [version, t] of sumByVersion(traffic)) {
        for (const [code, n] of t.codes) values.push({ labels: { pool, version, code: String(code) }, value: n })
      }
    }
    for (const [key, n] of this.unanswered) {
      const [pool, version, code] = JSON.parse(key) as [string, string, string]
      values.push({ labels: { pool, version, code }, value: n })
    }
    return values
  }
}
