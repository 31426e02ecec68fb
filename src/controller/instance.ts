import type { ReadinessSpec, RolloutSpec } from '../config/types.js'
import type { Driver, Revision, RunningInstance } from '../driver/types.js'
import { log } from '../log.js'
import type { Metrics } from '../metrics/registry.js'
import type { Pool } from '../upstream/pool.js'
import { Prober } from './prober.js'
import { Upstream, type InstanceState } from '../upstream/upstream.js'

export interface InstanceDeps {
  pool: Pool
  driver: Driver
  metrics: Metrics
  readiness: ReadinessSpec
  timeouts: { connect: number, upstream: number, keepAlive: number }
  /** Called after every state change; the pool's controller reconciles on it. */
  onChange: (i: Instance, previous: InstanceState) => void
}

/**
 * One managed instance and its life: starting → ready → serving → draining →
 * stopped, or failed. It goes into the balancer only once its readiness probe
 * passed (G2) and leaves it before anything else happens when it stops.
 */
export class Instance {
  state: InstanceState = 'starting'
  upstream: Upstream | undefined
  handle: RunningInstance | undefined
  /** When it last became ready (ms epoch): the start of its minReady soak. */
  readyAt = 0
  /** Why it failed, for status and the rollout's error. */
  failure: string | undefined
  readonly createdAt = Date.now()
  private prober: Prober | undefined
  private startTimer: NodeJS.Timeout | undefined
  private stopping: Promise<void> | undefined

  constructor (readonly id: string, readonly revision: Revision, private readonly deps: InstanceDeps) {}

  get version (): string { return this.revision.version }
  get pid (): number | null { return this.handle?.pid ?? null }

  /** Starts the process or container; the readiness probe decides when it serves. */
  async start (): Promise<void> {
    const d = this.deps
    this.startTimer = setTimeout(() => { this.fail(`not ready within startTimeout (${d.readiness.startTimeout} ms)`) }, d.readiness.startTimeout)
    try {
      this.handle = await d.driver.start({ pool: d.pool.name, id: this.id, revision: this.revision })
    } catch (err) {
      this.fail(`could not start: ${(err as Error).message}`)
      return
    }
    this.attach(this.handle)
  }

  /**
   * Takes over a running process or container (just started, or adopted
   * from an earlier run): it is probed before it gets any traffic.
   */
  attach (h: RunningInstance): void {
    const d = this.deps
    this.handle = h
    if (this.state !== 'starting') { // stopped or failed while the driver worked
      void h.stop('SIGKILL', 1_000)
      return
    }
    if (this.startTimer === undefined) {
      this.startTimer = setTimeout(() => { this.fail(`not ready within startTimeout (${d.readiness.startTimeout} ms)`) }, d.readiness.startTimeout)
    }
    this.upstream = new Upstream({
      id: this.id,
      pool: d.pool.name,
      host: h.host,
      port: h.port,
      version: this.revision.version,
      revision: this.revision.number,
      connectTimeout: d.timeouts.connect,
      upstreamTimeout: d.timeouts.upstream,
      keepAlive: d.timeouts.keepAlive,
      traffic: d.pool.traffic.version(this.revision.version)
    })
    void h.exited.then(info => {
      if (this.state === 'draining' || this.state === 'stopped') return
      this.fail(info.signal !== null ? `exited on ${info.signal}` : `exited with code ${String(info.code)}`)
    })
    this.prober = new Prober(h.host, h.port, d.readiness, verdict => this.onProbe(verdict))
    this.prober.start()
  }

  private onProbe (verdict: 'up' | 'down'): void {
    if (this.state === 'draining' || this.state === 'stopped' || this.state === 'failed') return
    if (verdict === 'up') {
      clearTimeout(this.startTimer)
      this.readyAt = Date.now()
      this.state = 'ready'
      log('info', 'instance ready', this.fields())
      // Traffic from the moment readiness passed; minReady is a soak while serving.
      this.deps.pool.add(this.upstream as Upstream)
      this.setState('serving')
    } else if (this.state === 'serving') {
      // Like a failing Kubernetes readiness probe: out of the balancer, not killed.
      this.deps.pool.remove(this.upstream as Upstream)
      this.readyAt = 0
      log('warn', 'instance failed its readiness probe', this.fields())
      this.setState('starting')
    }
  }

  /** Something went wrong: out of the balancer at once, and the process is stopped. */
  fail (reason: string): void {
    if (this.state === 'failed' || this.state === 'stopped' || this.state === 'draining') return
    clearTimeout(this.startTimer)
    this.prober?.stop()
    if (this.upstream !== undefined) this.deps.pool.remove(this.upstream)
    this.failure = reason
    log('warn', 'instance failed', { ...this.fields(), reason })
    this.setState('failed')
    void this.handle?.stop('SIGKILL', 1_000).then(() => this.upstream?.destroy())
  }

  /**
   * SPEC §3 stopping order: out of the balancer; close idle upstream sockets;
   * wait for in-flight requests and upgraded connections up to drainTimeout,
   * then close what is left; stopSignal; stopTimeout; SIGKILL.
   */
  async stop (spec: Pick<RolloutSpec, 'drainTimeout' | 'stopSignal' | 'stopTimeout'>): Promise<void> {
    this.stopping ??= (async () => {
      clearTimeout(this.startTimer)
      const wasFailed = this.state === 'failed'
      const u = this.upstream
      if (u !== undefined) this.deps.pool.remove(u)
      this.prober?.stop()
      this.setState('draining')
      if (u !== undefined && !wasFailed) {
        const closing = u.close() // idle sockets now; busy ones after their request
        const drained = await u.waitIdle(spec.drainTimeout)
        if (!drained) log('warn', 'drain timed out; closing what is left', { ...this.fields(), inflight: u.inflight })
        u.closeUpgrades()
        if (!drained) await u.destroy()
        await closing
      }
      await this.handle?.stop(spec.stopSignal, spec.stopTimeout)
      await u?.destroy()
      this.setState('stopped')
    })()
    await this.stopping
  }

  private setState (s: InstanceState): void {
    const previous = this.state
    this.state = s
    if (this.upstream !== undefined) this.upstream.state = s
    log('debug', 'instance state', { ...this.fields(), state: s })
    this.deps.onChange(this, previous)
  }

  fields (): Record<string, unknown> {
    return { pool: this.deps.pool.name, instance: this.id, version: this.revision.version, revision: this.revision.number, pid: this.pid }
  }
}
