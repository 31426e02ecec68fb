import { randomBytes } from 'node:crypto'
import type { Config, ListenConfig, PoolConfig } from '../config/types.js'
import { listenerKeys, type DataPlaneLink, type ListenerTable, type MemberCounts, type PoolTable, type TableMember, type TableRoute, type TrafficSplit } from './data-plane-link.js'

/** What a pool's members (instances, static servers) do with the data plane, in the order of a stop. */
export interface PoolMembers {
  /**
   * Into the table: it takes new requests once the promise resolves. It
   * ramps up over slowStart from now, unless `fullWeight` or it is the
   * pool's only member (there is nothing to share traffic with).
   */
  serve: (member: Omit<TableMember, 'servingSince'>, fullWeight?: boolean) => Promise<void>
  /** Out of the table: no new request reaches it once the promise resolves. */
  withdraw: (id: string) => Promise<void>
  /**
   * After withdraw: closes its idle upstream sockets, waits for what is in
   * flight up to `timeoutMs`, then ends what is left. True if it drained.
   * `onQuiet` is called once no HTTP request is left on it while upgraded
   * connections are (they drain on).
   */
  drain: (id: string, timeoutMs: number, onQuiet?: () => void) => Promise<boolean>
  /** Stopped: the data plane drops it. */
  forget: (id: string) => Promise<void>
  /**
   * How the pool's requests divide between two revisions (canary,
   * blue-green), and a route pinned to the new one (blue-green's
   * previewRoute); undefined: none. Applied once the promise resolves.
   */
  steer: (split: TrafficSplit | undefined, preview: TableRoute | undefined) => Promise<void>
}

/** servingSince of a member that takes its full share at once. */
const FULL_WEIGHT = 0

interface PoolEntry {
  config: PoolConfig
  members: Map<string, TableMember>
  split?: TrafficSplit
  preview?: TableRoute
}

/**
 * The controller's side of the seam: the table it publishes, the commands
 * about one member, and the data plane's reports that a member has drained.
 * It is the only place where a member enters or leaves serving.
 */
export class ServingTable {
  private version = 0
  private config: Config
  private readonly pools = new Map<string, PoolEntry>()
  /** Members that were in the table once: only those can have anything in flight. */
  private readonly served = new Set<string>()
  /** Members that left the table and have nothing in flight (reported by the data plane). */
  private readonly idle = new Set<string>()
  private readonly idleWaiters = new Map<string, Set<() => void>>()
  /** The TLS session ticket key every data plane shares (README "TLS"); an upgrade of baton hands it to the next controller. */
  private ticketKey: string
  /** Members that left the table and hold only upgraded connections (reported by the data plane). */
  private readonly quiet = new Set<string>()
  private readonly quietWaiters = new Map<string, () => void>()

  constructor (private readonly link: DataPlaneLink, config: Config, ticketKey = newTicketKey()) {
    this.config = config
    this.ticketKey = ticketKey
  }

  get sessionTicketKey (): string { return this.ticketKey }

  /**
   * Applies a config: proxy settings, routes, each pool's balancing and
   * slowStart. Pools it no longer has leave the table with their members.
   */
  async configure (config: Config): Promise<void> {
    this.config = config
    for (const name of [...this.pools.keys()]) if (config.pools[name] === undefined) this.pools.delete(name)
    for (const pc of Object.values(config.pools)) {
      const entry = this.pools.get(pc.name)
      if (entry === undefined) this.pools.set(pc.name, { config: pc, members: new Map() })
      else entry.config = pc
    }
    await this.publish()
  }

  /**
   * A new TLS session ticket key for every data plane. Node keeps one key per
   * listener, so tickets made under the old one no longer resume: those
   * clients make one full handshake (README "TLS").
   */
  async rotateTicketKey (): Promise<void> {
    this.ticketKey = newTicketKey()
    await this.publish()
  }

  /** The operations on one pool's members. */
  forPool (pool: string): PoolMembers {
    return {
      serve: async (m, fullWeight = false) => {
        const entry = this.pools.get(pool)
        if (entry === undefined) return
        this.idle.delete(m.id)
        this.quiet.delete(m.id)
        this.served.add(m.id)
        const alone = [...entry.members.keys()].every(id => id === m.id)
        entry.members.set(m.id, { ...m, servingSince: fullWeight || alone ? FULL_WEIGHT : Date.now() })
        await this.publish()
      },
      withdraw: async id => {
        // A pool that left the config took its members with it.
        if (this.pools.get(pool)?.members.delete(id) !== true) return
        await this.publish()
      },
      drain: async (id, timeoutMs, onQuiet) => await this.drain(id, timeoutMs, onQuiet),
      steer: async (split, preview) => {
        const entry = this.pools.get(pool)
        if (entry === undefined) return
        entry.split = split
        entry.preview = preview
        await this.publish()
      },
      forget: async id => {
        this.idle.delete(id)
        this.quiet.delete(id)
        this.quietWaiters.delete(id)
        this.served.delete(id)
        await this.link.forget(id)
      }
    }
  }

  /** Per member id: in flight and answered, summed over the data planes. */
  async counts (): Promise<Map<string, MemberCounts>> {
    return new Map((await this.link.counts()).map(c => [c.id, c]))
  }

  /** The data plane reports a member that left the table as drained. */
  idleReported (id: string): void {
    this.idle.add(id)
    const waiters = this.idleWaiters.get(id)
    this.idleWaiters.delete(id)
    for (const w of waiters ?? []) w()
  }

  /** The data plane reports a member that left the table as holding only upgraded connections. */
  quietReported (id: string): void {
    this.quiet.add(id)
    const waiter = this.quietWaiters.get(id)
    this.quietWaiters.delete(id)
    waiter?.()
  }

  private async drain (id: string, timeoutMs: number, onQuiet?: () => void): Promise<boolean> {
    // Never in the table: no data plane has anything of it.
    if (!this.served.has(id)) return true
    if (onQuiet !== undefined) {
      if (this.quiet.has(id)) onQuiet()
      else this.quietWaiters.set(id, onQuiet)
    }
    const closing = this.link.closeIdle(id)
    const drained = await this.whenIdle(id, timeoutMs)
    this.quietWaiters.delete(id)
    if (!drained) await this.link.endRemaining(id)
    await closing
    return drained
  }

  private async whenIdle (id: string, timeoutMs: number): Promise<boolean> {
    if (this.idle.has(id)) return true
    return await new Promise<boolean>(resolve => {
      const waiters = this.idleWaiters.get(id) ?? new Set()
      this.idleWaiters.set(id, waiters)
      const done = (): void => { clearTimeout(timer); resolve(true) }
      const timer = setTimeout(() => {
        waiters.delete(done)
        resolve(false)
      }, timeoutMs)
      waiters.add(done)
    })
  }

  private async publish (): Promise<void> {
    const pools: PoolTable[] = [...this.pools.values()].map(e => ({
      name: e.config.name,
      balance: e.config.balance,
      slowStart: e.config.rollout.slowStart,
      members: [...e.members.values()],
      ...(e.split === undefined ? {} : { split: e.split })
    }))
    // Routes pinned to a revision come first: a preview is reached whatever the config's routes say.
    const previews = [...this.pools.values()].flatMap(e => e.preview === undefined ? [] : [e.preview])
    await this.link.publish({
      version: ++this.version,
      proxy: this.config.proxy,
      routes: [...previews, ...this.config.routes],
      pools,
      listeners: listenerTables(this.config.listen),
      ticketKey: this.ticketKey
    })
  }
}

/** 48 random bytes (key name, HMAC secret, AES key: what node:tls takes), base64 to travel as plain data. */
function newTicketKey (): string {
  return randomBytes(48).toString('base64')
}

/** The listeners as the data plane takes them: the certificates' PEM text, not their files. */
function listenerTables (listen: ListenConfig[]): ListenerTable[] {
  const keys = listenerKeys(listen)
  return listen.map((l, i) => listenerTable(l, keys[i]))
}

function listenerTable (l: ListenConfig, key: string): ListenerTable {
  return {
    key,
    tls: l.tls === undefined ? undefined : { minVersion: l.tls.minVersion, certificates: l.tls.certificates.map(c => ({ cert: c.cert, key: c.key, names: c.names })) },
    http2: l.http2 === true,
    redirect: l.redirect
  }
}
