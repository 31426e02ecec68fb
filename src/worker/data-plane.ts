import { DEFAULTS } from '../config/defaults.js'
import type { ProxyConfig } from '../config/types.js'
import type { DataPlaneReports, MemberCounts, TableMember, TableRoute, TableSnapshot } from '../controller/data-plane-link.js'
import { Metrics, type PoolReading } from '../metrics/registry.js'
import type { TrafficSecond } from '../metrics/traffic.js'
import { Router } from '../proxy/router.js'
import { ProxyServer, type ListenSpec } from '../proxy/server.js'
import { Pool } from '../upstream/pool.js'
import { Upstream } from '../upstream/upstream.js'

const SECOND_MS = 1_000
/** A WebSocket sent its 1001 close frame is cut after 2 s at most (src/proxy/upgrade.ts): wait a little longer. */
const GOING_AWAY_WAIT_MS = 2_500

/** Everything this data plane holds for one member of the table. */
interface Held {
  pool: string
  member: TableMember
  upstream: Upstream
  /** Upstreams replaced (new timeouts, a new version) that still carry requests or tunnels. */
  retired: Set<Upstream>
  /** Requests answered by replaced upstreams that are gone. */
  settled: number
  inTable: boolean
  /** Bumped each time it leaves the table, so a stale idle watch reports nothing. */
  left: number
}

const sameAddress = (a: TableMember, b: TableMember): boolean =>
  a.host === b.host && a.port === b.port && a.version === b.version && a.revision === b.revision

const upstreamTimeoutsOf = (p: ProxyConfig): string => `${p.timeouts.connect}/${p.timeouts.upstream}`

/**
 * The data path's half of the seam (docs/architecture.md): it applies the
 * table snapshots the controller publishes to the proxy and its pools,
 * creates and owns the Upstreams of the members, carries out the commands
 * about one member and reports drained members, per-second traffic and its
 * metrics. Each proxy worker process runs one (src/worker/main.ts); tests
 * run one in their own process behind an InProcessLink.
 */
export class DataPlane {
  readonly metrics = new Metrics()
  readonly proxy: ProxyServer
  private readonly pools = new Map<string, Pool>()
  private readonly held = new Map<string, Held>()
  private applied = 0
  private proxyConfig: ProxyConfig
  private routes: TableRoute[] = []
  /** The listeners and ticket key of the last table applied, as JSON (compared, not re-applied, when unchanged). */
  private listenersJson = ''
  private reports: DataPlaneReports | undefined
  private ticker: NodeJS.Timeout | undefined

  constructor (proxy: ProxyConfig) {
    this.proxyConfig = proxy
    this.proxy = new ProxyServer({ router: new Router([]), pools: this.pools }, proxy, this.metrics)
    this.metrics.readFrom(() => this.readings())
  }

  /** Where reports go; per-second traffic reports start with it. */
  report (reports: DataPlaneReports): void {
    this.reports = reports
    this.startTicker()
  }

  /** Opens the listeners, each of the kind the last table says (plain, TLS, redirect): apply a table first. */
  async listen (listeners: ListenSpec[]): Promise<Array<{ host: string, port: number }>> {
    return await this.proxy.listen(listeners)
  }

  /** The version of the last table applied (0 before the first). */
  get appliedVersion (): number { return this.applied }

  /** True while it holds anything for the member (it was in a table this data plane applied, and is not forgotten). */
  holds (id: string): boolean { return this.held.has(id) }

  /** Applies a table: from its return on, no new request reaches a member that is not in it. */
  apply (t: TableSnapshot): void {
    if (t.version <= this.applied) return
    this.applied = t.version
    const newTimeouts = upstreamTimeoutsOf(t.proxy) !== upstreamTimeoutsOf(this.proxyConfig)
    if (JSON.stringify(t.proxy) !== JSON.stringify(this.proxyConfig)) this.proxy.configure(t.proxy)
    this.proxyConfig = t.proxy

    const now = Date.now()
    const inTable = new Set<string>()
    for (const pt of t.pools) {
      let pool = this.pools.get(pt.name)
      if (pool === undefined) {
        pool = new Pool(pt.name, pt.balance)
        this.pools.set(pt.name, pool)
      }
      pool.setBalance(pt.balance)
      const serving = pt.members.map(m => {
        inTable.add(m.id)
        return { upstream: this.upstreamOf(pool, m, newTimeouts), servingSince: m.servingSince }
      })
      pool.setMembers(serving, pt.slowStart, now)
      pool.setSplit(pt.split)
    }
    for (const [name, pool] of this.pools) {
      if (t.pools.some(p => p.name === name)) continue
      pool.setMembers([], 0, now)
      pool.close()
      this.pools.delete(name)
    }
    const listeners = JSON.stringify([t.listeners, t.ticketKey])
    if (listeners !== this.listenersJson) {
      this.listenersJson = listeners
      this.proxy.setListeners(t.listeners ?? [], t.ticketKey)
    }
    if (JSON.stringify(t.routes) !== JSON.stringify(this.routes)) {
      this.routes = t.routes
      this.proxy.table = { router: new Router(t.routes), pools: this.pools }
    }
    for (const [id, h] of this.held) {
      if (h.inTable && !inTable.has(id)) {
        h.inTable = false
        this.watchIdle(id, h)
      }
    }
  }

  /** Closes a member's idle upstream sockets; resolves once its busy ones have finished their request. */
  async closeIdle (id: string): Promise<void> {
    const h = this.held.get(id)
    if (h !== undefined) await Promise.all(upstreamsOf(h).map(async u => await u.close()))
  }

  /** Ends what a member still has: its WebSockets get a 1001 close frame, everything else is cut. */
  async endRemaining (id: string): Promise<void> {
    const h = this.held.get(id)
    if (h === undefined) return
    for (const u of upstreamsOf(h)) u.closeUpgrades()
    await Promise.all(upstreamsOf(h).map(async u => await u.destroy()))
  }

  /** The member is stopped: its upstreams go. */
  async forget (id: string): Promise<void> {
    const h = this.held.get(id)
    if (h === undefined) return
    this.held.delete(id)
    await Promise.all(upstreamsOf(h).map(async u => await u.destroy()))
  }

  counts (): MemberCounts[] {
    return [...this.held].map(([id, h]) => {
      let inflight = 0
      let upgrades = 0
      let requests = h.settled
      for (const u of upstreamsOf(h)) { inflight += u.inflight; upgrades += u.upgrades.size; requests += u.requests }
      return { id, inflight, upgrades, requests }
    })
  }

  /** A reload happened: the access log file is reopened (logrotate may have moved it). */
  reopenLogs (): void {
    this.proxy.reopenAccessLog()
  }

  /** Stops accepting; keep-alive connections close as their requests finish, within `graceMs`. */
  async close (graceMs: number): Promise<void> {
    await this.proxy.close(graceMs)
  }

  /**
   * An upgrade replaced this data plane's process: stop accepting, answer
   * what comes with Connection: close, let requests finish; open WebSockets
   * stay until they end or `timeoutMs` has passed since the drain began,
   * then get a 1001 close frame. Resolves when nothing is left.
   */
  async drain (timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs
    await this.proxy.drain(timeoutMs)
    const upstreams = [...this.held.values()].flatMap(upstreamsOf)
    const idle = Promise.all(upstreams.map(async u => await u.waitIdle()))
    const left = until - Date.now()
    const drained = left > 0 && await Promise.race([idle.then(() => true), new Promise<boolean>(resolve => setTimeout(() => resolve(false), left).unref())])
    if (!drained) {
      for (const u of upstreams) u.closeUpgrades()
      // A tunnel that got its close frame ends within a moment (goAway cuts it after 2 s).
      await Promise.race([idle, new Promise(resolve => setTimeout(resolve, GOING_AWAY_WAIT_MS).unref())])
    }
    this.stop()
  }

  /** The last step of a stop: timers go (the members were forgotten as they stopped). */
  stop (): void {
    clearTimeout(this.ticker)
    clearInterval(this.ticker)
    for (const p of this.pools.values()) p.close()
  }

  /** The member's upstream, made on its first appearance and remade when its address, version or timeouts change. */
  private upstreamOf (pool: Pool, m: TableMember, newTimeouts: boolean): Upstream {
    const h = this.held.get(m.id)
    if (h === undefined) {
      const upstream = this.newUpstream(pool, m)
      this.held.set(m.id, { pool: pool.name, member: m, upstream, retired: new Set(), settled: 0, inTable: true, left: 0 })
      return upstream
    }
    h.inTable = true
    if (newTimeouts || !sameAddress(h.member, m)) {
      const old = h.upstream
      h.upstream = this.newUpstream(pool, m)
      h.retired.add(old)
      // Its requests and tunnels finish on it; then it goes.
      void Promise.all([old.close(), old.waitIdle()]).then(() => {
        if (h.retired.delete(old)) h.settled += old.requests
      })
    }
    h.member = m
    return h.upstream
  }

  private newUpstream (pool: Pool, m: TableMember): Upstream {
    const t = this.proxyConfig.timeouts
    return new Upstream({
      id: m.id,
      pool: pool.name,
      host: m.host,
      port: m.port,
      version: m.version,
      revision: m.revision,
      connectTimeout: t.connect,
      upstreamTimeout: t.upstream,
      keepAlive: DEFAULTS.proxy.upstreamKeepAlive,
      traffic: pool.traffic.of(m.revision, m.version)
    })
  }

  /**
   * Reports the member once no HTTP request is in flight on it while
   * upgraded connections are (quiet), and once nothing is (idle), unless it
   * came back into the table meanwhile.
   */
  private watchIdle (id: string, h: Held): void {
    const turn = ++h.left
    const current = (): boolean => !h.inTable && h.left === turn && this.held.get(id) === h
    void Promise.all(upstreamsOf(h).map(async u => await u.waitRequestsDone())).then(() => {
      if (current() && upstreamsOf(h).some(u => u.upgrades.size > 0)) this.reports?.quiet(id)
    })
    void Promise.all(upstreamsOf(h).map(async u => await u.waitIdle())).then(() => {
      if (current()) this.reports?.idle(id)
    })
  }

  private * readings (): Iterable<PoolReading> {
    for (const [name, pool] of this.pools) {
      let inflight = 0
      for (const h of this.held.values()) if (h.pool === name) for (const u of upstreamsOf(h)) inflight += u.inflight
      yield { pool: name, traffic: pool.traffic, inflight }
    }
  }

  /** Hands each second's traffic to the controller once the second is over, on the second. */
  private startTicker (): void {
    if (this.ticker !== undefined) return
    const tick = (): void => {
      const second = Math.round(Date.now() / SECOND_MS) - 1
      const seconds: TrafficSecond[] = []
      for (const [name, pool] of this.pools) {
        const s = pool.traffic.takeSecond(name, second)
        if (s !== undefined) seconds.push(s)
      }
      this.reports?.traffic(second, seconds)
    }
    this.ticker = setTimeout(() => {
      tick()
      this.ticker = setInterval(tick, SECOND_MS)
      this.ticker.unref()
    }, SECOND_MS - (Date.now() % SECOND_MS))
    this.ticker.unref()
  }
}

function upstreamsOf (h: Held): Upstream[] {
  return [h.upstream, ...h.retired]
}
