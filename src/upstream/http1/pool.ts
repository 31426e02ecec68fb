import { Connection, type ConnectionOwner } from './connection.js'
import { UpstreamError } from './errors.js'

/** Someone waiting for a connection: an exchange's attempt. */
export interface ConnectionWaiter {
  /** A connection ready for one request (fresh, or idle and reused). */
  onConnection (c: Connection): void
  /** No connection could be had. */
  onUpstreamError (err: UpstreamError): void
}

export interface ConnectionPoolOptions {
  host: string
  port: number
  /** TCP connect, in ms. */
  connectTimeout: number
  /** Silence on a busy connection (no response byte, no request byte), in ms. */
  upstreamTimeout: number
  /** How long an idle connection is kept when the upstream sends no Keep-Alive hint, in ms. */
  keepAlive: number
  /** Connections open or opening at most; more requests wait for one. */
  maxConnections: number
}

/**
 * Margin kept below an upstream's own `Keep-Alive: timeout=N`: a connection
 * is not reused within this long of the moment the upstream may close it, so
 * that a request (a POST, which cannot be retried) never races that close.
 */
export const KEEP_ALIVE_MARGIN = 1_000
/** Longest idle time taken from a Keep-Alive hint. */
const MAX_HINTED_KEEP_ALIVE = 300_000
/** How often idle connections past their time are closed (they are never reused past it in any case). */
const SWEEP_EVERY = 1_000

/**
 * The connections to one upstream: idle ones are reused last-in first-out
 * (so that a surplus goes idle and times out instead of churning), at most
 * `maxConnections` are open, and requests beyond wait in order for one.
 */
export class ConnectionPool implements ConnectionOwner {
  readonly host: string
  readonly port: number
  readonly connectTimeout: number
  readonly upstreamTimeout: number
  private readonly keepAlive: number
  private readonly maxConnections: number
  /** Connections opened over the pool's life. */
  opened = 0
  private readonly all = new Set<Connection>()
  private readonly idle: Connection[] = []
  private readonly waiting: ConnectionWaiter[] = []
  private readonly waitTimers = new Map<ConnectionWaiter, NodeJS.Timeout>()
  private sweeper: NodeJS.Timeout | undefined
  private closing = false
  private whenEmpty: (() => void) | undefined

  constructor (o: ConnectionPoolOptions) {
    this.host = o.host
    this.port = o.port
    this.connectTimeout = o.connectTimeout
    this.upstreamTimeout = o.upstreamTimeout
    this.keepAlive = o.keepAlive
    this.maxConnections = o.maxConnections
  }

  /** Connections open or opening. */
  get size (): number { return this.all.size }

  /** Gives `w` a connection: an idle one at once, else a new one once connected, else the next one freed. */
  acquire (w: ConnectionWaiter): void {
    if (this.closing) {
      w.onUpstreamError(new UpstreamError('closed', 'the upstream is closing'))
      return
    }
    const idle = this.idle
    if (idle.length > 0) {
      const now = Date.now()
      while (idle.length > 0) {
        const c = idle.pop() as Connection
        if (c.idleUntil > now) { w.onConnection(c); return }
        c.close()
      }
    }
    if (this.all.size < this.maxConnections) {
      this.open(w)
      return
    }
    this.waiting.push(w)
    // Every connection is busy: wait for one no longer than a connect may take.
    this.waitTimers.set(w, setTimeout(() => {
      this.cancel(w)
      w.onUpstreamError(new UpstreamError('pool_full', `all ${this.maxConnections} connections to ${this.host}:${this.port} stayed busy for ${this.connectTimeout} ms`))
    }, this.connectTimeout))
  }

  /** `w` no longer wants a connection (its client left). */
  cancel (w: ConnectionWaiter): void {
    for (const c of this.all) if (c.reservedFor === w) c.reservedFor = undefined
    const i = this.waiting.indexOf(w)
    if (i === -1) return
    this.waiting.splice(i, 1)
    clearTimeout(this.waitTimers.get(w))
    this.waitTimers.delete(w)
  }

  /** A connection handed out but not used goes back as idle. */
  giveBack (c: Connection): void {
    this.onReusable(c, -1)
  }

  onConnected (c: Connection): void {
    const w = (c.reservedFor as ConnectionWaiter | undefined) ?? this.nextWaiter()
    c.reservedFor = undefined
    if (this.closing) {
      c.close()
      w?.onUpstreamError(new UpstreamError('closed', 'the upstream is closing'))
    } else if (w === undefined) {
      this.makeIdle(c, this.keepAlive)
    } else {
      w.onConnection(c)
    }
  }

  onConnectFailed (c: Connection, err: UpstreamError): void {
    const w = (c.reservedFor as ConnectionWaiter | undefined) ?? this.nextWaiter()
    c.reservedFor = undefined
    w?.onUpstreamError(err)
  }

  onReusable (c: Connection, keepAliveSeconds: number): void {
    if (this.closing) { c.close(); return }
    const w = this.nextWaiter()
    if (w !== undefined) { w.onConnection(c); return }
    if (keepAliveSeconds === -1) { this.makeIdle(c, this.keepAlive); return }
    const ms = Math.min(keepAliveSeconds * 1000 - KEEP_ALIVE_MARGIN, MAX_HINTED_KEEP_ALIVE)
    if (ms <= 0) c.close()
    else this.makeIdle(c, ms)
  }

  onClosed (c: Connection): void {
    if (!this.all.delete(c)) return
    const i = this.idle.indexOf(c)
    if (i !== -1) this.idle.splice(i, 1)
    if (this.closing) {
      if (this.all.size === 0) this.whenEmpty?.()
      return
    }
    // A request waiting for a free slot gets the one this connection left.
    if (this.waiting.length > 0 && this.all.size < this.maxConnections) this.open(undefined)
  }

  /** Closes idle connections now and each busy one as its request ends; resolves when none is left. */
  async close (): Promise<void> {
    this.closing = true
    this.stopSweeping()
    for (const w of this.waiting.splice(0)) {
      clearTimeout(this.waitTimers.get(w))
      w.onUpstreamError(new UpstreamError('closed', 'the upstream is closing'))
    }
    this.waitTimers.clear()
    for (const c of this.idle.splice(0)) c.close()
    if (this.all.size === 0) return
    await new Promise<void>(resolve => { this.whenEmpty = resolve })
  }

  /** Cuts every connection at once, busy or not. */
  async destroy (): Promise<void> {
    const closed = this.close()
    for (const c of [...this.all]) {
      const w = c.reservedFor as ConnectionWaiter | undefined
      c.reservedFor = undefined
      c.fail(new UpstreamError('closed', 'the upstream was closed'))
      w?.onUpstreamError(new UpstreamError('closed', 'the upstream was closed'))
    }
    await closed
  }

  private open (w: ConnectionWaiter | undefined): void {
    this.opened++
    this.all.add(new Connection(this, w))
  }

  private nextWaiter (): ConnectionWaiter | undefined {
    const w = this.waiting.shift()
    if (w !== undefined) {
      clearTimeout(this.waitTimers.get(w))
      this.waitTimers.delete(w)
    }
    return w
  }

  private makeIdle (c: Connection, ms: number): void {
    c.idleUntil = Date.now() + ms
    this.idle.push(c)
    this.sweeper ??= setInterval(this.sweep, Math.min(SWEEP_EVERY, this.keepAlive)).unref()
  }

  /** Closes idle connections past their time, oldest first. */
  private readonly sweep = (): void => {
    const now = Date.now()
    for (const c of this.idle.filter(c => c.idleUntil <= now)) c.close()
    if (this.idle.length === 0) this.stopSweeping()
  }

  private stopSweeping (): void {
    clearInterval(this.sweeper)
    this.sweeper = undefined
  }
}
