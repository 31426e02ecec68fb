import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ListenConfig, ProxyConfig } from '../config/types.js'
import { log } from '../log.js'
import type { Metrics } from '../metrics/registry.js'
import type { Pool } from '../pool/pool.js'
import { Exchange, type ForwardContext } from './forward.js'
import { requestHead } from './headers.js'
import { Router } from './router.js'
import { refuse, UpgradeTunnel } from './upgrade.js'

/** What a request needs to find its way; replaced whole on reload. */
export interface RoutingTable {
  router: Router
  pools: ReadonlyMap<string, Pool>
}

const PLAIN = 'text/plain; charset=utf-8'

/**
 * The client side: listeners, their timeouts and the request path, which is a
 * few named steps: refuse what is malformed, route, pick, forward.
 */
export class ProxyServer {
  table: RoutingTable
  private readonly ctx: ForwardContext
  private readonly servers = new Map<string, Server>()
  private readonly tunnel: UpgradeTunnel
  private config: ProxyConfig
  private closing = false

  constructor (table: RoutingTable, config: ProxyConfig, private readonly metrics: Metrics) {
    this.table = table
    this.config = config
    this.ctx = { metrics, retries: config.retries }
    this.tunnel = new UpgradeTunnel(metrics)
  }

  /** Opens the listeners that are configured and not open yet; closes the others. */
  async listen (listeners: ListenConfig[]): Promise<Array<{ host: string, port: number }>> {
    const wanted = new Map(listeners.map(l => [`${l.host}:${l.port}`, l]))
    for (const [key, server] of this.servers) {
      if (!wanted.has(key)) {
        this.servers.delete(key)
        server.close()
        server.closeIdleConnections()
        log('info', 'listener closed', { listener: key })
      }
    }
    const opened: Array<{ host: string, port: number }> = []
    for (const [key, l] of wanted) {
      if (this.servers.has(key)) continue
      const server = this.createServer()
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(l.port, l.host, () => { server.off('error', reject); resolve() })
      })
      const addr = server.address() as AddressInfo
      this.servers.set(key, server)
      opened.push({ host: l.host, port: addr.port })
      log('info', 'listening', { host: l.host, port: addr.port })
    }
    return opened
  }

  /** Timeouts and retries from a reloaded config apply to new requests at once. */
  configure (config: ProxyConfig): void {
    this.config = config
    this.ctx.retries = config.retries
    for (const s of this.servers.values()) this.applyTimeouts(s)
  }

  get addresses (): Array<{ host: string, port: number }> {
    return [...this.servers.values()].map(s => {
      const a = s.address() as AddressInfo
      return { host: a.address, port: a.port }
    })
  }

  /** Stops accepting; keep-alive connections close as their requests finish. */
  async close (graceMs: number): Promise<void> {
    this.closing = true
    const all = [...this.servers.values()]
    this.servers.clear()
    const closed = all.map(s => new Promise<void>(resolve => s.close(() => resolve())))
    const sweep = setInterval(() => { for (const s of all) s.closeIdleConnections() }, 50)
    for (const s of all) s.closeIdleConnections()
    const deadline = new Promise<void>(resolve => setTimeout(resolve, graceMs).unref())
    await Promise.race([Promise.all(closed), deadline])
    clearInterval(sweep)
    for (const s of all) s.closeAllConnections()
  }

  private createServer (): Server {
    const t = this.config.timeouts
    const server = createServer({
      maxHeaderSize: this.config.maxHeaderSize,
      // Check often, so a slowloris client is cut close to `headers`.
      connectionsCheckingInterval: Math.min(1_000, Math.max(100, t.headers / 4)),
      headersTimeout: t.headers,
      // A long request or a slow upload is bounded by the upstream timeouts,
      // not by one global request deadline.
      requestTimeout: 0,
      keepAliveTimeout: t.idle
    }, this.onRequest)
    server.on('upgrade', this.onUpgrade)
    server.on('clientError', this.onClientError)
    return server
  }

  private applyTimeouts (server: Server): void {
    const t = this.config.timeouts
    server.headersTimeout = t.headers
    server.keepAliveTimeout = t.idle
  }

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.closing) res.shouldKeepAlive = false
    const url = req.url as string
    if (url.charCodeAt(0) !== 47 /* / */) {
      plain(res, 400, 'baton: the request target must be a path\n')
      return
    }
    const head = requestHead(req.rawHeaders, req.socket.remoteAddress, 'http', false)
    const poolName = this.table.router.route(head.host, url)
    const pool = poolName === undefined ? undefined : this.table.pools.get(poolName)
    if (pool === undefined) {
      plain(res, 404, 'baton: no route for this host and path\n')
      return
    }
    const upstream = pool.pick()
    if (upstream === undefined) {
      res.setHeader('retry-after', '1')
      plain(res, 503, `baton: no instance of pool ${pool.name} is available\n`)
      this.metrics.requests.labels(pool.name, '', '503').inc()
      return
    }
    new Exchange(this.ctx, pool, upstream, req, res, head).start()
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => undefined)
    if (this.closing) { refuse(socket, 503, 'shutting down'); return }
    const host = req.headers.host
    const poolName = this.table.router.route(host, req.url ?? '/')
    const pool = poolName === undefined ? undefined : this.table.pools.get(poolName)
    if (pool === undefined) { refuse(socket, 404, 'no route for this host and path'); return }
    this.tunnel.forward(pool, req, socket, head)
  }

  /** Malformed or oversized requests and slow heads: a clear 4xx, then close. */
  private readonly onClientError = (err: Error & { code?: string }, socket: Socket | Duplex): void => {
    const code = err.code ?? ''
    if (code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return }
    const status = code === 'HPE_HEADER_OVERFLOW'
      ? 431
      : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT'
        ? 408
        : 400
    this.metrics.clientErrors.labels(String(status)).inc()
    log('debug', 'client error', { code, status, reason: err.message })
    const reason = status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'
    const body = `baton: ${reason.toLowerCase()}\n`
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${PLAIN}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
  }
}

function plain (res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': PLAIN, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
