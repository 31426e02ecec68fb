import type { BalanceKind, ProxyConfig, RouteConfig, TlsVersion } from '../config/types.js'
import type { MetricsJson } from '../metrics/registry.js'
import type { TrafficSecond } from '../metrics/traffic.js'
import type { DataPlane } from '../worker/data-plane.js'

/**
 * The one seam between the control side and the data path
 * (docs/architecture.md): the controller publishes table snapshots and sends
 * commands about one upstream; the data plane reports what only it knows.
 * Nothing crosses it per request. `InProcessLink` is today's implementation;
 * wave 2 puts N worker processes behind an IPC one.
 */

/** A member of a pool's table: an address that takes new requests. */
export interface TableMember {
  /** The instance id (static servers: `POOL/HOST:PORT`). */
  id: string
  host: string
  port: number
  version: string
  revision: number
  /**
   * When it began serving (ms epoch): every data plane ramps its weight from
   * here over the pool's slowStart, so they all agree. 0 (long enough ago
   * for full weight at once) for static servers and for a member that
   * joined an empty pool.
   */
  servingSince: number
}

/**
 * How a pool's requests divide between two revisions during a canary or a
 * blue-green rollout: each data plane first picks the revision, by a smooth
 * weighted round-robin of `weight` (so 5 % is 5 % in every data plane,
 * whatever the instance counts), then the balancer within it. Absent: the
 * balancer over every member, as in a rolling update.
 */
export interface TrafficSplit {
  /** The revision the pool is leaving: it takes the rest (every member not of `canary`). */
  stable: number
  /** The revision being rolled out. */
  canary: number
  /** Percent of requests (0-100) sent to `canary`. */
  weight: number
  /** Requests with this header (lower-case name) set to `always` go to `canary` only, `never` to `stable` only. */
  header?: string
}

/** A route of the table: the config's, or one the controller adds (a blue-green previewRoute, pinned to a revision). */
export interface TableRoute extends RouteConfig {
  /** Requests on this route go to members of this revision only. */
  revision?: number
}

export interface PoolTable {
  name: string
  balance: BalanceKind
  /** ms over which a new member's share of traffic ramps up. */
  slowStart: number
  members: TableMember[]
  split?: TrafficSplit
}

/** A certificate as the data plane takes it: PEM text, never a file path (no worker reads a file). */
export interface CertificateTable {
  cert: string
  key: string
  /** Lower-cased host names SNI picks it for; `*.example.com` matches one label. */
  names: string[]
}

/**
 * Each listener's key, in config order: `host:port` as configured, and
 * `host:port#N` for the Nth repeat of one (several listeners on port 0).
 * The table and the data plane's listen() both key listeners so.
 */
export function listenerKeys (listeners: ReadonlyArray<{ host: string, port: number }>): string[] {
  const seen = new Map<string, number>()
  return listeners.map(l => {
    const key = `${l.host}:${l.port}`
    const n = seen.get(key) ?? 0
    seen.set(key, n + 1)
    return n === 0 ? key : `${key}#${n}`
  })
}

/** One listener of the config: what kind of server the data plane opens on it, and for TLS its certificates (README "TLS"). */
export interface ListenerTable {
  /** See listenerKeys: the ListenSpec the data plane is asked to open has the same. */
  key: string
  /** TLS: SNI picks the first certificate whose names match, the first is the default. */
  tls?: { certificates: CertificateTable[], minVersion: TlsVersion }
  /** HTTP/2 offered by ALPN (TLS listeners only). */
  http2: boolean
  /** Every request gets a 308 to the https URL. */
  redirect?: 'https'
}

/** Everything a data plane needs to route and balance, published whole. */
export interface TableSnapshot {
  /** Grows with every publish: a data plane never applies an older one over a newer one. */
  version: number
  proxy: ProxyConfig
  /** In order, first match wins; routes pinned to a revision come first. */
  routes: TableRoute[]
  pools: PoolTable[]
  /** Every listener of the config; absent, each listener is plain HTTP (a table made by hand in a test). */
  listeners?: ListenerTable[]
  /**
   * The TLS session ticket key (48 bytes, base64) every data plane uses, so
   * that a session made with one worker resumes on any other; the controller
   * makes it and replaces it every DEFAULTS.tls.ticketKeyRotation.
   */
  ticketKey?: string
}

/** One member's counts in the data plane(s), summed. */
export interface MemberCounts {
  id: string
  /** Requests and upgraded connections in flight. */
  inflight: number
  /** Of those, upgraded connections (WebSockets), their handshake included. */
  upgrades: number
  /** Requests answered over its life. */
  requests: number
}

/** What the data plane tells the controller, when it happens. */
export interface DataPlaneReports {
  /** A member that left the table has nothing in flight any more (in every data plane). */
  idle: (memberId: string) => void
  /**
   * A member that left the table has no HTTP request in flight any more, but
   * upgraded connections still open (in every data plane): it keeps draining
   * them, and a rollout no longer waits on it (`rollout.maxDraining`).
   */
  quiet: (memberId: string) => void
  /**
   * The traffic of epoch second `second`, per pool that had any, once the
   * second is over; sent every second, empty or not, so that the controller
   * knows the second is complete (a link to several data planes calls it
   * once every live one has reported that second).
   */
  traffic: (second: number, seconds: TrafficSecond[]) => void
}

export interface DataPlaneLink {
  /** Where reports go; set once by the controller before anything is published. */
  connect: (reports: DataPlaneReports) => void
  /** Resolves once every data plane applied it: from then on no new request reaches a member that left the table. */
  publish: (table: TableSnapshot) => Promise<void>
  /** A member that left the table: close its idle upstream sockets now; resolves when the busy ones have finished too. */
  closeIdle: (memberId: string) => Promise<void>
  /** drainTimeout passed: end what is left on the member (WebSockets get a 1001 close frame, the rest is cut). */
  endRemaining: (memberId: string) => Promise<void>
  /** The member is stopped: the data plane drops everything it held for it. */
  forget: (memberId: string) => Promise<void>
  /** In-flight and answered counts of every member, now (status, metrics). */
  counts: () => Promise<MemberCounts[]>
  /** Each data plane's metrics as prom-client JSON, to be aggregated. */
  metrics: () => Promise<MetricsJson[]>
  /** A reload happened: every data plane reopens its access log file (logrotate may have moved it). */
  reopenLogs: () => Promise<void>
}

/** The data plane in this very process: every call is a method call. */
export class InProcessLink implements DataPlaneLink {
  constructor (private readonly plane: DataPlane) {}

  connect (reports: DataPlaneReports): void { this.plane.report(reports) }
  async publish (table: TableSnapshot): Promise<void> { this.plane.apply(table) }
  async closeIdle (memberId: string): Promise<void> { await this.plane.closeIdle(memberId) }
  async endRemaining (memberId: string): Promise<void> { await this.plane.endRemaining(memberId) }
  async forget (memberId: string): Promise<void> { await this.plane.forget(memberId) }
  async counts (): Promise<MemberCounts[]> { return this.plane.counts() }
  async metrics (): Promise<MetricsJson[]> { return [await this.plane.metrics.json()] }
  async reopenLogs (): Promise<void> { this.plane.reopenLogs() }
}
