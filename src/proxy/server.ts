import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ListenConfig, ProxyConfig } from '../config/types.js'
import { log } from '../log.js'
import type { Metrics } from '../metrics/registry.js'
import type { Pool } from '../pool/pool.js'
import { Outcome } from '../metrics/traffic.js'
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

/** Marks a client socket whose later pipelined requests must not be forwarded. */
const TAINTED = Symbol('baton.tainted')
/** Marks a client socket whose parse error is being answered. */
const ANSWERING = Symbol('baton.answering')
type Tainted = Socket & { [TAINTED]?: boolean, [ANSWERING]?: boolean }

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
  /** Client connections that are plain HTTP (upgraded ones leave), for shutdown. */
  private readonly sockets = new Set<Socket>()

  constructor (table: RoutingTable, config: ProxyConfig, private readonly metrics: Metrics) {
    this.table = table
    this.config = config
    this.ctx = { metrics, retries: config.retries, bodyTimeout: config.timeouts.body }
    this.tunnel = new UpgradeTunnel(metrics, config)
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
      // Accept errors (EMFILE, ...) are logged; libuv keeps the listener going.
      server.on('error', (err: NodeJS.ErrnoException) => log('error', 'listener error', { listener: key, code: err.code, error: err.message }))
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
    this.ctx.bodyTimeout = config.timeouts.body
    this.tunnel.config = config
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
    const sweepIdle = (): void => {
      for (const s of all) s.closeIdleConnections()
      // Node's closeIdleConnections spares connections that never sent a
      // request; between requests a connection has no response attached.
      for (const socket of this.sockets) {
        if ((socket as Socket & { _httpMessage?: unknown })._httpMessage == null) socket.destroy()
      }
    }
    const sweep = setInterval(sweepIdle, 50)
    sweepIdle()
    const deadline = new Promise<void>(resolve => setTimeout(resolve, graceMs).unref())
    await Promise.race([Promise.all(closed), deadline])
    clearInterval(sweep)
    for (const s of all) s.closeAllConnections()
  }

  private createServer (): Server {
    const t = this.config.timeouts
    const server = createServer({
      maxHeaderSize: this.config.maxHeaderSize,
      // Checked in onRequest, so that what is pipelined behind is dropped too.
      requireHostHeader: false,
      // Check often, so a slowloris client is cut close to `headers`.
      connectionsCheckingInterval: Math.min(1_000, Math.max(100, t.headers / 4)),
      headersTimeout: t.headers,
      // A long request or a slow upload is bounded by the upstream timeouts,
      // not by one global request deadline.
      requestTimeout: 0,
      keepAliveTimeout: t.idle
    }, this.onRequest)
    server.on('connection', this.onConnection)
    server.on('upgrade', this.onUpgrade)
    // Without a listener Node drops CONNECT silently; say why instead.
    server.on('connect', this.onConnect)
    server.on('clientError', this.onClientError)
    return server
  }

  private applyTimeouts (server: Server): void {
    const t = this.config.timeouts
    server.headersTimeout = t.headers
    server.keepAliveTimeout = t.idle
  }

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    // A request pipelined behind one refused as malformed is never forwarded:
    // the connection closes once the refusal is written.
    if ((req.socket as Tainted)[TAINTED] === true) { res.shouldKeepAlive = false; return }
    if (this.closing) res.shouldKeepAlive = false
    const url = req.url as string
    if (url.charCodeAt(0) !== 47 /* / */) {
      // Absolute-form, asterisk-form and CONNECT: baton is no forward proxy.
      this.badRequest(res, 'baton: the request target must be a path\n')
      return
    }
    const head = requestHead(req.rawHeaders, req.socket.remoteAddress, 'http', false)
    if (head.malformed !== undefined) {
      this.badRequest(res, `baton: the request has ${head.malformed}\n`)
      return
    }
    if (head.host === undefined && req.httpVersionMinor === 1) {
      this.badRequest(res, 'baton: an HTTP/1.1 request needs a Host header\n')
      return
    }
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
      pool.traffic.version('').record(503, 0, Outcome.Baton5xx)
      return
    }
    new Exchange(this.ctx, pool, upstream, req, res, head).start()
  }

  /** A malformed request the parser let through: 400, and the connection closes (what follows it cannot be trusted). */
  private badRequest (res: ServerResponse, body: string): void {
    this.metrics.clientErrors.labels('400').inc()
    const socket = res.socket as Tainted | null
    if (socket !== null) socket[TAINTED] = true
    res.shouldKeepAlive = false
    plain(res, 400, body)
  }

  private readonly onConnection = (socket: Socket): void => {
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // An upgraded connection is drained with its upstream (G7), not swept as idle.
    this.sockets.delete(socket as Socket)
    socket.on('error', () => undefined)
    if ((socket as Tainted)[TAINTED] === true) { socket.end(); return }
    if (this.closing) { refuse(socket, 503, 'shutting down'); return }
    const url = req.url as string
    if (url.charCodeAt(0) !== 47 /* / */) { refuse(socket, 400, 'the request target must be a path'); return }
    let hosts = 0
    for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i].length === 4 && req.rawHeaders[i].toLowerCase() === 'host') hosts++
    if (hosts > 1 || (hosts === 0 && req.httpVersionMinor === 1)) { refuse(socket, 400, 'an HTTP/1.1 request needs exactly one Host header'); return }
    const host = req.headers.host
    const poolName = this.table.router.route(host, url)
    const pool = poolName === undefined ? undefined : this.table.pools.get(poolName)
    if (pool === undefined) { refuse(socket, 404, 'no route for this host and path'); return }
    this.tunnel.forward(pool, req, socket, head)
  }

  private readonly onConnect = (_req: IncomingMessage, socket: Duplex): void => {
    socket.on('error', () => undefined)
    this.metrics.clientErrors.labels('400').inc()
    refuse(socket, 400, 'CONNECT is not supported: baton is no forward proxy')
  }

  /** Malformed or oversized requests and slow heads: a clear 4xx, then close. */
  private readonly onClientError = (err: Error & { code?: string }, socket: Socket | Duplex): void => {
    const code = err.code ?? ''
    if (code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return }
    // The parser stays failed and reports again on every later chunk.
    if ((socket as Tainted)[ANSWERING] === true) return
    ;(socket as Tainted)[ANSWERING] = true
    ;(socket as Tainted)[TAINTED] = true
    socket.pause()
    const status = code === 'HPE_HEADER_OVERFLOW'
      ? 431
      : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT'
        ? 408
        : 400
    this.metrics.clientErrors.labels(String(status)).inc()
    log('debug', 'client error', { code, status, reason: err.message })
    answerClientError(socket as Socket, status)
  }
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }

/**
 * Answers a request the parser refused, then closes the connection. Answers
 * still owed to requests pipelined before it go out first, so that no client
 * takes the 4xx for the answer to an earlier request.
 */
function answerClientError (socket: Socket, status: number): void {
  if (socket.destroyed) return
  const reason = REASONS[status]
  const body = `baton: ${reason.toLowerCase()}\n`
  const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
  if (current == null) {
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${PLAIN}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
    return
  }
  if (!current.req.complete) {
    // The fault is in the body of the request being answered: it gets the
    // 4xx, unless its upstream's answer has begun (then only a cut is honest).
    if (current.headersSent) { socket.destroy(); return }
    current.shouldKeepAlive = false
    plain(current, status, body)
    return
  }
  current.once('finish', () => answerClientError(socket, status))
}

function plain (res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': PLAIN, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
