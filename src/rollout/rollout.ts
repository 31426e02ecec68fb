import { randomBytes } from 'node:crypto'
import { resolveScaled } from '../config/duration.js'
import type { ManagedPoolConfig, RolloutSpec } from '../config/types.js'
import type { Revision } from '../driver/types.js'
import type { StepAnalysis } from './analysis.js'
import type { RolloutState, RolloutStep, StepState, StrategyName } from './planner.js'

export type RolloutStatus = 'running' | 'paused' | 'succeeded' | 'failed' | 'rolled_back' | 'aborted'

/** The strategy of one rollout: the pool's, with the request's overrides, counts resolved. */
export interface Strategy extends RolloutSpec {
  surge: number
  unavailable: number
  /** Draining instances with only upgraded connections that do not count against `surge`. */
  draining: number
}

export interface RolloutEvent { at: string, message: string }

/** A rollout as the admin API shows it. */
export interface RolloutView {
  id: string
  pool: string
  fromRevision: number
  toRevision: number
  fromVersion: string
  toVersion: string
  status: RolloutStatus
  direction: 'forward' | 'back'
  updated: number
  total: number
  startedAt: string
  finishedAt: string | null
  error: string | null
  events: RolloutEvent[]
  /** rolling, canary or blueGreen. */
  strategy: StrategyName
  /** Canary: the current step, 1-based, 0 before the first step's traffic; blue-green: 1 once switched; rolling: 0. */
  step: number
  /** Percent of requests going to the new revision now (rolling: its share of the serving instances). */
  weight: number
  /** Each step's analysis, in order (a step that waited for traffic has two). */
  analysis: StepAnalysis[]
}

/** Counts and percentages of a rollout spec resolved against the pool's size (and its port range). */
export function resolveStrategy (spec: RolloutSpec, pool: ManagedPoolConfig): Strategy {
  const size = pool.size
  const surge = resolveScaled(spec.maxSurge, size, 'up')
  // Each instance that drains beside the surge holds a port of the range: never more than the range has room for.
  const ports = pool.kind === 'process' ? pool.process.ports : pool.docker.network === 'host' ? pool.docker.ports : undefined
  const room = ports === undefined ? Infinity : Math.max(0, ports.to - ports.from + 1 - size - surge)
  return {
    ...spec,
    surge,
    unavailable: resolveScaled(spec.maxUnavailable, size, 'down'),
    draining: Math.min(room, resolveScaled(spec.maxDraining, size, 'up'))
  }
}

/** Random bytes in an id: with the pool and revision in it too, a clash is out of reach. */
export const ID_RANDOM_BYTES = 3
/** Events a rollout keeps; older ones are dropped (the log has them all). */
const EVENTS_KEPT = 500
/** Instance transitions kept for the report: about five each for the 2,000 instances that replacing the largest pool (1,000) involves. */
const MARKS_KEPT = 10_000

/** An instance state change during the rollout, for the report's batch timings. */
export interface InstanceMark { at: number, instance: string, revision: number, state: string, batch: number }

/** A turn of the traffic during a canary or blue-green (a step's start, the switch, a promote), for the report. */
export interface TrafficMark { at: number, label: string, weight: number }

/**
 * The record of one rollout and the few transitions it can make. It decides
 * nothing about instances: the planner (planner.ts) does, from `planState()`,
 * and the managed pool records each plan's outcome here with `record()`.
 * Read top to bottom:
 *
 *   running ──converged──▶ succeeded
 *      │ a new instance failed / progressDeadline passed
 *      ├─ onFailure: rollback ─▶ rolling back ──converged──▶ rolled_back
 *      └─ onFailure: pause ────▶ paused (resume: forward again; abort: roll back)
 *   abort (any time) ─▶ rolling back ──converged──▶ aborted
 *   rolling back and the old revision cannot be restored ─▶ failed
 *
 * A canary also walks its steps (beginStep → judged: pass / wait / fail;
 * a `pause: manual` step is `paused` until resume, which judges it; promote
 * skips the rest); a blue-green switches once (switchTraffic), and a
 * rollback within its scaleDownDelay (rollBack) ends it rolled_back.
 */
export class Rollout {
  readonly id: string
  status: RolloutStatus = 'running'
  /** forward: towards `to`; back: restoring `from`. */
  direction: 'forward' | 'back' = 'forward'
  error: string | null = null
  readonly events: RolloutEvent[] = []
  readonly startedAt = new Date()
  finishedAt: Date | null = null
  updated = 0
  /** When it last made progress, turned or resumed (ms epoch): progressDeadline counts from here. */
  progressAt = Date.now()
  /** The distance to convergence at the last plan (see RolloutStep.remaining). */
  private remaining = Infinity
  /** Batches started so far; instance marks carry the batch they belong to. */
  batches = 0
  readonly marks: InstanceMark[] = []
  /** Canary and blue-green: how far through the steps. */
  readonly steps: StepState | undefined
  /** Percent of requests to the new revision now (set by the pool after every plan). */
  weight = 0
  readonly analysis: StepAnalysis[] = []
  readonly trafficMarks: TrafficMark[] = []
  /** A `pause: manual` step waits for resume, which judges it. */
  awaitingResume = false
  private aborted = false
  private readonly listeners = new Set<(r: Rollout, e: RolloutEvent) => void>()

  constructor (
    readonly pool: string,
    readonly from: Revision,
    readonly to: Revision,
    readonly strategy: Strategy,
    readonly total: number
  ) {
    this.id = `${pool}-${to.number}-${randomBytes(ID_RANDOM_BYTES).toString('hex')}`
    if (strategy.strategy !== 'rolling') this.steps = { step: 0, stepAt: 0, passed: false, extended: false, promoted: false, weight: 0 }
    const how = strategy.strategy === 'canary' ? `, canary of ${this.stepCount} step(s)` : strategy.strategy === 'blueGreen' ? ', blue-green' : ''
    this.note(`rollout of ${pool} from revision ${from.number} (${from.version}) to ${to.number} (${to.version}) started${how}`)
  }

  get strategyName (): StrategyName { return this.strategy.strategy }
  private get stepCount (): number { return this.strategy.canary?.steps.length ?? 0 }
  private get toLabel (): string { return `revision ${this.to.number} (${this.to.version})` }

  get active (): boolean { return this.status === 'running' || this.status === 'paused' }

  /** The revision the pool should converge on right now. */
  get targetRevision (): Revision { return this.direction === 'forward' ? this.to : this.from }

  /** What the planner needs of it; undefined once it has finished. */
  planState (): RolloutState | undefined {
    if (this.status !== 'running' && this.status !== 'paused') return undefined
    return {
      status: this.status,
      direction: this.direction,
      from: this.from.number,
      to: this.to.number,
      updated: this.updated,
      remaining: this.remaining,
      progressAt: this.progressAt,
      steps: this.steps === undefined ? undefined : { ...this.steps }
    }
  }

  /** The share of requests the new revision gets now; the rest of a canary never goes below it. */
  setWeight (weight: number): void {
    this.weight = Math.round(weight * 10) / 10
    if (this.steps !== undefined && this.direction === 'forward') this.steps.weight = Math.max(this.steps.weight, weight)
  }

  /** A canary step's instances serve: its traffic begins now. */
  beginStep (step: number, weight: number, now: number): void {
    const st = this.steps
    if (st === undefined) return
    Object.assign(st, { step, stepAt: now, passed: false, extended: false })
    this.progressAt = now
    this.trafficMarks.push({ at: now, label: `step ${step} · ${weight}%`, weight })
    const pause = this.strategy.canary?.steps[step - 1]?.pause
    const until = pause === 'manual' ? 'until resume' : pause === undefined ? '' : `for ${pause / 1000} s`
    this.note(`step ${step}/${this.stepCount}: ${weight}% of requests to ${this.toLabel} ${until}`.trimEnd())
  }

  /** Records a step's analysis and makes its turn: pass (next step, or the rest), wait (one more pause) or fail. */
  judged (a: StepAnalysis, now: number): void {
    const st = this.steps
    if (st === undefined || !this.active || this.direction === 'back') return
    this.analysis.push(a)
    if (a.verdict === 'fail') {
      this.fail(`step ${a.step} analysis: ${a.reason}`)
      return
    }
    this.note(`step ${a.step} analysis: ${a.verdict}: ${a.reason}`)
    if (a.verdict === 'wait') {
      st.extended = true
      return
    }
    st.passed = true
    this.progressAt = now
    if (a.step >= this.stepCount) {
      st.promoted = true
      this.note(`all ${this.stepCount} step(s) passed: the rest of the pool is replaced as a rolling update`)
    }
  }

  /** A `pause: manual` step: paused until resume, which judges it. */
  awaitManual (step: number): void {
    if (this.status !== 'running' || this.awaitingResume) return
    this.awaitingResume = true
    this.status = 'paused'
    this.note(`step ${step}: paused until resume (pause: manual)`)
  }

  /** Canary: skips the remaining steps (no analysis): the rest is a rolling update. False when there is nothing to promote. */
  promote (): boolean {
    const st = this.steps
    if (this.strategyName !== 'canary' || st === undefined || !this.active || this.direction === 'back' || st.promoted) return false
    st.promoted = true
    this.awaitingResume = false
    if (this.status === 'paused') this.status = 'running'
    this.progressAt = Date.now()
    this.trafficMarks.push({ at: this.progressAt, label: 'promote', weight: this.weight })
    this.note('promoted: the remaining steps are skipped; the rest of the pool is replaced as a rolling update')
    return true
  }

  /**
   * Blue-green: the new set is ready and the table that sends it every new
   * request is on its way to the data planes. The switch is recorded when
   * they all applied it (switchApplied): with proxy workers in other
   * processes that is a few milliseconds later, and the event must not claim
   * a moment at which a worker still sent requests to the old set.
   */
  switchTraffic (now: number): void {
    const st = this.steps
    if (st === undefined || st.step > 0) return
    Object.assign(st, { step: 1, stepAt: now })
    this.progressAt = now
    this.note(`switching: the new set is ready; the table that sends every new request to ${this.toLabel} goes to the proxy workers`)
  }

  /** Blue-green: every data plane applied the switch; scaleDownDelay counts from here. */
  switchApplied (at: number): void {
    const st = this.steps
    if (st === undefined || st.step !== 1 || this.trafficMarks.some(m => m.label === 'switch')) return
    st.stepAt = Math.max(st.stepAt, at)
    this.progressAt = Math.max(this.progressAt, at)
    this.trafficMarks.push({ at: st.stepAt, label: 'switch', weight: 100 })
    this.note(`switched: every new request goes to ${this.toLabel}; the old set stays ready for ${this.strategy.blueGreen.scaleDownDelay / 1000} s (scaleDownDelay)`)
  }

  /** A blue-green rollout within its scaleDownDelay: the old set is whole and ready, so a rollback is a switch back. */
  canSwitchBack (now: number): boolean {
    const st = this.steps
    return this.active && this.strategyName === 'blueGreen' && this.direction === 'forward' && st !== undefined && st.step > 0 &&
      now < st.stepAt + this.strategy.blueGreen.scaleDownDelay
  }

  /** Blue-green within scaleDownDelay: an operator's rollback switches back at once; the rollout ends rolled_back. */
  rollBack (): void {
    if (!this.active || this.direction === 'back') return
    this.direction = 'back'
    this.status = 'running'
    this.progressAt = Date.now()
    this.trafficMarks.push({ at: this.progressAt, label: 'switch back', weight: 0 })
    this.note(`rollback requested: every new request goes back to revision ${this.from.number} (${this.from.version}); the new set drains and stops`)
  }

  /** Takes in one plan's outcome (the turns it implies are made by the pool: fail, giveUp, converged). */
  record (step: RolloutStep, now: number): void {
    this.updated = step.updated
    this.remaining = step.remaining
    if (step.progressed) this.progressAt = now
    if (step.newBatch) this.batches++
  }

  /** A new instance failed, or the deadline passed, while going forward. */
  fail (reason: string): void {
    if (!this.active || this.direction === 'back') return
    this.error = reason
    this.note(`failed: ${reason}`)
    this.progressAt = Date.now()
    this.awaitingResume = false
    if (this.steps !== undefined && this.strategy.onFailure === 'rollback') this.trafficMarks.push({ at: this.progressAt, label: 'rollback', weight: 0 })
    if (this.strategy.onFailure === 'rollback') {
      this.direction = 'back'
      this.status = 'running'
      this.note(`rolling back to revision ${this.from.number} (${this.from.version})`)
    } else {
      this.status = 'paused'
      this.note('paused (onFailure: pause): resume to retry, abort to roll back')
    }
  }

  /** Restoring the old revision failed too: nothing more can be done automatically. */
  giveUp (reason: string): void {
    if (!this.active) return
    this.error = this.error === null ? reason : `${this.error}; then ${reason}`
    this.finish('failed', `failed while rolling back: ${reason}`)
  }

  pause (): void {
    if (this.status !== 'running') return
    this.status = 'paused'
    this.note('paused')
  }

  /** True when the resume is that of a `pause: manual` step, which is judged now. */
  resume (): boolean {
    if (this.status !== 'paused') return false
    this.status = 'running'
    // A pause does not count against progressDeadline (as in Kubernetes).
    this.progressAt = Date.now()
    if (this.awaitingResume) {
      this.awaitingResume = false
      this.note(`resumed: judging step ${this.steps?.step ?? 0}`)
      return true
    }
    const st = this.steps
    if (this.error !== null && st !== undefined && st.step > 0 && !st.passed && this.direction === 'forward') {
      // Resumed after a failed step (onFailure: pause): the step is judged afresh, over a new window.
      Object.assign(st, { stepAt: this.progressAt, extended: false })
    }
    this.note('resumed')
    return false
  }

  abort (): void {
    if (!this.active) return
    this.aborted = true
    this.awaitingResume = false
    this.direction = 'back'
    this.progressAt = Date.now()
    this.status = 'running'
    this.note(`aborted: rolling back to revision ${this.from.number} (${this.from.version})`)
  }

  /** The pool reached the target revision at full size. */
  converged (): void {
    if (this.status !== 'running') return
    if (this.direction === 'forward') this.finish('succeeded', 'succeeded')
    else this.finish(this.aborted ? 'aborted' : 'rolled_back', this.aborted ? 'aborted; the old revision serves at full size' : 'rolled back; the old revision serves at full size')
  }

  note (message: string): void {
    const e = { at: new Date().toISOString(), message }
    this.events.push(e)
    if (this.events.length > EVENTS_KEPT) this.events.splice(0, this.events.length - EVENTS_KEPT)
    for (const l of this.listeners) l(this, e)
  }

  /** Records an instance transition under the batch started last. */
  mark (instance: string, revision: number, state: string): void {
    if (this.marks.length < MARKS_KEPT) this.marks.push({ at: Date.now(), instance, revision, state, batch: this.batches })
  }

  subscribe (fn: (r: Rollout, e: RolloutEvent) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  view (): RolloutView {
    return {
      id: this.id,
      pool: this.pool,
      fromRevision: this.from.number,
      toRevision: this.to.number,
      fromVersion: this.from.version,
      toVersion: this.to.version,
      status: this.status,
      direction: this.direction,
      updated: this.updated,
      total: this.total,
      startedAt: this.startedAt.toISOString(),
      finishedAt: this.finishedAt?.toISOString() ?? null,
      error: this.error,
      events: this.events,
      strategy: this.strategyName,
      step: this.steps?.step ?? 0,
      weight: this.weight,
      analysis: this.analysis
    }
  }

  private finish (status: RolloutStatus, message: string): void {
    this.status = status
    this.finishedAt = new Date()
    this.note(message)
  }
}
