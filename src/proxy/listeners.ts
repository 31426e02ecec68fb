import type { Server as HttpServer } from 'node:http'
import { Server as NetServer, type AddressInfo } from 'node:net'
import { listenerKeys, type ListenerTable } from '../controller/data-plane-link.js'
import { log } from '../log.js'
import type { H2Front } from './h2-server.js'
import { TlsFront } from './tls-front.js'

/**
 * A listener to open: where, and the listening socket to accept on when
 * another process bound it (the supervisor); without a handle, host:port is
 * bound here. Its kind (plain, TLS, HTTP/2, redirect) comes from the table's
 * listener with the same `host:port` key.
 */
export interface ListenSpec {
  host: string
  port: number
  handle?: object
}

/** How the request path's servers are made (ProxyServer). */
export interface ServerMaker {
  /** An HTTP/1.1 server on the request path; with `redirect`, one that answers every request 308 to https. */
  http: (redirect: boolean) => HttpServer
  h2: () => H2Front
  /** The TLS handshake's bound: the `headers` timeout. */
  handshakeTimeout: () => number
  onHandshakeError: (err: NodeJS.ErrnoException) => void
}

interface Listener {
  /** What the table says it is; listen() replaces a listener whose kind changed. */
  kind: string
  /** The server that accepts. */
  server: NetServer
  /** The HTTP/1.1 server its requests go through: the accepting one, but behind TLS. */
  http: HttpServer
  tls?: TlsFront
}

/** Listeners that stopped accepting while their connections drain (an upgrade of baton). */
export interface Detached {
  /** HTTP/2 sessions still open on them. */
  h2Sessions: () => number
  /** The drain ran out of time: every connection left is cut. */
  cutAll: () => void
}

const PLAIN_HTTP: ListenerTable = { key: '', http2: false }

function kindOf (t: ListenerTable): string {
  if (t.redirect !== undefined) return `redirect:${t.redirect}`
  if (t.tls === undefined) return 'http'
  return `https:${t.tls.minVersion}:${t.http2 ? 'h2' : 'h1'}`
}

/** The port of a configured `host:port[#N]` key. */
const portOf = (key: string): number => Number(/:(\d+)(?:#\d+)?$/.exec(key)?.[1])

/**
 * The listeners of one data plane, each of the kind the controller's table
 * says (README "TLS"): plain HTTP/1.1, TLS (HTTP/1.1, and HTTP/2 by ALPN)
 * or a redirect to https. Certificates and the session ticket key of open
 * TLS listeners are swapped in place when a table brings new ones.
 */
export class Listeners {
  private readonly open = new Map<string, Listener>()
  private tables: ListenerTable[] = []
  private ticketKey: string | undefined

  constructor (private readonly make: ServerMaker) {}

  /** The table's listeners: open TLS listeners take its certificates and ticket key for new handshakes. */
  setTables (tables: ListenerTable[], ticketKey: string | undefined): void {
    this.tables = tables
    this.ticketKey = ticketKey
    for (const [key, l] of this.open) {
      const t = this.tableOf(key)
      if (l.tls !== undefined && t.tls !== undefined && kindOf(t) === l.kind) l.tls.update(t.tls, ticketKey)
    }
  }

  /** Opens the listeners asked for and not open yet (or open as another kind); closes the others. */
  async listen (specs: ListenSpec[]): Promise<Array<{ host: string, port: number }>> {
    const keys = listenerKeys(specs)
    const wanted = new Map(specs.map((l, i) => [keys[i], l]))
    for (const [key, l] of this.open) {
      if (wanted.has(key) && kindOf(this.tableOf(key)) === l.kind) continue
      this.open.delete(key)
      l.server.close()
      l.http.closeIdleConnections()
      l.tls?.h2?.goAway()
      log('info', 'listener closed', { listener: key })
    }
    const opened: Array<{ host: string, port: number }> = []
    for (const [key, spec] of wanted) {
      if (this.open.has(key)) continue
      const l = this.create(this.tableOf(key))
      await new Promise<void>((resolve, reject) => {
        l.server.once('error', reject)
        const done = (): void => { l.server.off('error', reject); resolve() }
        if (spec.handle !== undefined) l.server.listen(spec.handle, done)
        else l.server.listen(spec.port, spec.host, done)
      })
      // Accept errors (EMFILE, ...) are logged; libuv keeps the listener going.
      l.server.on('error', (err: NodeJS.ErrnoException) => log('error', 'listener error', { listener: key, code: err.code, error: err.message }))
      const addr = l.server.address() as AddressInfo
      this.open.set(key, l)
      opened.push({ host: spec.host, port: addr.port })
      log('info', 'listening', { host: spec.host, port: addr.port, kind: l.kind })
    }
    return opened
  }

  /** Where a redirect sends clients: the first TLS listener's port (the one bound, when configured as 0). */
  httpsPort (): number | undefined {
    const first = this.tables.find(t => t.tls !== undefined)
    if (first === undefined) return undefined
    const l = this.open.get(first.key)
    return l === undefined ? portOf(first.key) : (l.server.address() as AddressInfo).port
  }

  get addresses (): Array<{ host: string, port: number }> {
    return [...this.open.values()].map(l => {
      const a = l.server.address() as AddressInfo
      return { host: a.address, port: a.port }
    })
  }

  /** The HTTP/1.1 servers of the open listeners (for new timeouts) and their HTTP/2 sides. */
  httpServers (): HttpServer[] { return [...this.open.values()].map(l => l.http) }
  h2Fronts (): H2Front[] { return [...this.open.values()].flatMap(l => l.tls?.h2 ?? []) }

  /**
   * Stops accepting; HTTP/2 sessions get GOAWAY; `sweepIdle` closes idle
   * HTTP/1.1 connections every 50 ms meanwhile. Resolves once every
   * connection is gone, or at `graceMs` with what is left cut.
   */
  async close (graceMs: number, sweepIdle: (servers: HttpServer[]) => void): Promise<void> {
    const all = [...this.open.values()]
    this.open.clear()
    const closed = all.map(async l => await new Promise<void>(resolve => l.server.close(() => resolve())))
    for (const l of all) {
      if (l.tls === undefined) continue
      // The HTTP/1.1 server behind TLS never listened: this stops its header-timeout checks only.
      l.http.close()
      l.tls.h2?.goAway()
    }
    const https = all.map(l => l.http)
    const sweep = setInterval(() => sweepIdle(https), 50)
    sweepIdle(https)
    const deadline = new Promise<void>(resolve => setTimeout(resolve, graceMs).unref())
    await Promise.race([Promise.all(closed), deadline])
    clearInterval(sweep)
    for (const l of all) {
      l.http.closeAllConnections()
      l.tls?.destroyAll()
    }
  }

  /**
   * An upgrade replaced this process: stop accepting on this process's copy
   * of each listening socket only (the supervisor keeps the socket open and
   * the new generation accepts on it); HTTP/2 sessions get GOAWAY, so their
   * clients open new connections (to the new generation) for new streams.
   */
  stopAccepting (): Detached {
    const all = [...this.open.values()]
    this.open.clear()
    // Not http.Server#close: in Node 20 it also closes idle keep-alive
    // connections at once, racing clients that are reusing them.
    for (const l of all) NetServer.prototype.close.call(l.server)
    for (const l of all) l.tls?.h2?.goAway()
    return {
      h2Sessions: () => all.reduce((n, l) => n + (l.tls?.h2?.sessionCount ?? 0), 0),
      cutAll: () => {
        for (const l of all) {
          l.http.closeAllConnections()
          l.tls?.destroyAll()
        }
      }
    }
  }

  private tableOf (key: string): ListenerTable {
    return this.tables.find(t => t.key === key) ?? PLAIN_HTTP
  }

  private create (t: ListenerTable): Listener {
    const kind = kindOf(t)
    if (t.tls === undefined) {
      const http = this.make.http(t.redirect !== undefined)
      return { kind, server: http, http }
    }
    const http = this.make.http(false)
    // It gets its connections from the TLS server and never listens, but
    // Node starts its per-connection header-timeout checks on 'listening'.
    http.emit('listening')
    const tls = new TlsFront(t.tls, this.ticketKey, http, t.http2 ? this.make.h2() : undefined, this.make.handshakeTimeout(), this.make.onHandshakeError)
    return { kind, server: tls.server, http, tls }
  }
}
