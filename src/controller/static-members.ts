import { DEFAULTS } from '../config/defaults.js'
import type { PoolConfig, ProxyConfig } from '../config/types.js'
import { log } from '../log.js'
import type { Pool } from '../upstream/pool.js'
import { Prober } from './prober.js'
import { Upstream } from '../upstream/upstream.js'

/**
 * Static servers (`servers:`): routed and health-checked, not managed. With a
 * `readiness` block a server takes traffic only while its active check
 * passes; without one it always does (passive ejection still applies).
 */
export class StaticMembers {
  private readonly members = new Map<string, { upstream: Upstream, prober?: Prober }>()
  private readiness: PoolConfig['readiness']

  constructor (
    private readonly pool: Pool,
    private proxy: ProxyConfig
  ) {}

  get upstreams (): Upstream[] { return [...this.members.values()].map(m => m.upstream) }

  /**
   * Adds new servers, removes dropped ones (drained), keeps the rest as they
   * are. A change of upstream timeouts or of the health check replaces every
   * server's Upstream; one that was serving goes on serving at once (its
   * check then runs with the new spec), so a reload leaves no gap.
   */
  sync (config: PoolConfig, proxy: ProxyConfig = this.proxy): void {
    const timeoutsChanged = proxy.timeouts.connect !== this.proxy.timeouts.connect ||
      proxy.timeouts.upstream !== this.proxy.timeouts.upstream
    const readinessChanged = JSON.stringify(config.readiness) !== JSON.stringify(this.readiness)
    this.proxy = proxy
    this.readiness = config.readiness
    const wanted = new Set(config.servers ?? [])
    const serving = new Set<string>()
    for (const [address, m] of this.members) {
      if (!wanted.has(address)) {
        this.drop(address, m.upstream, m.prober)
      } else if (timeoutsChanged || readinessChanged) {
        if (this.pool.has(m.upstream)) serving.add(address)
        this.drop(address, m.upstream, m.prober)
      }
    }
    for (const address of wanted) {
      if (this.members.has(address)) continue
      const sep = address.lastIndexOf(':')
      const upstream = new Upstream({
        id: `${config.name}/${address}`,
        pool: config.name,
        host: address.slice(0, sep).replace(/^\[|\]$/g, ''),
        port: Number(address.slice(sep + 1)),
        version: config.version,
        revision: 1,
        connectTimeout: proxy.timeouts.connect,
        upstreamTimeout: proxy.timeouts.upstream,
        keepAlive: DEFAULTS.proxy.upstreamKeepAlive,
        traffic: this.pool.traffic.version(config.version)
      })
      let prober: Prober | undefined
      if (config.readiness === undefined) {
        this.pool.add(upstream, 0)
      } else {
        if (serving.has(address)) this.pool.add(upstream, 0)
        else upstream.state = 'starting'
        prober = new Prober(upstream.host, upstream.port, config.readiness, verdict => {
          if (verdict === 'up') {
            log('info', 'server healthy', { pool: config.name, upstream: address })
            this.pool.add(upstream, 0)
          } else {
            log('warn', 'server unhealthy', { pool: config.name, upstream: address })
            this.pool.remove(upstream)
            upstream.state = 'failed'
          }
        })
        prober.start()
      }
      this.members.set(address, { upstream, prober })
    }
  }

  /** Resolves once every server has a first verdict, or after `ms`. */
  async settled (ms: number): Promise<void> {
    const until = Date.now() + ms
    while (Date.now() < until) {
      if ([...this.members.values()].every(m => m.prober === undefined || m.prober.current !== undefined)) return
      await new Promise(resolve => setTimeout(resolve, 25))
    }
  }

  async close (): Promise<void> {
    for (const [address, m] of this.members) this.drop(address, m.upstream, m.prober)
  }

  private drop (address: string, upstream: Upstream, prober?: Prober): void {
    prober?.stop()
    this.pool.remove(upstream)
    upstream.state = 'draining'
    this.members.delete(address)
    void upstream.close().then(() => { upstream.state = 'stopped' })
  }
}
