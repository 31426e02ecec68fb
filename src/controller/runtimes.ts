import type { ManagedPoolConfig, PoolConfig, StaticPoolConfig } from '../config/types.js'
import type { Driver } from '../driver/types.js'
import type { InstanceState } from '../rollout/planner.js'
import type { ManagedPool } from './managed-pool.js'
import type { StaticMembers } from './static-members.js'

/** An instance or static server as status shows it (without the data plane's counts). */
export interface MemberInfo {
  id: string
  version: string
  revision: number
  /** host:port, null before its process or container is there. */
  address: string | null
  state: InstanceState
  pid: number | null
  /** ms epoch */
  startedAt: number
  failure: string | null
}

/** What each kind of pool (static servers, processes, containers) gives the controller. */
export interface PoolRuntime {
  readonly config: PoolConfig
  /** The rollout engine of a managed pool; undefined for static servers. */
  readonly managed: ManagedPool | undefined
  /** Every instance or server it knows, live and recently failed. */
  members: () => MemberInfo[]
  /** Resolves when the pool can take traffic (ready, or its start timeout passed). */
  started: () => Promise<void>
  /** Applies a reloaded config in place; false when it cannot (another kind of pool: replace the runtime). */
  sync: (config: PoolConfig) => boolean
  close: () => Promise<void>
}

/** How long start-up waits for static servers' first health verdicts: a few probe intervals at most. */
const STATIC_SETTLE_MS = 5_000

export class ManagedRuntime implements PoolRuntime {
  constructor (public config: ManagedPoolConfig, readonly managed: ManagedPool, private readonly driver: Driver) {}

  members (): MemberInfo[] {
    return this.managed.all.map(i => ({
      id: i.id,
      version: i.version,
      revision: i.revision.number,
      address: i.address,
      state: i.state,
      pid: i.pid,
      startedAt: i.attachedAt ?? i.createdAt,
      failure: i.failure ?? null
    }))
  }

  async started (): Promise<void> { await this.managed.started() }

  sync (config: PoolConfig): boolean {
    if (config.kind !== this.config.kind) return false
    this.config = config
    this.driver.reconfigure?.(config)
    this.managed.update(config)
    return true
  }

  async close (): Promise<void> {
    await this.managed.close()
    const r = this.config.rollout
    await this.driver.close?.({ signal: r.stopSignal, timeoutMs: r.stopTimeout })
  }
}

export class StaticRuntime implements PoolRuntime {
  readonly managed = undefined

  constructor (public config: StaticPoolConfig, private readonly servers: StaticMembers) {}

  members (): MemberInfo[] {
    return this.servers.all.map(m => ({
      id: m.id,
      version: this.config.version,
      revision: 1,
      address: m.address,
      state: m.state,
      pid: null,
      startedAt: m.since,
      failure: null
    }))
  }

  async started (): Promise<void> { await this.servers.settled(STATIC_SETTLE_MS) }

  sync (config: PoolConfig): boolean {
    if (config.kind !== 'static') return false
    this.config = config
    this.servers.sync(config)
    return true
  }

  async close (): Promise<void> { await this.servers.close() }
}
