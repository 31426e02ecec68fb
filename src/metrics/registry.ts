import client from 'prom-client'
import { DURATION_BOUNDS, type VersionTraffic } from './traffic.js'

/**
 * The Prometheus metrics of SPEC §4, on a registry of baton's own (so several
 * batons in one test process never share counters). Hot-path callers keep the
 * labelled children they use (see `Upstream.stats`) instead of looking labels
 * up per request.
 */
export class Metrics {
  readonly registry = new client.Registry()

  /**
   * baton_requests_total and baton_request_duration_seconds are read at
   * scrape time from the pools' traffic counters (see traffic.ts), so the
   * request path never calls prom-client. Requests answered without an
   * upstream (503) are rare and counted here.
   */
  private readonly coldRequests = new Map<string, number>()
  readonly requests = {
    labels: (pool: string, version: string, code: string) => ({
      inc: () => {
        const key = JSON.stringify([pool, version, code])
        this.coldRequests.set(key, (this.coldRequests.get(key) ?? 0) + 1)
      }
    })
  }

  /** Where the per-version traffic comes from: set by baton. */
  trafficSource: () => Iterable<{ pool: string, version: string, traffic: VersionTraffic }> = () => []

  readonly upstreamErrors = new client.Counter({
    name: 'baton_upstream_errors_total',
    help: 'Failed upstream attempts, by kind (refused, reset, timeout, ...)',
    labelNames: ['pool', 'kind'] as const,
    registers: [this.registry]
  })

  readonly retries = new client.Counter({
    name: 'baton_retries_total',
    help: 'Attempts retried on another instance',
    labelNames: ['pool'] as const,
    registers: [this.registry]
  })

  readonly inflight = new client.Gauge({
    name: 'baton_inflight_requests',
    help: 'Requests and upgraded connections in flight',
    labelNames: ['pool'] as const,
    registers: [this.registry]
  })

  readonly instances = new client.Gauge({
    name: 'baton_instances',
    help: 'Instances by pool, version and state',
    labelNames: ['pool', 'version', 'state'] as const,
    registers: [this.registry]
  })

  readonly rollouts = new client.Counter({
    name: 'baton_rollouts_total',
    help: 'Finished rollouts by result',
    labelNames: ['pool', 'result'] as const,
    registers: [this.registry]
  })

  readonly rolloutInProgress = new client.Gauge({
    name: 'baton_rollout_in_progress',
    help: '1 while a rollout runs in the pool',
    labelNames: ['pool'] as const,
    registers: [this.registry]
  })

  readonly clientErrors = new client.Counter({
    name: 'baton_client_errors_total',
    help: 'Client requests refused before routing (malformed, oversized, timed out)',
    labelNames: ['code'] as const,
    registers: [this.registry]
  })

  constructor () {
    client.collectDefaultMetrics({ register: this.registry })
    this.registry.registerMetric(this.requestsMetric() as unknown as client.Metric)
    this.registry.registerMetric(this.durationMetric() as unknown as client.Metric)
  }

  private requestsMetric (): object {
    return {
      name: 'baton_requests_total',
      help: 'Requests answered, by pool, version of the instance that answered, and status code',
      type: 'counter',
      aggregator: 'sum',
      get: () => {
        const values: Array<{ labels: Record<string, string>, value: number }> = []
        for (const { pool, version, traffic } of this.trafficSource()) {
          for (const [code, n] of traffic.codes) values.push({ labels: { pool, version, code: String(code) }, value: n })
        }
        for (const [key, n] of this.coldRequests) {
          const [pool, version, code] = JSON.parse(key) as string[]
          values.push({ labels: { pool, version, code }, value: n })
        }
        return { name: 'baton_requests_total', help: 'Requests answered', type: 'counter', aggregator: 'sum', values }
      },
      reset: () => undefined
    }
  }

  private durationMetric (): object {
    const name = 'baton_request_duration_seconds'
    return {
      name,
      help: 'Time from request to the end of the response',
      type: 'histogram',
      aggregator: 'sum',
      get: () => {
        const values: Array<{ labels: Record<string, string | number>, value: number, metricName: string }> = []
        for (const { pool, version, traffic } of this.trafficSource()) {
          let cumulative = 0
          DURATION_BOUNDS.forEach((le, i) => {
            cumulative += traffic.durations[i]
            values.push({ metricName: `${name}_bucket`, labels: { le, pool, version }, value: cumulative })
          })
          cumulative += traffic.durations[DURATION_BOUNDS.length]
          values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', pool, version }, value: cumulative })
          values.push({ metricName: `${name}_sum`, labels: { pool, version }, value: traffic.durationSum })
          values.push({ metricName: `${name}_count`, labels: { pool, version }, value: cumulative })
        }
        return { name, help: 'Time from request to the end of the response', type: 'histogram', aggregator: 'sum', values }
      },
      reset: () => undefined
    }
  }

  /** Gauges that are cheaper to read at scrape time than to keep current. */
  onCollect (fn: () => void): void {
    this.collectors.push(fn)
  }

  private readonly collectors: Array<() => void> = []

  async text (): Promise<string> {
    for (const fn of this.collectors) fn()
    return await this.registry.metrics()
  }
}
