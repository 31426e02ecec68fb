import client from 'prom-client'
import { counterIn, gaugeIn, type MetricsJson } from '../metrics/registry.js'

/** One instance as the instances gauge counts it. */
export interface InstanceReading { pool: string, version: string, state: string }

/**
 * The controller's Prometheus metrics (README "Metrics"): instances and
 * rollouts, and this process's own (prom-client's defaults), on a registry of
 * its own. GET /metrics adds the data planes' metrics to these (`text`).
 */
export class ControllerMetrics {
  readonly registry = new client.Registry()
  private source: () => Iterable<InstanceReading> = () => []

  /** Read from the pools at scrape time. */
  private readonly instances: client.Gauge<'pool' | 'version' | 'state'> = new client.Gauge({
    name: 'baton_instances',
    help: 'Instances by pool, version and state',
    labelNames: ['pool', 'version', 'state'] as const,
    registers: [this.registry],
    collect: () => {
      this.instances.reset()
      for (const i of this.source()) this.instances.labels(i.pool, i.version, i.state).inc()
    }
  })

  readonly rollouts = counterIn(this.registry, 'baton_rollouts_total', 'Finished rollouts by result', ['pool', 'result'])
  readonly rolloutInProgress = gaugeIn(this.registry, 'baton_rollout_in_progress', '1 while a rollout runs in the pool', ['pool'])

  constructor () {
    client.collectDefaultMetrics({ register: this.registry })
  }

  /** Where the instances are read at scrape time: set by the controller. */
  readFrom (source: () => Iterable<InstanceReading>): void {
    this.source = source
  }

  /**
   * The text of GET /metrics: the data planes' metrics summed
   * (AggregatorRegistry, so that N workers add up), merged with the
   * controller's. The process metrics are the controller's own: summing those
   * of several processes would mean nothing.
   */
  async text (dataPlanes: MetricsJson[]): Promise<{ contentType: string, text: string }> {
    const merged = client.Registry.merge([client.AggregatorRegistry.aggregate(dataPlanes), this.registry])
    return { contentType: merged.contentType, text: await merged.metrics() }
  }
}
