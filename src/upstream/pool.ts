import { DEFAULTS } from '../config/defaults.js'
import type { BalanceKind } from '../config/types.js'
import type { TrafficSplit } from '../controller/data-plane-link.js'
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

/** The weights of the smooth weighted round-robin between two revisions add up to this. */
const SPLIT_TOTAL = 100

/**
 * The traffic side of a pool in one data plane: which upstreams the balancer
 * picks from right now. The members are set whole from the controller's
 * table (`setMembers`), and so is the split between two revisions during a
 * canary or blue-green rollout (`setSplit`); passive ejection is this data
 * plane's own call. The hot path reads arrays rebuilt on change.
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
  private split: TrafficSplit | undefined
  /** With a split: the eligible members of the split's canary revision, and the others. */
  private canaryEligible: Upstream[] = []
  private stableEligible: Upstream[] = []
  /** Smooth weighted round-robin (nginx's) between the two revisions: each side's current weight. */
  private turnCanary = 0
  private turnStable = 0
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

  /**
   * The revisions' shares from now on (undefined: none, the balancer over
   * every member). The weighted turn starts over when the weight changes.
   */
  setSplit (split: TrafficSplit | undefined): void {
    const prev = this.split
    this.split = split
    if (prev?.weight !== split?.weight || prev?.canary !== split?.canary) {
      this.turnCanary = 0
      this.turnStable = 0
    }
    this.recompute()
  }

  /**
   * A new request's upstream: first the revision (a route pinned to one, a
   * pinning header, else the split's weighted turn), then the balancer
   * within it. `rawHeaders` is read only when the split pins by header.
   * Undefined when nothing can take it (503).
   */
  choose (rawHeaders: readonly string[] | undefined, revision: number): Upstream | undefined {
    const split = this.split
    if (revision !== 0) return this.balancer.pick(this.ofRevision(revision), undefined)
    if (split === undefined) return this.balancer.pick(this.eligible, undefined)
    if (split.header !== undefined && rawHeaders !== undefined) {
      const pin = pinOf(rawHeaders, split.header)
      if (pin === 'always') return this.balancer.pick(this.canaryEligible, undefined)
      if (pin === 'never') return this.balancer.pick(this.stableEligible, undefined)
    }
    let group = this.nextTurnIsCanary(split.weight) ? this.canaryEligible : this.stableEligible
    // A side with no member (its instances are not serving yet, or no more): the other one.
    if (group.length === 0) group = this.eligible
    return this.balancer.pick(group, undefined)
  }

  /**
   * Any request's upstream; for a retry, `exclude` is the one that just
   * failed and `tried` every one tried. With a split a retry stays on the
   * revision of the one that failed while it has an untried member, else it
   * goes to any other: hiding a dead instance (G4) comes before the shares.
   */
  pick (exclude?: Upstream, tried?: readonly Upstream[]): Upstream | undefined {
    if (exclude === undefined) return this.choose(undefined, 0)
    const split = this.split
    if (split !== undefined) {
      const group = exclude.revision === split.canary ? this.canaryEligible : this.stableEligible
      if (group.some(u => u !== exclude && (tried === undefined || !tried.includes(u)))) return this.balancer.pick(group, exclude, tried)
    }
    return this.balancer.pick(this.eligible, exclude, tried)
  }

  /** The canary's turn or the stable one's: exactly `weight` of every 100 picks go to the canary, evenly spread. */
  private nextTurnIsCanary (weight: number): boolean {
    this.turnCanary += weight
    this.turnStable += SPLIT_TOTAL - weight
    if (this.turnCanary > this.turnStable) {
      this.turnCanary -= SPLIT_TOTAL
      return true
    }
    this.turnStable -= SPLIT_TOTAL
    return false
  }

  /** The eligible members of one revision (a pinned route); its array is kept when it is the canary's. */
  private ofRevision (revision: number): Upstream[] {
    if (this.split?.canary === revision) return this.canaryEligible
    return this.eligible.filter(u => u.revision === revision)
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
    this.eligible = eligibleOf(this.members.map(m => m.upstream), now)
    const split = this.split
    if (split === undefined) {
      this.canaryEligible = []
      this.stableEligible = []
      return
    }
    // Each side on its own, so that ejections on one side never send its share to the other.
    this.canaryEligible = eligibleOf(this.members.filter(m => m.upstream.revision === split.canary).map(m => m.upstream), now)
    this.stableEligible = eligibleOf(this.members.filter(m => m.upstream.revision !== split.canary).map(m => m.upstream), now)
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

/** The members not ejected; if every one is, all of them: a guess beats a 503. */
function eligibleOf (members: Upstream[], now: number): Upstream[] {
  const ok = members.filter(u => u.ejectedUntil <= now)
  return ok.length > 0 ? ok : members
}

/** The value of the pinning header, when it says `always` or `never` (case-insensitive), else undefined. */
function pinOf (rawHeaders: readonly string[], name: string): 'always' | 'never' | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const key = rawHeaders[i]
    if (key.length !== name.length || key.toLowerCase() !== name) continue
    const v = rawHeaders[i + 1].trim().toLowerCase()
    if (v === 'always' || v === 'never') return v
  }
  return undefined
}
