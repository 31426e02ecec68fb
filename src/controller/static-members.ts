import type { ReadinessSpec, StaticPoolConfig } from '../config/types.js'
import { log } from '../log.js'
import type { InstanceState } from '../rollout/planner.js'
import { Prober } from './prober.js'
import type { PoolMembers } from './table.js'

export interface StaticMember {
  /** `POOL/HOST:PORT` */
  id: string
  address: string
  host: string
  port: number
  state: InstanceState
  prober?: Prober
  readonly since: number
}

/**
 * Static servers (`servers:`): routed and health-checked, not managed. With a
 * `readiness` block a server takes traffic only while its active check
 * passes; without one it always does (passive ejection still applies, in
 * each data plane).
 */
export class StaticMembers {
  private readonly members = new Map<string, StaticMember>()
  private config: StaticPoolConfig
  private settledWaiters: Array<() => void> = []

  constructor (config: StaticPoolConfig, private readonly table: PoolMembers) {
    this.config = config
    this.sync(config)
  }

  get all (): StaticMember[] { return [...this.members.values()] }

  /**
   * Adds new servers, drains and drops removed ones, keeps the rest. A new
   * health check replaces the old one; a server that was serving goes on
   * serving until the new check says otherwise, so a reload leaves no gap.
   */
  sync (config: StaticPoolConfig): void {
    const readinessChanged = JSON.stringify(config.readiness) !== JSON.stringify(this.config.readiness)
    const versionChanged = config.version !== this.config.version
    this.config = config
    const wanted = new Set(config.servers)
    for (const [address, m] of this.members) {
      if (!wanted.has(address)) {
        this.drop(m)
        continue
      }
      if (versionChanged && m.state === 'serving') this.serve(m)
      if (readinessChanged) {
        m.prober?.stop()
        m.prober = undefined
        this.check(m, config.readiness)
      }
    }
    for (const address of wanted) {
      if (this.members.has(address)) continue
      const sep = address.lastIndexOf(':')
      const m: StaticMember = {
        id: `${config.name}/${address}`,
        address,
        host: address.slice(0, sep).replace(/^\[|\]$/g, ''),
        port: Number(address.slice(sep + 1)),
        state: 'starting',
        since: Date.now()
      }
      this.members.set(address, m)
      this.check(m, config.readiness)
    }
  }

  /** Resolves once every server has a first verdict, or after `ms`. */
  async settled (ms: number): Promise<void> {
    const until = Date.now() + ms
    while (this.all.some(m => m.prober !== undefined && m.prober.current === undefined)) {
      const left = until - Date.now()
      if (left <= 0) return
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, left)
        this.settledWaiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }

  async close (): Promise<void> {
    await Promise.all(this.all.map(async m => await this.drop(m)))
  }

  /** Without a health check a server serves at once; with one, from its first passing verdict. */
  private check (m: StaticMember, readiness: ReadinessSpec | undefined): void {
    if (readiness === undefined) {
      if (m.state !== 'serving') this.serve(m)
      return
    }
    m.prober = new Prober(m.host, m.port, readiness, verdict => {
      if (verdict === 'up') {
        log('info', 'server healthy', { pool: this.config.name, upstream: m.address })
        this.serve(m)
      } else {
        log('warn', 'server unhealthy', { pool: this.config.name, upstream: m.address })
        this.setState(m, 'failed')
        void this.table.withdraw(m.id)
      }
      const waiters = this.settledWaiters
      this.settledWaiters = []
      for (const w of waiters) w()
    })
    m.prober.start()
  }

  private serve (m: StaticMember): void {
    this.setState(m, 'serving')
    // Static servers are not slow-started: they are not new, only back from a failed check.
    void this.table.serve({ id: m.id, host: m.host, port: m.port, version: this.config.version, revision: 1 }, true)
  }

  /** Out of the table, drained like an instance (up to the pool's drainTimeout), then forgotten. */
  private async drop (m: StaticMember): Promise<void> {
    m.prober?.stop()
    this.members.delete(m.address)
    this.setState(m, 'draining')
    await this.table.withdraw(m.id)
    await this.table.drain(m.id, this.config.rollout.drainTimeout)
    await this.table.forget(m.id)
    this.setState(m, 'stopped')
  }

  /** The one place a server's state changes. */
  private setState (m: StaticMember, s: InstanceState): void {
    m.state = s
  }
}
