import { randomBytes } from 'node:crypto'
import type { ManagedPoolConfig, RolloutSpec } from '../config/types.js'
import { specKey, type Driver, type Revision } from '../driver/types.js'
import { log } from '../log.js'
import { CRASH_LOOP_AFTER, judgeFailure, judgeUnready, NO_CRASHES, type CrashRecord, type Verdict } from '../rollout/failures.js'
import { planRolling, plannerFor, type InstanceState, type Plan, type PlanInstance } from '../rollout/planner.js'
import { ID_RANDOM_BYTES, resolveStrategy, Rollout, type Strategy } from '../rollout/rollout.js'
import { Instance } from './instance.js'
import type { PoolState } from '../supervisor/protocol.js'
import type { ControllerMetrics } from './metrics.js'
import { Steering, type TimelineSource } from './steering.js'
import type { PoolMembers } from './table.js'

/** Revisions a pool remembers for rollback (as Kubernetes' revisionHistoryLimit, default 10). */
const REVISIONS_KEPT = 10
/** Failed instances shown in status beside the live ones. */
const FAILED_SHOWN = 5
/** started() waits this long past startTimeout, so that an instance ready at the last moment still counts. */
const START_GRACE_MS = 1_000

export type PoolEvent =
  | { type: 'instance', pool: string, instance: string, version: string, revision: number, state: string, reason?: string }
  | { type: 'rollout', pool: string, rollout: string, status: string, message: string, updated: number, total: number, strategy: string, step: number, weight: number }

export interface ManagedDeps {
  config: ManagedPoolConfig
  driver: Driver
  members: PoolMembers
  metrics: ControllerMetrics
  emit: (e: PoolEvent) => void
  /** Every rollout as it begins (the controller keeps their records). */
  onRollout: (r: Rollout) => void
  /** Called when the set of running instances or the revisions change (the state a next controller adopts from). */
  onInstances?: () => void
  /** The pool's per-second traffic, for a canary step's analysis. */
  timeline?: () => TimelineSource
  /**
   * The state a previous controller handed over (an upgrade of baton, a
   * restart of the controller): its revisions, and the instances to adopt.
   */
  handover?: PoolState
}

/** What runs, for a revision: the process or the container spec. */
function specOf (config: ManagedPoolConfig): Pick<Revision, 'process' | 'docker'> {
  return config.kind === 'process' ? { process: config.process } : { docker: config.docker }
}

/**
 * The controller of a managed pool, in the manner of a Kubernetes Deployment:
 * after every event it asks the planner (src/rollout/planner.ts) what to
 * start and stop and executes the plan. A rollout is nothing but a change of
 * target plus a record that watches the convergence; crash recovery is the
 * same loop.
 */
export class ManagedPool {
  readonly name: string
  instances: Instance[] = []
  /** Recently failed instances, kept for status. */
  failed: Instance[] = []
  revisions: Revision[]
  target: Revision
  rollout: Rollout | undefined
  private config: ManagedPoolConfig
  private readonly steering: Steering
  private crash: CrashRecord = NO_CRASHES
  private wakeTimer: NodeJS.Timeout | undefined
  private closing = false
  /** An upgrade is under way, or this controller does not serve yet: nothing is started or stopped. */
  private frozen = false
  private reconciling = false
  private again = false

  constructor (private readonly deps: ManagedDeps) {
    this.name = deps.config.name
    this.config = deps.config
    const first: Revision = {
      number: 1,
      version: this.config.version,
      ...specOf(this.config),
      createdAt: new Date().toISOString(),
      good: true
    }
    this.revisions = [first]
    this.target = first
    this.steering = new Steering(this.name, deps.members, deps.timeline ?? (() => ({ traffic: undefined, lastSecond: undefined })))
    const h = deps.handover
    // Taking over from another controller: nothing moves until it serves (thaw).
    this.frozen = h !== undefined
    if (h !== undefined && h.revisions.length > 0) {
      this.revisions = h.revisions
      this.target = h.revisions.find(r => r.number === h.target) ?? h.revisions[h.revisions.length - 1]
      if (specKey(this.target) !== specKey(first)) {
        log('warn', 'the config file asks for another version or spec than the pool runs: run baton reload to roll it out', { pool: this.name, runs: this.target.version, config: first.version })
      }
    }
  }

  /** What a next controller needs to adopt this pool's instances without restarting them. */
  snapshot (): PoolState {
    return { name: this.name, revisions: this.revisions, target: this.target.number, instances: this.instances.map(i => ({ id: i.id, revision: i.revision.number })) }
  }

  /** Nothing starts or stops until thaw (the instances' own probes and exits still count). */
  freeze (): void { this.frozen = true }

  thaw (): void {
    this.frozen = false
    this.reconcile()
  }

  /** The live instances, then the recently failed ones. */
  get all (): Instance[] { return [...this.instances, ...this.failed] }

  get crashLooping (): boolean { return this.crash.crashes >= CRASH_LOOP_AFTER }
  get restarts (): number { return this.crash.crashes }

  /** Adopts what an earlier run left, starts the rest; resolves when all serve or startTimeout passed. */
  async started (): Promise<void> {
    await this.adoptLeftovers()
    this.reconcile()
    const limit = this.config.readiness.startTimeout + START_GRACE_MS
    if (this.deps.handover !== undefined) {
      // Taking over: ready once every adopted instance was probed (or gave
      // up); the pool is made whole after, once this controller serves.
      await this.waitFor(() => this.instances.every(i => i.state !== 'starting' && i.state !== 'ready'), limit)
      return
    }
    await this.waitFor(() => this.servingCount() >= this.config.size, limit)
  }

  /** Applies a reloaded pool config in place: size, readiness, strategy (balancing is the table's). */
  update (config: ManagedPoolConfig): void {
    this.config = config
    this.reconcile()
  }

  // ── rollouts ───────────────────────────────────────────────────────────

  /** Starts a rollout to a new revision made from the current one and `change`. */
  startRollout (change: { version?: string, env?: Record<string, string>, command?: string | string[], image?: string }, strategy: Partial<RolloutSpec> = {}): Rollout {
    const from = this.target
    return this.beginRollout(from, this.newRevision({
      version: change.version ?? from.version,
      process: from.process === undefined
        ? undefined
        : { ...from.process, command: change.command ?? from.process.command, env: { ...from.process.env, ...change.env } },
      docker: from.docker === undefined
        ? undefined
        : { ...from.docker, image: change.image ?? from.docker.image, env: { ...from.docker.env, ...change.env } }
    }), strategy)
  }

  /** Rolls out the process or container spec of a reloaded config, as it stands. */
  rolloutConfig (config: ManagedPoolConfig): Rollout {
    this.update(config)
    return this.beginRollout(this.target, this.newRevision({ version: config.version, ...specOf(config) }), {})
  }

  private newRevision (spec: Pick<Revision, 'version' | 'process' | 'docker'>): Revision {
    const next: Revision = { number: Math.max(...this.revisions.map(r => r.number)) + 1, ...spec, createdAt: new Date().toISOString() }
    this.revisions.push(next)
    if (this.revisions.length > REVISIONS_KEPT) this.revisions.splice(0, this.revisions.length - REVISIONS_KEPT)
    this.deps.onInstances?.()
    return next
  }

  /** Rolls back to the revision before the current one (a rollout of its own). */
  rollbackToPrevious (): Rollout | undefined {
    // The newest earlier revision that served at full size: not one that was rolled back.
    const idx = this.revisions.findIndex(r => r === this.target)
    const prev = this.revisions.slice(0, Math.max(0, idx)).reverse().find(r => r.good === true)
    if (prev === undefined) return undefined
    // The previous revision becomes the newest again, as `kubectl rollout undo` does.
    this.revisions.splice(this.revisions.indexOf(prev), 1)
    this.revisions.push(prev)
    // Back to a revision that served at full size: no steps to judge it by (as Argo Rollouts skips them).
    return this.beginRollout(this.target, prev, { strategy: 'rolling' })
  }

  /** Switches a blue-green rollout within its scaleDownDelay back at once (see Rollout.canSwitchBack); undefined when there is none. */
  switchBack (): Rollout | undefined {
    const r = this.rollout
    if (r === undefined || !r.canSwitchBack(Date.now())) return undefined
    r.rollBack()
    this.afterRolloutChange()
    return r
  }

  private beginRollout (from: Revision, to: Revision, overrides: Partial<RolloutSpec>): Rollout {
    const strategy = resolveStrategy({ ...this.config.rollout, ...overrides }, this.config)
    const r = new Rollout(this.name, from, to, strategy, this.config.size)
    this.rollout = r
    this.crash = NO_CRASHES
    r.subscribe((_r, e) => this.deps.emit({ type: 'rollout', pool: this.name, rollout: r.id, status: r.status, message: e.message, updated: r.updated, total: r.total, strategy: r.strategyName, step: r.steps?.step ?? 0, weight: r.weight }))
    this.deps.metrics.rolloutInProgress.labels(this.name).set(1)
    this.deps.onRollout(r)
    this.reconcile()
    return r
  }

  pauseRollout (): void { this.rollout?.pause(); this.afterRolloutChange() }
  abortRollout (): void { this.rollout?.abort(); this.afterRolloutChange() }

  /** Resumes; a `pause: manual` step is judged at once. */
  resumeRollout (): void {
    const r = this.rollout
    if (r?.resume() === true) this.steering.judge(r, Date.now())
    this.afterRolloutChange()
  }

  /** Canary: skips the remaining steps; false when there is nothing to promote. */
  promoteRollout (): boolean {
    const promoted = this.rollout?.promote() === true
    if (promoted) this.reconcile()
    return promoted
  }

  private afterRolloutChange (): void {
    const r = this.rollout
    if (r !== undefined && !r.active) {
      this.deps.metrics.rolloutInProgress.labels(this.name).set(0)
      this.deps.metrics.rollouts.labels(this.name, r.status).inc()
      log(r.status === 'succeeded' ? 'info' : 'warn', 'rollout finished', { pool: this.name, rollout: r.id, status: r.status, error: r.error })
    }
    this.reconcile()
  }

  // ── the control loop ───────────────────────────────────────────────────

  /**
   * One pass of convergence, run after every instance state change and timer.
   * It only decides; instance starts and stops run on their own and call back.
   */
  reconcile (): void {
    if (this.closing || this.frozen) return
    if (this.reconciling) { this.again = true; return }
    this.reconciling = true
    try {
      do {
        this.again = false
        this.reconcileOnce()
      } while (this.again)
    } finally {
      this.reconciling = false
    }
  }

  private reconcileOnce (): void {
    const r = this.rollout?.active === true ? this.rollout : undefined
    const now = Date.now()
    const instances = this.instances.map(i => ({ id: i.id, revision: i.revision.number, state: i.state, readyAt: i.readyAt, upgradesOnly: i.upgradesOnly }))
    const plan = (r === undefined ? planRolling : plannerFor(r.strategyName))({
      now,
      size: this.config.size,
      current: this.target.number,
      bounds: r?.strategy ?? this.poolStrategy(),
      rollout: r?.planState(),
      backoffUntil: this.crash.backoffUntil,
      instances
    })
    this.execute(plan, r, now, instances)
  }

  /**
   * Carries a plan out: the traffic split first (moving all the traffic back
   * is one table), then stops (their drains belong to the batch before),
   * then the new batch, then the step the plan asks for.
   */
  private execute (plan: Plan, r: Rollout | undefined, now: number, instances: readonly PlanInstance[]): void {
    if (r !== undefined) this.target = plan.target === r.to.number ? r.to : r.from
    this.steering.apply(plan, r, instances)
    for (const id of plan.stop) {
      const i = this.instances.find(x => x.id === id)
      if (i !== undefined) this.stopInstance(i)
    }
    const step = plan.rollout
    if (r !== undefined && step !== undefined) r.record(step, now)
    for (let k = 0; k < plan.start; k++) this.startInstance(this.target)
    if (r !== undefined) for (let k = 0; k < (plan.startFrom ?? 0); k++) this.startInstance(r.from)
    if (plan.wakeAt !== undefined) this.wakeAt(plan.wakeAt)
    if (r !== undefined && plan.step !== undefined) {
      if (this.steering.act(plan.step, r, now)) this.afterRolloutChange()
      // The step moved the rollout on: plan again at once.
      else this.again = true
      return
    }
    if (r === undefined || step === undefined) return
    if (step.stalled) {
      if (r.direction === 'forward') r.fail(`no progress within progressDeadline (${r.strategy.progressDeadline} ms)`)
      else r.giveUp('the old revision did not come back within progressDeadline')
      this.afterRolloutChange()
    } else if (step.converged) {
      this.target.good = true
      r.converged()
      this.afterRolloutChange()
      this.notify()
    }
  }

  /** The pool's own bounds, for replacing crashed instances and size changes outside a rollout. */
  private poolStrategy (): Strategy {
    return resolveStrategy(this.config.rollout, this.config)
  }

  /**
   * Instances an earlier baton left (containers carry labels): those that run
   * the current spec are adopted and probed before they get traffic, the
   * others stopped and removed (README "Config reference": containers).
   */
  private async adoptLeftovers (): Promise<void> {
    const found = await this.deps.driver.discover?.().catch((err: Error) => {
      log('warn', 'could not list instances left by an earlier run', { pool: this.name, error: err.message })
      return []
    }) ?? []
    const key = specKey(this.target)
    const known = new Map(this.revisions.map(r => [specKey(r), r]))
    for (const f of found) {
      // Handed over by the previous controller: every instance of a revision
      // it knew is adopted; the planner drains what is too many or too old.
      const revision = this.deps.handover !== undefined ? known.get(f.specKey) : undefined
      if (revision !== undefined) {
        log('info', 'adopting a running instance', { pool: this.name, instance: f.id, version: revision.version, revision: revision.number, address: `${f.handle.host}:${f.handle.port}`, pid: f.handle.pid })
        this.newInstance(f.id, revision).attach(f.handle, true)
      } else if (f.specKey === key && this.instances.length < this.config.size) {
        log('info', 'adopting an instance left by an earlier run', { pool: this.name, instance: f.id, address: `${f.handle.host}:${f.handle.port}` })
        const inst = this.newInstance(f.id, this.target)
        inst.attach(f.handle)
      } else {
        log('info', 'removing an instance left by an earlier run', { pool: this.name, instance: f.id, current: f.specKey === key })
        void f.handle.stop(this.config.rollout.stopSignal, this.config.rollout.stopTimeout)
      }
    }
  }

  private newInstance (id: string, revision: Revision): Instance {
    const inst = new Instance(id, revision, {
      pool: this.name,
      driver: this.deps.driver,
      readiness: this.config.readiness,
      members: this.deps.members,
      onChange: (i, previous) => this.onInstanceChange(i, previous),
      onRespawn: () => this.deps.onInstances?.(),
      onUpgradesOnly: () => this.reconcile()
    })
    this.instances.push(inst)
    if (this.rollout?.active === true) this.rollout.mark(id, revision.number, 'starting')
    this.deps.emit({ type: 'instance', pool: this.name, instance: id, version: revision.version, revision: revision.number, state: 'starting' })
    return inst
  }

  private startInstance (revision: Revision): void {
    const inst = this.newInstance(`${this.name}-${revision.number}-${randomBytes(ID_RANDOM_BYTES).toString('hex')}`, revision)
    void inst.start().then(() => this.deps.onInstances?.())
  }

  private stopInstance (i: Instance): void {
    if (i.state === 'draining' || i.state === 'stopped') return
    void i.stop(this.rollout?.active === true ? this.rollout.strategy : this.config.rollout)
  }

  private onInstanceChange (i: Instance, previous: InstanceState): void {
    const r = this.rollout?.active === true ? this.rollout : undefined
    r?.mark(i.id, i.revision.number, i.state)
    this.deps.emit({ type: 'instance', pool: this.name, instance: i.id, version: i.version, revision: i.revision.number, state: i.state, reason: i.failure })
    if (i.state === 'failed' || i.state === 'stopped') {
      this.instances = this.instances.filter(x => x !== i)
      if (i.state === 'failed') this.failed = [...this.failed, i].slice(-FAILED_SHOWN)
      this.deps.onInstances?.()
    }
    const ref = { id: i.id, version: i.version, revision: i.revision.number }
    const verdict = i.state === 'failed'
      ? judgeFailure({ ...ref, readyAt: i.readyAt, reason: i.failure ?? 'failed' }, { rollout: r?.planState(), target: this.target.number, stable: this.stableRevision(r), crash: this.crash, now: Date.now() })
      : previous === 'serving' && i.state === 'starting' ? judgeUnready(ref, r?.planState()) : undefined
    if (verdict !== undefined && this.apply(verdict, i, r)) return
    this.reconcile()
    this.notify()
  }

  /** A canary's or blue-green's old set, kept whole beside the new one going forward: its crashes are replaced too. */
  private stableRevision (r: Rollout | undefined): number | undefined {
    return r !== undefined && r.strategyName !== 'rolling' && r.direction === 'forward' ? r.from.number : undefined
  }

  /** Applies a failure's verdict; true when the rollout turned (which reconciles by itself). */
  private apply (v: Verdict, i: Instance, r: Rollout | undefined): boolean {
    if (v.kind === 'fail-rollout') {
      r?.fail(v.reason)
      this.afterRolloutChange()
      return true
    }
    if (v.kind !== 'crash') return false
    this.crash = v.record
    log('warn', 'instance will be replaced', { pool: this.name, instance: i.id, reason: i.failure, restarts: v.record.crashes, backoffMs: v.record.delayMs })
    if (v.giveUp === undefined) return false
    r?.giveUp(v.giveUp)
    this.afterRolloutChange()
    return true
  }

  /** Runs reconcile at `at` (the earliest of the times asked for). */
  private wakeAt (at: number): void {
    if (this.wakeTimer !== undefined && this.wakeTime <= at) return
    clearTimeout(this.wakeTimer)
    this.wakeTime = at
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined
      this.reconcile()
    }, Math.max(0, at - Date.now()) + 1)
    this.wakeTimer.unref()
  }

  private wakeTime = 0
  private waiters: Array<() => void> = []

  private notify (): void {
    const w = this.waiters
    this.waiters = []
    for (const fn of w) fn()
  }

  private servingCount (): number {
    return this.instances.filter(i => i.state === 'serving').length
  }

  /** Resolves when `cond` holds after some instance change, or after `ms`. */
  async waitFor (cond: () => boolean, ms: number): Promise<boolean> {
    const until = Date.now() + ms
    while (!cond()) {
      const left = until - Date.now()
      if (left <= 0) return false
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
    return true
  }

  /** Stops every instance in the stopping order (see Instance.stop), in parallel. */
  async close (): Promise<void> {
    this.closing = true
    clearTimeout(this.wakeTimer)
    await Promise.all(this.instances.map(async i => await i.stop(this.config.rollout)))
    this.deps.onInstances?.()
  }
}
