import { DEFAULTS } from '../config/defaults.js'
import type { BalanceKind } from '../config/types.js'
import { log } from '../log.js'
import { PoolCounters } from '../metrics/traffic.js'
import { createBalancer, type Balancer } from './balancer.js'
import type { Upstream } from './upstream.js'

/** A slow-starting member begins at this share of a full member's traffic (Envoy's min_weight_percent). */
const MIN_WEIGHT = 0.05
/** Slow-start weights are recomputed this many times over the ramp, and at most every 50 ms. */
const RAMP_STEPS = 20
const MIN_RAMP_STEP_MS = 50

/** A member as the table gives it: an upstream and when it began serving. */
export interface Serving {
  upstream: Upstream
  /** ms epoch; its weight ramps from here over slowStart, the same in every data plane. */
  servingSince: number
}

/**
 * The traffic side of a pool in one data plane: which upstreams the balancer
 * picks from right now. The members are set whole from the controller's
 * table (`setMembers`); passive ejection is this data plane's own call. The
 * hot path reads one array, rebuilt on change.
 */
export class Pool {
  /** Per-version traffic counters (rollout reports, metrics). */
  readonly traffic = new PoolCounters()
  private balancer: Balancer
  private balance: BalanceKind
  private slowStart = 0
  /** Upstreams taking traffic, in table order. */
  private members: Serving[] = []
  /** The subset the balancer picks from: members not passively ejected. */
  private eligible: Upstream[] = []
  private rampTimer: NodeJS.Timeout | undefined
  private readonly ejectTimers = new Set<NodeJS.Timeout>()

  constructor (readonly name: string, balance: BalanceKind) {
    this.balance = balance
    this.balancer = createBalancer(balance)
  }

  /** The balancing kind may change with a reload; the members stay. */
  setBalance (kind: BalanceKind): void {
    if (kind === this.balance) return
    this.balance = kind
    this.balancer = createBalancer(kind)
  }

  /**
   * The members serving from now on: one that is not among them gets no new
   * request from this call on. Weights ramp over `slowStartMs` from each
   * member's servingSince.
   */
  setMembers (members: readonly Serving[], slowStartMs: number, now = Date.now()): void {
    this.members = [...members]
    if (slowStartMs !== this.slowStart) {
      // The ramp's step depends on slowStart: start it afresh.
      clearInterval(this.rampTimer)
      this.rampTimer = undefined
      this.slowStart = slowStartMs
    }
    this.reweigh(now)
    this.recompute()
  }

  pick (exclude?: Upstream, tried?: readonly Upstream[]): Upstream | undefined {
    return this.balancer.pick(this.eligible, exclude, tried)
  }

  get serving (): readonly Upstream[] { return this.members.map(m => m.upstream) }

  has (u: Upstream): boolean { return this.members.some(m => m.upstream === u) }

  /**
   * Passive health (nginx max_fails, Envoy outlier detection): an upstream
   * with too many consecutive failures leaves the balancer for a while, but
   * never more than half of the pool, so a pool-wide fault still gets traffic.
   */
  recordFailure (u: Upstream): void {
    u.failures++
    if (u.failures < DEFAULTS.ejection.consecutiveFailures || u.ejectedUntil > Date.now()) return
    const ejected = this.members.filter(m => m.upstream.ejectedUntil > Date.now()).length
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
    clearInterval(this.rampTimer)
    this.rampTimer = undefined
    for (const t of this.ejectTimers) clearTimeout(t)
    this.ejectTimers.clear()
  }

  private recompute (): void {
    const now = Date.now()
    const ok: Upstream[] = []
    for (const m of this.members) if (m.upstream.ejectedUntil <= now) ok.push(m.upstream)
    // If everything is ejected, use everything: a guess beats a 503.
    this.eligible = ok.length > 0 ? ok : this.members.map(m => m.upstream)
  }

  /** Slow start: weight = the share of slowStart served so far; recomputed on a timer while any member ramps. */
  private reweigh (now: number): void {
    let ramping = false
    for (const m of this.members) {
      const w = this.slowStart <= 0 ? 1 : Math.min(1, Math.max(MIN_WEIGHT, (now - m.servingSince) / this.slowStart))
      m.upstream.weight = w
      if (w < 1) ramping = true
    }
    if (ramping && this.rampTimer === undefined) {
      this.rampTimer = setInterval(() => this.reweigh(Date.now()), Math.max(MIN_RAMP_STEP_MS, Math.floor(this.slowStart / RAMP_STEPS)))
      this.rampTimer.unref()
    } else if (!ramping && this.rampTimer !== undefined) {
      clearInterval(this.rampTimer)
      this.rampTimer = undefined
    }
  }
}
