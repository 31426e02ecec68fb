import { registerRoutes } from './admin/routes.js'
import { AdminServer } from './admin/server.js'
import { EventEmitter } from 'node:events'
import { diffConfig } from './config/diff.js'
import { loadConfigFile } from './config/load.js'
import type { Config, PoolConfig } from './config/types.js'
import { DockerDriver } from './driver/docker/driver.js'
import { ProcessDriver } from './driver/process.js'
import { log } from './log.js'
import { Metrics } from './metrics/registry.js'
import { ManagedPool, type PoolEvent } from './controller/managed-pool.js'
import { Pool } from './upstream/pool.js'
import { StateFile } from './controller/state-file.js'
import { StaticMembers } from './controller/static-members.js'
import type { Upstream } from './upstream/upstream.js'
import { Router } from './proxy/router.js'
import { ProxyServer } from './proxy/server.js'
import type { Rollout } from './rollout/rollout.js'

/** What each kind of pool (static servers, processes, containers) provides to baton. */
export interface PoolRuntime {
  readonly pool: Pool
  /** Every upstream it knows, serving or not, for status and metrics. */
  readonly upstreams: Upstream[]
  /** Resolves when the pool can take traffic (ready, or its start timeout passed). */
  started (): Promise<void>
  sync (config: PoolConfig, all: Config): void
  close (): Promise<void>
}

class ManagedRuntime implements PoolRuntime {
  constructor (readonly managed: ManagedPool, private readonly driver: ProcessDriver | DockerDriver) {}
  get pool (): Pool { return this.managed.pool }
  get upstreams (): Upstream[] { return this.managed.upstreams }
  async started (): Promise<void> { await this.managed.started() }
  sync (config: PoolConfig, all: Config): void {
    if (config.process !== undefined && this.driver instanceof ProcessDriver) this.driver.setPortRange(config.process.ports.from, config.process.ports.to)
    if (config.docker !== undefined && this.driver instanceof DockerDriver) this.driver.update(config.docker)
    this.managed.update(config, all)
  }
  async close (): Promise<void> {
    await this.managed.close()
    // Docker pools: stop the engine pings and long polls.
    if (this.driver instanceof DockerDriver) await this.driver.close()
  }
}

class StaticRuntime implements PoolRuntime {
  readonly members: StaticMembers
  constructor (readonly pool: Pool, config: Config) {
    this.members = new StaticMembers(pool, config.proxy)
    this.members.sync(pool.config, config.proxy)
  }

  get upstreams (): Upstream[] { return this.members.upstreams }
  async started (): Promise<void> { await this.members.settled(5_000) }
  sync (config: PoolConfig, all: Config): void { this.pool.update(config); this.members.sync(config, all.proxy) }
  async close (): Promise<void> { await this.members.close() }
}

export interface BatonAddresses {
  listeners: Array<{ host: string, port: number }>
  admin: { host: string, port: number }
}

/**
 * The running proxy: pools, listeners and the admin API, wired from one
 * Config. Start-up order follows SPEC §2: the admin API answers first, the
 * listeners open once every pool can serve.
 */
export class Baton {
  readonly metrics = new Metrics()
  readonly pools = new Map<string, Pool>()
  readonly runtimes = new Map<string, PoolRuntime>()
  readonly managed = new Map<string, ManagedPool>()
  readonly rollouts = new Map<string, Rollout>()
  /**
   * For GET /v1/events: `event` (instance state changes, rollout progress)
   * and `tick` (an epoch second, once the pools' traffic of that second is
   * in their timelines).
   */
  readonly events = new EventEmitter()
  readonly stateFile: StateFile
  readonly admin: AdminServer
  readonly proxy: ProxyServer
  config: Config
  private stopping: Promise<void> | undefined

  constructor (config: Config) {
    this.config = config
    this.stateFile = new StateFile(config.file)
    this.events.setMaxListeners(0)
    this.admin = new AdminServer(config.admin.token)
    this.proxy = new ProxyServer({ router: new Router(config.routes), pools: this.pools }, config.proxy, this.metrics)
    this.metrics.onCollect(() => this.collectGauges())
    this.metrics.trafficSource = () => [...this.pools.values()].flatMap(p =>
      [...p.traffic.all].filter(([v]) => v !== '').map(([version, traffic]) => ({ pool: p.name, version, traffic })))
    registerRoutes(this)
  }

  async start (): Promise<BatonAddresses> {
    const admin = await this.admin.listen(this.config.admin.host, this.config.admin.port)
    await this.stateFile.stopLeftovers()
    for (const pc of Object.values(this.config.pools)) this.addPool(pc)
    await Promise.all([...this.runtimes.values()].map(async r => await r.started()))
    const listeners = await this.proxy.listen(this.config.listen)
    this.startTicker()
    log('info', 'baton started', { listeners, admin, pools: [...this.pools.keys()] })
    return { listeners, admin }
  }

  /** G6: stop accepting, let in-flight requests finish, stop the pools, close the admin API. */
  async stop (): Promise<void> {
    this.stopping ??= (async () => {
      log('info', 'baton stopping')
      const grace = Math.max(1_000, ...Object.values(this.config.pools).map(p => p.rollout.drainTimeout))
      await this.proxy.close(grace)
      clearInterval(this.ticker)
      await Promise.all([...this.runtimes.values()].map(async r => await r.close()))
      for (const p of this.pools.values()) p.close()
      await this.admin.close()
      log('info', 'baton stopped')
    })()
    await this.stopping
  }

  /**
   * Re-reads the config file and applies it as a diff, in place (SPEC §3):
   * a bad file is refused whole (ConfigError) and the old config keeps
   * running. No listener, connection or instance is replaced but those the
   * change is about.
   */
  async reload (): Promise<{ changes: string[], rollouts: string[] }> {
    const next = loadConfigFile(this.config.file)
    const d = diffConfig(this.config, next)
    const changes: string[] = []
    const rollouts: string[] = []
    const prev = this.config
    this.config = next
    this.admin.token = next.admin.token
    if (d.adminListen) changes.push('admin.listen changed: it applies at the next start')
    if (d.proxy) {
      this.proxy.configure(next.proxy)
      // Upstream connect/response timeouts live in each static server's connection pool.
      for (const [name, r] of this.runtimes) {
        if (next.pools[name]?.kind === 'static' && !d.changed.some(c => c.name === name)) r.sync(next.pools[name], next)
      }
      changes.push('proxy timeouts and retries applied')
    }

    // New pools first, so that new routes never point at a missing pool.
    for (const name of d.added) {
      this.addPool(next.pools[name])
      void this.runtimes.get(name)?.started()
      changes.push(`pool ${name} added`)
    }
    for (const c of d.changed) {
      const pc = next.pools[c.name]
      if (c.replace) {
        const old = this.runtimes.get(c.name)
        this.addPool(pc)
        void this.runtimes.get(c.name)?.started()
        void old?.close()
        changes.push(`pool ${c.name} replaced (${prev.pools[c.name].kind} → ${pc.kind})`)
        continue
      }
      const managed = this.managed.get(c.name)
      if (managed !== undefined && c.rollout) {
        if (managed.rollout?.active === true) {
          managed.update(pc, next)
          changes.push(`pool ${c.name}: a rollout is running, so the new spec was not rolled out (run the reload again after it ends)`)
          continue
        }
        this.runtimes.get(c.name)?.sync(pc, next)
        const r = managed.rolloutConfig(pc)
        this.rollouts.set(r.id, r)
        rollouts.push(r.id)
        changes.push(`pool ${c.name}: rollout ${r.id} to ${pc.version} started`)
      } else {
        this.runtimes.get(c.name)?.sync(pc, next)
        changes.push(`pool ${c.name} updated in place`)
      }
    }
    if (d.routes || d.added.length > 0 || d.removed.length > 0) {
      this.proxy.table = { router: new Router(next.routes), pools: this.pools }
      if (d.routes) changes.push('routes applied')
    }
    if (d.listeners) {
      await this.proxy.listen(next.listen)
      changes.push('listeners applied')
    }
    for (const name of d.removed) {
      const runtime = this.runtimes.get(name)
      this.runtimes.delete(name)
      this.managed.delete(name)
      this.pools.delete(name)
      void runtime?.close().then(() => runtime.pool.close())
      changes.push(`pool ${name} removed: draining and stopping`)
    }
    log('info', 'config reloaded', { changes, rollouts })
    return { changes, rollouts }
  }

  private ticker: NodeJS.Timeout | undefined

  /** Rolls each pool's per-second traffic into its timeline, on the second. */
  private startTicker (): void {
    const tick = (): void => {
      const second = Math.round(Date.now() / 1000) - 1
      for (const p of this.pools.values()) p.traffic.tick(second)
      this.events.emit('tick', second)
    }
    setTimeout(() => {
      tick()
      this.ticker = setInterval(tick, 1000)
      this.ticker.unref()
    }, 1000 - (Date.now() % 1000)).unref()
  }

  private addPool (pc: PoolConfig): void {
    const pool = new Pool(pc)
    this.pools.set(pc.name, pool)
    if (pc.kind === 'static') {
      this.runtimes.set(pc.name, new StaticRuntime(pool, this.config))
    } else if (pc.kind === 'process' || pc.kind === 'docker') {
      const driver = pc.kind === 'process' ? new ProcessDriver(pc.name, process.cwd(), pc.process!.ports) : new DockerDriver(pc.name, pc.docker!)
      const managed = new ManagedPool({
        pool,
        driver,
        metrics: this.metrics,
        config: this.config,
        emit: e => this.publish(e),
        onInstances: () => this.saveState()
      })
      this.managed.set(pc.name, managed)
      this.runtimes.set(pc.name, new ManagedRuntime(managed, driver))
    } else {
      throw new Error(`pool ${pc.name}: ${pc.kind} pools are not supported yet`)
    }
  }

  private publish (e: PoolEvent): void {
    if (e.type === 'rollout') {
      const r = this.managed.get(e.pool)?.rollout
      if (r !== undefined) this.rollouts.set(r.id, r)
    }
    this.events.emit('event', e)
  }

  private saveState (): void {
    const entries = [...this.managed.values()].flatMap(m => m.instances.flatMap(i =>
      i.pid === null || i.upstream === undefined ? [] : [{ pool: m.pool.name, id: i.id, pid: i.pid, port: i.upstream.port, version: i.version }]))
    this.stateFile.write(entries)
  }

  private collectGauges (): void {
    this.metrics.inflight.reset()
    this.metrics.instances.reset()
    for (const r of this.runtimes.values()) {
      let inflight = 0
      for (const u of r.upstreams) {
        inflight += u.inflight
        this.metrics.instances.labels(r.pool.name, u.version, u.state).inc()
      }
      this.metrics.inflight.labels(r.pool.name).set(inflight)
    }
  }
}
