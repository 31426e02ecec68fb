import { randomBytes } from 'node:crypto'
import { DEFAULTS } from '../config/defaults.js'
import { resolveScaled } from '../config/duration.js'
import type { Config, PoolConfig } from '../config/types.js'
import { specKey, type Driver, type Revision } from '../driver/types.js'
import { log } from '../log.js'
import type { Metrics } from '../metrics/registry.js'
import { Rollout, type Strategy } from '../rollout/rollout.js'
import { Instance } from './instance.js'
import type { Pool } from '../upstream/pool.js'
import type { Upstream } from '../upstream/upstream.js'

const REVISIONS_KEPT = 10
/** Crash-loop backoff: 0.5 s, 1 s, 2 s, ... up to 30 s; forgotten after 10 s of healthy serving. */
const BACKOFF_BASE = 500
const BACKOFF_MAX = 30_000
const HEALTHY_RESET = 10_000

export type PoolEvent =
  | { type: 'instance', pool: string, instance: string, version: string, revision: number, state: string, reason?: string }
  | { type: 'rollout', pool: string, rollout: string, status: string, message: string, updated: number, total: number }

export interface ManagedDeps {
  pool: Pool
  driver: Driver
  metrics: Metrics
  config: Config
  emit: (e: PoolEvent) => void
  /** Called when the set of running instances changes (state file). */
  onInstances?: () => void
}

/**
 * The controller of a managed pool, in the manner of a Kubernetes Deployment:
 * it holds a target revision and converges the instances on it, `size` of
 * them, never more than size + maxSurge running nor fewer than
 * size - maxUnavailable available. A rollout is nothing but a change of target
 * plus a record that watches the convergence; crash recovery is the same loop.
 */
export class ManagedPool {
  readonly pool: Pool
  instances: Instance[] = []
  /** Recently failed instances, kept for status. */
  failed: Instance[] = []
  revisions: Revision[]
  target: Revision
  rollout: Rollout | undefined
  private config: PoolConfig
  private crashes = 0
  private backoffUntil = 0
  private wakeTimer: NodeJS.Timeout | undefined
  private deadlineTimer: NodeJS.Timeout | undefined
  private closing = false
  private reconciling = false
  private again = false

  constructor (private readonly deps: ManagedDeps) {
    this.pool = deps.pool
    this.config = deps.pool.config
    const first: Revision = {
      number: 1,
      version: this.config.version,
      process: this.config.process,
      docker: this.config.docker,
      createdAt: new Date().toISOString(),
      good: true
    }
    this.revisions = [first]
    this.target = first
  }

  get upstreams (): Upstream[] {
    return [...this.instances, ...this.failed].flatMap(i => i.upstream === undefined ? [] : [i.upstream])
  }

  get crashLooping (): boolean { return this.crashes >= 3 }
  get restarts (): number { return this.crashes }

  /** Adopts what an earlier run left, starts the rest; resolves when all serve or startTimeout passed. */
  async started (): Promise<void> {
    await this.adoptLeftovers()
    this.reconcile()
    const limit = (this.config.readiness?.startTimeout ?? DEFAULTS.readiness.startTimeout) + 1_000
    await this.waitFor(() => this.servingCount() >= this.config.size, limit)
  }

  /** Applies a reloaded pool config in place: size, readiness, strategy, balancing. */
  update (config: PoolConfig, all?: Config): void {
    this.config = config
    if (all !== undefined) this.deps.config = all
    this.pool.update(config)
    this.reconcile()
  }

  // ── rollouts ───────────────────────────────────────────────────────────

  /** Starts a rollout to a new revision made from the current one and `change`. */
  startRollout (change: { version?: string, env?: Record<string, string>, command?: string | string[], image?: string }, strategy: Partial<Strategy> = {}): Rollout {
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
  rolloutConfig (config: PoolConfig): Rollout {
    this.update(config)
    return this.beginRollout(this.target, this.newRevision({ version: config.version, process: config.process, docker: config.docker }), {})
  }

  private newRevision (spec: Pick<Revision, 'version' | 'process' | 'docker'>): Revision {
    const next: Revision = { number: Math.max(...this.revisions.map(r => r.number)) + 1, ...spec, createdAt: new Date().toISOString() }
    this.revisions.push(next)
    if (this.revisions.length > REVISIONS_KEPT) this.revisions.splice(0, this.revisions.length - REVISIONS_KEPT)
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
    return this.beginRollout(this.target, prev, {})
  }

  private beginRollout (from: Revision, to: Revision, overrides: Partial<Strategy>): Rollout {
    const spec = { ...this.config.rollout, ...overrides }
    const strategy: Strategy = {
      ...spec,
      surge: resolveScaled(spec.maxSurge, this.config.size, 'up'),
      unavailable: resolveScaled(spec.maxUnavailable, this.config.size, 'down')
    }
    const r = new Rollout(this.pool.name, from, to, strategy, this.config.size)
    this.rollout = r
    this.crashes = 0
    this.backoffUntil = 0
    r.subscribe((_r, e) => this.deps.emit({ type: 'rollout', pool: this.pool.name, rollout: r.id, status: r.status, message: e.message, updated: r.updated, total: r.total }))
    this.deps.metrics.rolloutInProgress.labels(this.pool.name).set(1)
    this.armDeadline()
    this.reconcile()
    return r
  }

  private armDeadline (): void {
    clearTimeout(this.deadlineTimer)
    const r = this.rollout
    if (r === undefined || !r.active) return
    this.deadlineTimer = setTimeout(() => {
      if (r.direction === 'forward') r.fail(`no progress within progressDeadline (${r.strategy.progressDeadline} ms)`)
      else r.giveUp('the old revision did not come back within progressDeadline')
      this.afterRolloutChange()
    }, r.strategy.progressDeadline)
    this.deadlineTimer.unref()
  }

  pauseRollout (): void { this.rollout?.pause(); this.afterRolloutChange() }
  resumeRollout (): void { this.rollout?.resume(); this.afterRolloutChange() }
  abortRollout (): void { this.rollout?.abort(); this.afterRolloutChange() }

  private afterRolloutChange (): void {
    const r = this.rollout
    if (r !== undefined && !r.active) {
      clearTimeout(this.deadlineTimer)
      this.deps.metrics.rolloutInProgress.labels(this.pool.name).set(0)
      this.deps.metrics.rollouts.labels(this.pool.name, r.status).inc()
      log(r.status === 'succeeded' ? 'info' : 'warn', 'rollout finished', { pool: this.pool.name, rollout: r.id, status: r.status, error: r.error })
    }
    this.reconcile()
  }

  // ── the control loop ───────────────────────────────────────────────────

  /**
   * One pass of convergence, run after every instance state change and timer.
   * It only decides; instance starts and stops run on their own and call back.
   */
  reconcile (): void {
    if (this.closing) return
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
    const target = r?.targetRevision ?? this.target
    this.target = target
    const size = this.config.size
    const strategy = r?.strategy ?? this.poolStrategy()
    const now = Date.now()

    const live = this.instances
    const mine = live.filter(i => i.revision === target)
    const others = live.filter(i => i.revision !== target)

    // Instances of other revisions that carry no traffic go at once.
    for (const o of others) if (o.state === 'starting' || o.state === 'ready') this.stopInstance(o)
    if (r?.status === 'paused') return

    // Availability: serving, and for new instances of a rollout, soaked for minReady.
    const soak = r !== undefined && r.direction === 'forward' ? strategy.minReady : 0
    const isAvailable = (i: Instance): boolean => i.state === 'serving' && now - i.readyAt >= soak
    const mineAvailable = mine.filter(isAvailable)
    const othersServing = others.filter(i => i.state === 'serving')
    if (r !== undefined) {
      const updated = r.direction === 'forward' ? mineAvailable.length : othersServing.length
      // progressDeadline, as in Kubernetes, bounds the time without progress.
      if (r.direction === 'forward' && updated > r.updated) this.armDeadline()
      r.updated = updated
    }

    // Scale down: other revisions first, then surplus of our own (size lowered).
    let canStop = mineAvailable.length + othersServing.length - (size - strategy.unavailable)
    for (const o of othersServing) {
      if (canStop <= 0) break
      this.stopInstance(o)
      canStop--
    }
    const surplus = mine.length - size
    for (let k = 0; k < surplus; k++) {
      const victim = mine.find(i => i.state === 'starting') ?? mine[mine.length - 1 - k]
      this.stopInstance(victim)
    }

    // Scale up our revision within maxSurge (draining instances still count as running).
    const running = live.length
    const toStart = Math.min(size - mine.length, size + strategy.surge - running)
    if (toStart > 0) {
      if (now < this.backoffUntil) {
        this.wakeAt(this.backoffUntil)
      } else {
        // The instances started together make one batch of the rollout.
        if (r !== undefined) r.batches++
        for (let k = 0; k < toStart; k++) this.startInstance(target)
      }
    }

    // Wake up when the next soak ends.
    if (soak > 0) {
      for (const i of mine) if (i.state === 'serving' && now - i.readyAt < soak) this.wakeAt(i.readyAt + soak)
    }

    if (r !== undefined && r.status === 'running' && mine.length === size &&
        mineAvailable.length === size && others.length === 0) {
      r.updated = size
      this.target = r.targetRevision
      this.target.good = true
      r.converged()
      this.afterRolloutChange()
      this.notify()
    }
  }

  private poolStrategy (): Strategy {
    const spec = this.config.rollout
    return {
      ...spec,
      surge: resolveScaled(spec.maxSurge, this.config.size, 'up'),
      // Outside a rollout, replacing a crashed instance never waits on others.
      unavailable: resolveScaled(spec.maxUnavailable, this.config.size, 'down')
    }
  }

  /**
   * Instances an earlier baton left (containers carry labels): those that run
   * the current spec are adopted and probed before they get traffic, the
   * others stopped and removed (SPEC §2).
   */
  private async adoptLeftovers (): Promise<void> {
    const found = await this.deps.driver.discover?.().catch((err: Error) => {
      log('warn', 'could not list instances left by an earlier run', { pool: this.pool.name, error: err.message })
      return []
    }) ?? []
    const key = specKey(this.target)
    for (const f of found) {
      if (f.specKey === key && this.instances.length < this.config.size) {
        log('info', 'adopting an instance left by an earlier run', { pool: this.pool.name, instance: f.id, address: `${f.handle.host}:${f.handle.port}` })
        const inst = this.newInstance(f.id, this.target)
        inst.attach(f.handle)
      } else {
        log('info', 'removing an instance left by an earlier run', { pool: this.pool.name, instance: f.id, current: f.specKey === key })
        void f.handle.stop(this.config.rollout.stopSignal, this.config.rollout.stopTimeout)
      }
    }
  }

  private newInstance (id: string, revision: Revision): Instance {
    const t = this.deps.config.proxy.timeouts
    const inst = new Instance(id, revision, {
      pool: this.pool,
      driver: this.deps.driver,
      metrics: this.deps.metrics,
      readiness: this.config.readiness ?? DEFAULTS.readiness,
      timeouts: { connect: t.connect, upstream: t.upstream, keepAlive: DEFAULTS.proxy.upstreamKeepAlive },
      onChange: i => this.onInstanceChange(i),
      onRespawn: () => this.deps.onInstances?.()
    })
    this.instances.push(inst)
    if (this.rollout?.active === true) this.rollout.mark(id, revision.number, 'starting')
    this.deps.emit({ type: 'instance', pool: this.pool.name, instance: id, version: revision.version, revision: revision.number, state: 'starting' })
    return inst
  }

  private startInstance (revision: Revision): void {
    const inst = this.newInstance(`${this.pool.name}-${revision.number}-${randomBytes(3).toString('hex')}`, revision)
    void inst.start().then(() => this.deps.onInstances?.())
  }

  private stopInstance (i: Instance): void {
    if (i.state === 'draining' || i.state === 'stopped') return
    void i.stop(this.rollout?.active === true ? this.rollout.strategy : this.config.rollout)
  }

  private onInstanceChange (i: Instance): void {
    if (this.rollout?.active === true) this.rollout.mark(i.id, i.revision.number, i.state)
    this.deps.emit({ type: 'instance', pool: this.pool.name, instance: i.id, version: i.version, revision: i.revision.number, state: i.state, reason: i.failure })
    const r = this.rollout?.active === true ? this.rollout : undefined
    if (i.state === 'failed') {
      this.instances = this.instances.filter(x => x !== i)
      this.failed = [...this.failed.slice(-4), i]
      this.deps.onInstances?.()
      if (r !== undefined && r.direction === 'forward' && i.revision === r.to) {
        r.fail(`instance ${i.id} of ${i.version}: ${i.failure ?? 'failed'}`)
        this.afterRolloutChange()
        return
      }
      if (i.revision === this.target) this.recordCrash(i)
      if (r !== undefined && r.direction === 'back' && i.revision === r.from && this.crashes >= 5) {
        r.giveUp(`instances of ${i.version} keep failing (${i.failure ?? 'failed'})`)
        this.afterRolloutChange()
        return
      }
    } else if (i.state === 'stopped') {
      this.instances = this.instances.filter(x => x !== i)
      this.deps.onInstances?.()
    } else if (i.state === 'starting' && this.wasServing.has(i) && r !== undefined &&
               r.direction === 'forward' && i.revision === r.to) {
      // Readiness lost while serving during the rollout: the new version is not healthy.
      r.fail(`instance ${i.id} of ${i.version} failed its readiness probe while serving`)
      this.afterRolloutChange()
      return
    }
    if (i.state === 'serving') this.wasServing.add(i)
    this.reconcile()
    this.notify()
  }

  private readonly wasServing = new WeakSet<Instance>()

  /** Exponential backoff for a crash loop, visible in status instead of a hot loop. */
  private recordCrash (i: Instance): void {
    if (i.readyAt > 0 && Date.now() - i.readyAt > HEALTHY_RESET) this.crashes = 0
    this.crashes++
    const delay = Math.min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (this.crashes - 1))
    this.backoffUntil = Date.now() + delay
    log('warn', 'instance will be replaced', { pool: this.pool.name, instance: i.id, reason: i.failure, restarts: this.crashes, backoffMs: delay })
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

  /** Stops every instance in the SPEC order, in parallel. */
  async close (): Promise<void> {
    this.closing = true
    clearTimeout(this.wakeTimer)
    clearTimeout(this.deadlineTimer)
    await Promise.all(this.instances.map(async i => await i.stop(this.config.rollout)))
    this.deps.onInstances?.()
  }
}
