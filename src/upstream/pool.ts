import { DEFAULTS } from '../config/defaults.js'
import type { PoolConfig } from '../config/types.js'
import { log } from '../log.js'
import { PoolTraffic } from '../metrics/traffic.js'
import { createBalancer, type Balancer } from './balancer.js'
import type { Upstream } from './upstream.js'

/**
 * The traffic side of a pool: which upstreams are in the balancer right now.
 * Everything that changes membership (health checks, passive ejection, the
 * rollout engine) goes through `add`/`remove`, so the hot path only reads one
 * array that is rebuilt on change.
 */
export class Pool {
  readonly name: string
  config: PoolConfig
  /** Per-version traffic, second by second (rollout reports). */
  readonly traffic = new PoolTraffic()
  private balancer: Balancer
  /** Upstreams taking traffic (state `serving`), in insertion order. */
  private members: Upstream[] = []
  /** The subset the balancer picks from: members not passively ejected. */
  private eligible: Upstream[] = []
  private readonly slowStartTimers = new Map<Upstream, NodeJS.Timeout>()
  private readonly ejectTimers = new Set<NodeJS.Timeout>()

  constructor (config: PoolConfig) {
    this.name = config.name
    this.config = config
    this.balancer = createBalancer(config.balance)
  }

  /** Applies a reloaded config: the balancer kind may change, members stay. */
  update (config: PoolConfig): void {
    if (config.balance !== this.config.balance) this.balancer = createBalancer(config.balance)
    this.config = config
  }

  pick (exclude?: Upstream, tried?: readonly Upstream[]): Upstream | undefined {
    return this.balancer.pick(this.eligible, exclude, tried)
  }

  get serving (): readonly Upstream[] { return this.members }

  has (u: Upstream): boolean { return this.members.includes(u) }

  /** Puts an upstream into the balancer, ramping its weight over slowStart. */
  add (u: Upstream, slowStartMs = this.config.rollout.slowStart): void {
    if (this.members.includes(u)) return
    u.state = 'serving'
    this.members = [...this.members, u]
    if (slowStartMs > 0 && this.members.length > 1) this.rampUp(u, slowStartMs)
    this.recompute()
  }

  /** Takes an upstream out of the balancer: no new request reaches it from here on. */
  remove (u: Upstream): void {
    const t = this.slowStartTimers.get(u)
    if (t !== undefined) { clearInterval(t); this.slowStartTimers.delete(u) }
    if (!this.members.includes(u)) return
    this.members = this.members.filter(m => m !== u)
    this.recompute()
  }

  /** Sum of requests in flight over the members (scrape time, not hot path). */
  get inflight (): number {
    let n = 0
    for (const m of this.members) n += m.inflight
    return n
  }

  /**
   * Passive health (nginx max_fails, Envoy outlier detection): an upstream
   * with too many consecutive failures leaves the balancer for a while, but
   * never more than half of the pool, so a pool-wide fault still gets traffic.
   */
  recordFailure (u: Upstream): void {
    u.failures++
    if (u.failures < DEFAULTS.ejection.consecutiveFailures || u.ejectedUntil > Date.now()) return
    const ejected = this.members.filter(m => m.ejectedUntil > Date.now()).length
    if ((ejected + 1) * 100 > this.members.length * DEFAULTS.ejection.maxEjectedPercent) return
    u.ejectedUntil = Date.now() + DEFAULTS.ejection.duration
    log('warn', 'upstream ejected', { pool: this.name, upstream: u.address, failures: u.failures })
    this.recompute()
    const timer = setTimeout(() => {
      this.ejectTimers.delete(timer)
      u.ejectedUntil = 0
      u.failures = 0
      log('info', 'upstream back from ejection', { pool: this.name, upstream: u.address })
      this.recompute()
    }, DEFAULTS.ejection.duration)
    timer.unref()
    this.ejectTimers.add(timer)
  }

  recordSuccess (u: Upstream): void {
    if (u.failures !== 0) u.failures = 0
  }

  close (): void {
    for (const t of this.slowStartTimers.values()) clearInterval(t)
    for (const t of this.ejectTimers) clearTimeout(t)
    this.slowStartTimers.clear()
    this.ejectTimers.clear()
  }

  private recompute (): void {
    const now = Date.now()
    const ok = this.members.filter(m => m.ejectedUntil <= now)
    // If everything is ejected, use everything: a guess beats a 503.
    this.eligible = ok.length > 0 ? ok : this.members
  }

  private rampUp (u: Upstream, ms: number): void {
    const started = Date.now()
    u.weight = 0.05
    const step = Math.max(50, Math.floor(ms / 20))
    const timer = setInterval(() => {
      u.weight = Math.min(1, Math.max(0.05, (Date.now() - started) / ms))
      if (u.weight >= 1) { clearInterval(timer); this.slowStartTimers.delete(u) }
    }, step)
    timer.unref()
    this.slowStartTimers.set(u, timer)
  }
}
