import { EventEmitter } from 'node:events'
import { resolveScaled } from '../config/duration.js'
import { DEFAULTS } from '../config/defaults.js'
import { diffConfig } from '../config/diff.js'
import type { Config, PoolConfig, RolloutSpec } from '../config/types.js'
import { DockerDriver } from '../driver/docker/driver.js'
import { ProcessDriver, type Spawner } from '../driver/process.js'
import type { Driver } from '../driver/types.js'
import { PoolTraffic } from '../metrics/timeline.js'
import type { TrafficSecond } from '../metrics/traffic.js'
import { RECENT_SECONDS, trafficBetween, type TrafficEvent } from '../admin/traffic-stream.js'
import { buildReport, type RolloutReport } from '../rollout/report.js'
import type { Rollout, RolloutView } from '../rollout/rollout.js'
import { renderSvg } from '../rollout/svg.js'
import type { DataPlaneLink, MemberCounts } from './data-plane-link.js'
import { ControllerError } from './errors.js'
import { ManagedPool, type PoolEvent } from './managed-pool.js'
import { ControllerMetrics } from './metrics.js'
import { RolloutHistory } from './rollout-history.js'
import { ManagedRuntime, StaticRuntime, type PoolRuntime } from './runtimes.js'
import type { ControllerState, PoolState } from '../supervisor/protocol.js'
import { poolView, type InstanceView, type PoolView } from './pool-view.js'
import { StaticMembers } from './static-members.js'
import { ServingTable } from './table.js'

export type { InstanceView, PoolView }

/** What a rollout may change and override (the admin body, validated). */
export interface RolloutRequest {
  version?: string
  env?: Record<string, string>
  command?: string | string[]
  image?: string
  strategy?: Partial<RolloutSpec>
}

export interface ReloadOutcome {
  changes: string[]
  rollouts: string[]
  /** The new config's warnings (an expired certificate), as `baton check` prints them. */
  warnings?: string[]
}

export type RolloutAction = 'pause' | 'resume' | 'abort' | 'promote'

export interface ControllerDeps {
  link: DataPlaneLink
  /** Who runs process instances (the supervisor, under `baton start`). */
  spawner: Spawner
  /** A previous controller's state: its instances are adopted, not restarted. */
  handover?: ControllerState
  /** Called (at most once a tick) when what a next controller would adopt from changed. */
  onState?: () => void
}

const SECOND_MS = 1_000

/**
 * The control side: it owns the pools' runtimes (managed pools and their
 * rollout engines, static servers), the rollout records, the per-second
 * traffic timelines and the table it publishes to the data plane through a
 * DataPlaneLink. The admin API and reload go through its methods; nothing
 * outside reaches into its state.
 */
export class Controller {
  private readonly metrics = new ControllerMetrics()
  private config: Config
  private readonly runtimes = new Map<string, PoolRuntime>()
  private readonly history = new RolloutHistory()
  private readonly traffic = new Map<string, PoolTraffic>()
  private readonly table: ServingTable
  private readonly events = new EventEmitter()
  private ticketRotation: NodeJS.Timeout | undefined
  private readonly link: DataPlaneLink
  /** Set while an upgrade of baton is under way: reads are answered, changes refused. */
  private frozenBy: string | undefined
  private stateQueued = false

  constructor (config: Config, private readonly deps: ControllerDeps) {
    this.config = config
    this.link = deps.link
    this.events.setMaxListeners(0)
    this.table = new ServingTable(this.link, config, deps.handover?.ticketKey)
    this.link.connect({ idle: id => this.table.idleReported(id), quiet: id => this.table.quietReported(id), traffic: (second, seconds) => this.addTraffic(second, seconds) })
    this.metrics.readFrom(() => this.instanceReadings())
  }

  /** Starts (or, handed over, adopts) every pool; resolves once each can serve (or its startTimeout passed). */
  async start (): Promise<void> {
    await this.table.configure(this.config)
    this.ticketRotation = setInterval(() => {
      void this.table.rotateTicketKey()
      this.deps.onState?.()
    }, DEFAULTS.tls.ticketKeyRotation).unref()
    for (const pc of Object.values(this.config.pools)) this.addPool(pc)
    this.started = true
    await Promise.all([...this.runtimes.values()].map(async r => await r.started()))
  }

  /** Pools were added by start(): later ones come from a reload. */
  private started = false

  /** What a next controller needs to adopt every instance (sent to the supervisor on every change). */
  snapshot (): ControllerState {
    return {
      pools: [...this.runtimes.values()].flatMap(r => r.managed === undefined ? [] : [r.managed.snapshot()]),
      ticketKey: this.table.sessionTicketKey
    }
  }

  /**
   * An upgrade of baton begins (README "Upgrading baton"): refused while a
   * rollout runs; else nothing is started or stopped from now on and changes
   * are refused until thaw (or until this controller exits).
   */
  freeze (why: string): ControllerState {
    const running = this.runningRollouts()
    if (running.length > 0) throw new ControllerError('BATON_ERR_UPGRADE_ROLLOUT', `a rollout is in progress (${running.join(', ')}): upgrade baton once it has finished`)
    this.frozenBy = why
    for (const r of this.runtimes.values()) r.managed?.freeze()
    return this.snapshot()
  }

  thaw (): void {
    this.frozenBy = undefined
    for (const r of this.runtimes.values()) r.managed?.thaw()
  }

  /** The ids of the rollouts running now, in any pool. */
  runningRollouts (): string[] {
    return [...this.runtimes.values()].flatMap(r => r.managed?.rollout?.active === true ? [r.managed.rollout.id] : [])
  }

  /** Stops every pool's instances in the stopping order, in parallel. */
  async stop (): Promise<void> {
    clearInterval(this.ticketRotation)
    await Promise.all([...this.runtimes.values()].map(async r => await r.close()))
  }

  /** Instance state changes and rollout progress, for GET /v1/events; returns the unsubscribe. */
  subscribe (fn: (e: PoolEvent) => void): () => void {
    this.events.on('event', fn)
    return () => { this.events.off('event', fn) }
  }

  /** Every pool's traffic of each second once it ended (GET /v1/events `traffic`); returns the unsubscribe. */
  followTraffic (fn: (e: TrafficEvent) => void): () => void {
    const onSecond = (second: number): void => {
      for (const [name, traffic] of this.traffic) if (this.runtimes.has(name)) fn(trafficBetween(name, traffic, second, second)[0])
    }
    this.events.on('second', onSecond)
    return () => { this.events.off('second', onSecond) }
  }

  /** The pool's traffic of the last minutes, second by second (GET /v1/pools/NAME/traffic). */
  recentTraffic (name: string): TrafficEvent[] {
    this.requirePool(name)
    const traffic = this.traffic.get(name)
    // The last second every data plane has reported: the same seconds the stream has sent.
    const to = this.lastSecond ?? Math.floor(Date.now() / SECOND_MS) - 1
    return traffic === undefined ? [] : trafficBetween(name, traffic, to - RECENT_SECONDS + 1, to)
  }

  /** The pool's rollouts kept (rollout.historyLimit), newest first, without their event logs. */
  poolRollouts (name: string): Array<Omit<RolloutView, 'events'>> {
    this.requirePool(name)
    return this.history.ofPool(name).map(r => { const { events: _events, ...rest } = r.view(); return rest })
  }

  // ── pools ──────────────────────────────────────────────────────────────

  async pools (): Promise<PoolView[]> {
    const counts = await this.table.counts()
    return [...this.runtimes.keys()].map(name => this.poolView(name, counts))
  }

  async pool (name: string): Promise<PoolView> {
    this.requirePool(name)
    return this.poolView(name, await this.table.counts())
  }

  /** Throws BATON_ERR_POOL_NOT_FOUND unless there is such a pool. */
  requirePool (name: string): void {
    this.runtime(name)
  }

  // ── rollouts ───────────────────────────────────────────────────────────

  startRollout (poolName: string, req: RolloutRequest): RolloutView {
    this.refuseWhileFrozen()
    const m = this.managed(poolName)
    const pc = this.runtime(poolName).config
    if (req.strategy !== undefined) {
      const s = { ...pc.rollout, ...req.strategy }
      if (resolveScaled(s.maxSurge, pc.size, 'up') === 0 && resolveScaled(s.maxUnavailable, pc.size, 'down') === 0) {
        throw new ControllerError('BATON_ERR_STRATEGY_STUCK', `bad request body: strategy: maxSurge ${String(s.maxSurge)} with maxUnavailable ${String(s.maxUnavailable)} for ${pc.size} instance(s): the rollout could never move`)
      }
      if (s.strategy === 'canary' && s.canary === undefined) {
        throw new ControllerError('BATON_ERR_STRATEGY_INCOMPLETE', `bad request body: strategy: a canary needs canary.steps, and pool "${poolName}" has none in its config`)
      }
    }
    this.refuseWhileRunning(m)
    return m.startRollout({ version: req.version, env: req.env, command: req.command, image: req.image }, req.strategy ?? {}).view()
  }

  /** Rolls back to the previous revision; a blue-green rollout within its scaleDownDelay switches back instead (README "Progressive delivery"). */
  rollback (poolName: string): RolloutView {
    this.refuseWhileFrozen()
    const m = this.managed(poolName)
    const switched = m.switchBack()
    if (switched !== undefined) return switched.view()
    this.refuseWhileRunning(m)
    const r = m.rollbackToPrevious()
    if (r === undefined) throw new ControllerError('BATON_ERR_NO_PREVIOUS_REVISION', `pool "${poolName}" has no previous revision to roll back to`)
    return r.view()
  }

  control (id: string, action: RolloutAction): RolloutView {
    this.refuseWhileFrozen()
    const r = this.rolloutById(id)
    if (!r.active) throw new ControllerError('BATON_ERR_ROLLOUT_FINISHED', `rollout ${id} has finished (${r.status})`)
    const m = this.managed(r.pool)
    if (action === 'pause') m.pauseRollout()
    else if (action === 'resume') m.resumeRollout()
    else if (action === 'abort') m.abortRollout()
    else if (!m.promoteRollout()) {
      throw new ControllerError('BATON_ERR_NOTHING_TO_PROMOTE', r.strategyName === 'canary'
        ? `rollout ${id} has no step left to skip (${r.direction === 'back' ? 'it is rolling back' : 'its steps are done'})`
        : `rollout ${id} is ${r.strategyName === 'rolling' ? 'a rolling update' : 'blue-green'}: only a canary has steps to promote past`)
    }
    return r.view()
  }

  /** The rollout with what the users saw during it (null once its pool is gone). */
  rollout (id: string): RolloutView & { report: RolloutReport | null } {
    const r = this.rolloutById(id)
    const traffic = this.runtimes.has(r.pool) ? this.traffic.get(r.pool) : undefined
    return { ...r.view(), report: traffic === undefined ? null : buildReport(r, traffic, r.strategy.minReady) }
  }

  rolloutSvg (id: string): string {
    const r = this.rolloutById(id)
    const traffic = this.runtimes.has(r.pool) ? this.traffic.get(r.pool) : undefined
    if (traffic === undefined) throw new ControllerError('BATON_ERR_POOL_GONE', `pool "${r.pool}" of rollout ${id} is gone`)
    return renderSvg(buildReport(r, traffic, r.strategy.minReady), `${r.pool}: ${r.from.version} → ${r.to.version} (${r.status})`)
  }

  /** GET /metrics: the data planes' metrics summed, and the controller's. */
  async metricsText (): Promise<{ contentType: string, text: string }> {
    return await this.metrics.text(await this.link.metrics())
  }

  // ── reload ─────────────────────────────────────────────────────────────

  /**
   * Applies a new config as a diff, in place (README "Admin API": reload):
   * nothing is replaced but what the change is about. A pool whose process
   * or container spec or version changed is rolled out.
   */
  async apply (next: Config): Promise<ReloadOutcome> {
    this.refuseWhileFrozen()
    const d = diffConfig(this.config, next)
    const prev = this.config
    this.config = next
    const changes: string[] = []
    const rollouts: string[] = []
    // One table with the new proxy settings, routes and pools: routes never point at a missing pool.
    await this.table.configure(next)
    await this.link.reopenLogs()
    if (d.proxy) changes.push('proxy timeouts and retries applied')
    if (d.certificates) changes.push('TLS certificates re-read: new handshakes get them, open connections keep theirs')
    for (const name of d.added) {
      void this.addPool(next.pools[name]).started()
      changes.push(`pool ${name} added`)
    }
    for (const c of d.changed) {
      const pc = next.pools[c.name]
      const runtime = this.runtime(c.name)
      if (c.replace || !runtime.sync(pc)) {
        void this.addPool(pc).started()
        void runtime.close()
        changes.push(`pool ${c.name} replaced (${prev.pools[c.name].kind} → ${pc.kind})`)
        continue
      }
      const m = runtime.managed
      if (m === undefined || !c.rollout || pc.kind === 'static') {
        changes.push(`pool ${c.name} updated in place`)
      } else if (m.rollout?.active === true) {
        changes.push(`pool ${c.name}: a rollout is running, so the new spec was not rolled out (run the reload again after it ends)`)
      } else {
        const r = m.rolloutConfig(pc)
        rollouts.push(r.id)
        changes.push(`pool ${c.name}: rollout ${r.id} to ${pc.version} started`)
      }
    }
    if (d.routes) changes.push('routes applied')
    for (const name of d.removed) {
      const runtime = this.runtimes.get(name)
      this.runtimes.delete(name)
      this.traffic.delete(name)
      void runtime?.close()
      changes.push(`pool ${name} removed: draining and stopping`)
    }
    return { changes, rollouts }
  }

  // ── inside ─────────────────────────────────────────────────────────────

  private addPool (pc: PoolConfig): PoolRuntime {
    const members = this.table.forPool(pc.name)
    let runtime: PoolRuntime
    if (pc.kind === 'static') {
      runtime = new StaticRuntime(pc, new StaticMembers(pc, members))
    } else {
      const driver: Driver = pc.kind === 'process' ? new ProcessDriver(pc.name, process.cwd(), pc.process.ports, this.deps.spawner) : new DockerDriver(pc.name, pc.docker)
      const managed = new ManagedPool({
        config: pc,
        driver,
        members,
        metrics: this.metrics,
        emit: e => { this.events.emit('event', e); this.stateChanged() },
        onRollout: r => this.history.add(r, this.runtimes.get(r.pool)?.config.rollout.historyLimit ?? pc.rollout.historyLimit),
        onInstances: () => this.stateChanged(),
        timeline: () => ({ traffic: this.traffic.get(pc.name), lastSecond: this.lastSecond }),
        // Only at start: a pool added by a reload has nothing to adopt.
        handover: this.handoverOf(pc.name)
      })
      runtime = new ManagedRuntime(pc, managed, driver)
    }
    this.runtimes.set(pc.name, runtime)
    if (!this.traffic.has(pc.name)) this.traffic.set(pc.name, new PoolTraffic())
    return runtime
  }

  /** The last epoch second whose traffic the data planes have reported in full. */
  private lastSecond: number | undefined

  private addTraffic (second: number, seconds: TrafficSecond[]): void {
    for (const s of seconds) this.traffic.get(s.pool)?.add(s)
    this.lastSecond = second
    this.events.emit('second', second)
  }

  private poolView (name: string, counts: Map<string, MemberCounts>): PoolView {
    return poolView(name, this.runtime(name), counts)
  }

  private runtime (name: string): PoolRuntime {
    const r = this.runtimes.get(name)
    if (r === undefined) throw new ControllerError('BATON_ERR_POOL_NOT_FOUND', `no pool named "${name}"`)
    return r
  }

  private managed (name: string): ManagedPool {
    const m = this.runtime(name).managed
    if (m === undefined) throw new ControllerError('BATON_ERR_POOL_NOT_MANAGED', `pool "${name}" has static servers: there is nothing to roll out`)
    return m
  }

  private refuseWhileRunning (m: ManagedPool): void {
    if (m.rollout?.active === true) throw new ControllerError('BATON_ERR_ROLLOUT_RUNNING', `a rollout (${m.rollout.id}) is already running in pool "${m.name}"`)
  }

  private rolloutById (id: string): Rollout {
    const r = this.history.get(id)
    if (r === undefined) throw new ControllerError('BATON_ERR_ROLLOUT_NOT_FOUND', `no rollout with id "${id}"`)
    return r
  }

  private * instanceReadings (): Iterable<{ pool: string, version: string, state: string }> {
    for (const [pool, r] of this.runtimes) for (const m of r.members()) yield { pool, version: m.version, state: m.state }
  }

  /**
   * At start after another controller (an upgrade, a restart): the pool's
   * state it handed over, or an empty one, so that the pool adopts what
   * runs rather than starting anew. A pool added by a reload has nothing to adopt.
   */
  private handoverOf (pool: string): PoolState | undefined {
    const h = this.deps.handover
    if (h === undefined || this.started) return undefined
    return h.pools.find(p => p.name === pool) ?? { name: pool, revisions: [], target: 0, instances: [] }
  }

  private refuseWhileFrozen (): void {
    if (this.frozenBy !== undefined) throw new ControllerError('BATON_ERR_UPGRADE_RUNNING', `${this.frozenBy}: try again once it has ended`)
  }

  /** Tells deps.onState once per tick, however many instances changed in it. */
  private stateChanged (): void {
    if (this.stateQueued || this.deps.onState === undefined) return
    this.stateQueued = true
    setImmediate(() => {
      this.stateQueued = false
      this.deps.onState?.()
    })
  }
}
