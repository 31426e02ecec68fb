import { DEFAULTS } from '../config/defaults.js'
import { Outcome, type VersionTraffic } from '../metrics/traffic.js'
import { ConnectionPool } from './http1/pool.js'

export interface UpstreamOptions {
  id: string
  pool: string
  host: string
  port: number
  version: string
  revision: number
  connectTimeout: number
  upstreamTimeout: number
  /** Idle connections are kept this long when the upstream sends no Keep-Alive hint. */
  keepAlive: number
  /** Connections open at most (default DEFAULTS.proxy.upstreamConnections); more requests wait for one. */
  maxConnections?: number
  /** The per-second traffic of this upstream's pool and version (rollout reports). */
  traffic: VersionTraffic
}

/**
 * One backend address and everything the hot path needs about it: its
 * connection pool, in-flight count and its version's traffic counters. The
 * data plane makes one per member of the table the controller publishes
 * (src/worker/data-plane.ts); a static server and a managed instance are
 * both one. Whether it serves is the table's business, not a field here.
 */
export class Upstream {
  readonly id: string
  readonly pool: string
  readonly host: string
  readonly port: number
  readonly address: string
  readonly origin: string
  readonly version: string
  readonly revision: number
  /** Its HTTP/1.1 connections (src/upstream/http1). */
  readonly connections: ConnectionPool
  readonly traffic: VersionTraffic

  /** Requests and upgraded connections in flight to this upstream. */
  inflight = 0
  /** Requests answered (any status) over its life. */
  requests = 0
  /** Share of traffic while slow-starting: 0 < weight <= 1. */
  weight = 1
  /** Passive health: consecutive connect errors / 5xx, and ejection end (ms epoch). */
  failures = 0
  ejectedUntil = 0
  /** Upgraded (WebSocket) tunnels, closed when a drain times out. */
  readonly upgrades = new Set<{ goAway: () => void }>()

  private idleWaiters: Array<() => void> = []
  private requestWaiters: Array<() => void> = []

  constructor (o: UpstreamOptions) {
    this.id = o.id
    this.pool = o.pool
    this.host = o.host
    this.port = o.port
    this.address = `${o.host}:${o.port}`
    this.origin = `http://${this.address}`
    this.version = o.version
    this.revision = o.revision
    this.traffic = o.traffic
    this.connections = new ConnectionPool({
      host: o.host,
      port: o.port,
      connectTimeout: o.connectTimeout,
      upstreamTimeout: o.upstreamTimeout,
      keepAlive: o.keepAlive,
      maxConnections: o.maxConnections ?? DEFAULTS.proxy.upstreamConnections
    })
  }

  /** HTTP requests in flight: `inflight` without the upgraded connections (an upgrade counts from its handshake). */
  get requestsInflight (): number { return this.inflight - this.upgrades.size }

  /** Called when a request or upgrade ends; wakes a drain that waits for zero, or for no HTTP request. */
  release (): void {
    this.inflight--
    if (this.inflight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const w of waiters) w()
    }
    if (this.requestWaiters.length > 0 && this.inflight <= this.upgrades.size) {
      const waiters = this.requestWaiters
      this.requestWaiters = []
      for (const w of waiters) w()
    }
  }

  /** Resolves once no HTTP request is in flight: only upgraded connections, or nothing, are left. */
  async waitRequestsDone (): Promise<void> {
    if (this.inflight <= this.upgrades.size) return
    await new Promise<void>(resolve => { this.requestWaiters.push(resolve) })
  }

  /** Counts one finished request (its pool's traffic feeds the metrics at scrape time). */
  observe (status: number, seconds: number, outcome: Outcome = Outcome.App): void {
    this.requests++
    this.traffic.record(status, seconds * 1e6, outcome)
  }

  /** Resolves when nothing is in flight, or after `timeoutMs` (none: no limit); true if it drained. */
  async waitIdle (timeoutMs?: number): Promise<boolean> {
    if (this.inflight === 0) return true
    return await new Promise<boolean>(resolve => {
      const timer = timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
          this.idleWaiters = this.idleWaiters.filter(w => w !== done)
          resolve(false)
        }, timeoutMs)
      const done = (): void => { clearTimeout(timer); resolve(true) }
      this.idleWaiters.push(done)
    })
  }

  /** Closes upgraded connections still open (drain timeout reached). */
  closeUpgrades (): void {
    for (const t of [...this.upgrades]) t.goAway()
    this.upgrades.clear()
  }

  /** Closes idle keep-alive sockets and lets busy ones finish their request. */
  async close (): Promise<void> {
    await this.connections.close()
  }

  /** Cuts every socket at once (after a drain timeout, or on shutdown). */
  async destroy (): Promise<void> {
    await this.connections.destroy()
  }
}
