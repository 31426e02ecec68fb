import client from 'prom-client'

/**
 * The Prometheus metrics of SPEC §4, on a registry of baton's own (so several
 * batons in one test process never share counters). Hot-path callers keep the
 * labelled children they use (see `Upstream.stats`) instead of looking labels
 * up per request.
 */
export class Metrics {
  readonly registry = new client.Registry()

  readonly requests = new client.Counter({
    name: 'baton_requests_total',
    help: 'Requests answered, by pool, version of the instance that answered, and status code',
    labelNames: ['pool', 'version', 'code'] as const,
    registers: [this.registry]
  })

  readonly duration = new client.Histogram({
    name: 'baton_request_duration_seconds',
    help: 'Time from request to the end of the response',
    labelNames: ['pool', 'version'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry]
  })

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
