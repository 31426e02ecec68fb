import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { Server as NetServer, type AddressInfo, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ListenConfig, ProxyConfig } from '../config/types.js'
import { log } from '../log.js'
import type { Metrics } from '../metrics/registry.js'
import type { Pool } from '../upstream/pool.js'
import { Outcome } from '../metrics/traffic.js'
import { AccessLog } from './access-log.js'
import { REASONS } from './errors.js'
import { Exchange, type ForwardContext } from './forward.js'
import { requestHead, type RequestHead } from './headers.js'
import { inProgress, setLatest } from './in-progress.js'
import { Router } from './router.js'
import { refuse, UpgradeTunnel } from './upgrade.js'

/** What a request needs to find its way; replaced whole on reload. */
export interface RoutingTable {
  router: Router
  pools: ReadonlyMap<string, Pool>
}

const PLAIN = 'text/plain; charset=utf-8'

/**
 * Most header lines a request may carry (Envoy's default; Apache and HAProxy
 * allow about as many): more get 431. Node would otherwise keep the first
 * 2,000 and drop the rest without a word.
 */
const MAX_HEADERS = 100

/**
 * While an old generation drains (an upgrade of baton), a keep-alive
 * connection is closed once it has been idle this long: a client that sends
 * its next request at once gets its answer (with Connection: close) instead
 * of meeting a connection closed under it. HTTP/1.1 has no way to tell an
 * idle client to go elsewhere: one that waits exactly this long and then
 * sends may still meet the close, as with any server's idle timeout.
 */
const DRAIN_IDLE_GRACE_MS = 1_000
/** How often a drain looks for connections that went idle. */
const DRAIN_SWEEP_MS = 50

/** A listener to open: where, and the listening socket to accept on when another process bound it (the supervisor). */
export interface ListenSpec extends ListenConfig {
  /** A bound socket's handle (src/supervisor/listeners.ts); without it, host:port is bound here. */
  handle?: object
}

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
  /** An upgrade replaced this process: answer what comes with Connection: close. */
  private draining = false
  /** Client connections that are plain HTTP (upgraded ones leave), for shutdown. */
  private readonly sockets = new Set<Socket>()

  constructor (table: RoutingTable, config: ProxyConfig, private readonly metrics: Metrics) {
    this.table = table
    this.config = config
    this.ctx = {
      metrics,
      retries: config.retries,
      bodyTimeout: config.timeouts.body,
      accessLog: config.accessLog === undefined ? undefined : new AccessLog(config.accessLog)
    }
    this.tunnel = new UpgradeTunnel(metrics, config)
  }

  /**
   * Opens the listeners that are configured and not open yet; closes the
   * others. A listener given with a handle accepts on that socket (shared
   * with other processes); the key stays host:port as configured.
   */
  async listen (listeners: ListenSpec[]): Promise<Array<{ host: string, port: number }>> {
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
        const done = (): void => { server.off('error', reject); resolve() }
        if (l.handle !== undefined) server.listen(l.handle, done)
        else server.listen(l.port, l.host, done)
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

  /**
   * Timeouts and retries from a reloaded config apply to new requests at
   * once; the access log opens, moves or closes as the config now says.
   */
  configure (config: ProxyConfig): void {
    this.config = config
    this.ctx.retries = config.retries
    this.ctx.bodyTimeout = config.timeouts.body
    const current = this.ctx.accessLog
    if (current === undefined || current.path !== config.accessLog?.path) {
      this.ctx.accessLog = config.accessLog === undefined ? undefined : new AccessLog(config.accessLog)
      void current?.close()
    }
    this.tunnel.config = config
    for (const s of this.servers.values()) this.applyTimeouts(s)
  }

  /** Every reload (SIGHUP, POST /v1/reload) reopens the access log file: logrotate may have moved it. */
  reopenAccessLog (): void {
    this.ctx.accessLog?.reopen()
  }

  get addresses (): Array<{ host: string, port: number }> {
    return [...this.servers.values()].map(s => {
      const a = s.address() as AddressInfo
      return { host: a.address, port: a.port }
    })
  }

  /** Stops accepting; keep-alive connections close as their requests finish; the access log is written out. */
  async close (graceMs: number): Promise<void> {
    this.closing = true
    const all = [...this.servers.values()]
    this.servers.clear()
    const closed = all.map(s => new Promise<void>(resolve => s.close(() => resolve())))
    const sweepIdle = (): void => this.sweepIdle(all)
    const sweep = setInterval(sweepIdle, 50)
    sweepIdle()
    const deadline = new Promise<void>(resolve => setTimeout(resolve, graceMs).unref())
    await Promise.race([Promise.all(closed), deadline])
    clearInterval(sweep)
    for (const s of all) s.closeAllConnections()
    // Requests cut just now log as their responses close, a tick later.
    await new Promise(resolve => setImmediate(resolve))
    await this.ctx.accessLog?.close()
  }

  /**
   * An upgrade of baton replaced this process (README "Upgrading baton"):
   * stop accepting on this process's copy of the listeners only (the socket
   * stays open in the supervisor and the new generation accepts on it);
   * every later response carries `Connection: close`; after a grace period
   * idle keep-alive connections are closed. Resolves once no plain HTTP
   * connection is left, or at `timeoutMs` (then what is left is cut).
   * Upgraded connections (WebSockets) are the data plane's to end.
   */
  async drain (timeoutMs: number): Promise<void> {
    this.draining = true
    const all = [...this.servers.values()]
    this.servers.clear()
    // Not http.Server#close: in Node 20 it also closes idle keep-alive
    // connections at once, racing clients that are reusing them.
    for (const s of all) NetServer.prototype.close.call(s)
    // A connection is closed only once it has sat idle for the grace period:
    // idle now, or idle after the answer under way (which says
    // Connection: close when its head is not out yet, ending the connection).
    const idleSince = new Map<Socket, number>()
    const now = Date.now()
    for (const socket of this.sockets) {
      const res = inProgress(socket)
      if (res === undefined) idleSince.set(socket, now)
      else if (!res.headersSent) res.shouldKeepAlive = false
      else res.once('finish', () => idleSince.set(socket, Date.now()))
    }
    const until = now + timeoutMs
    while (this.sockets.size > 0 && Date.now() < until) {
      await sleep(DRAIN_SWEEP_MS)
      const t = Date.now()
      for (const [socket, since] of idleSince) {
        if (socket.destroyed) { idleSince.delete(socket); continue }
        if (inProgress(socket) === undefined && t - since >= DRAIN_IDLE_GRACE_MS) socket.destroy()
      }
    }
    for (const s of all) s.closeAllConnections()
  }

  /** Plain HTTP client connections open now (upgraded ones excluded). */
  get connections (): number { return this.sockets.size }

  private sweepIdle (servers: Server[]): void {
    for (const s of servers) s.closeIdleConnections()
    // Node's closeIdleConnections spares connections that never sent a request.
    for (const socket of this.sockets) if (inProgress(socket) === undefined) socket.destroy()
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
    // Enough to see that a request has too many (see refuseHead), no more.
    server.maxHeadersCount = MAX_HEADERS + 1
    server.on('connection', this.onConnection)
    server.on('upgrade', this.onUpgrade)
    // Without a listener Node drops CONNECT silently; say why instead.
    server.on('connect', this.onConnect)
    server.on('clientError', this.onClientError)
    server.on('checkContinue', this.onCheckContinue)
    server.on('checkExpectation', this.onCheckExpectation)
    return server
  }

  private applyTimeouts (server: Server): void {
    const t = this.config.timeouts
    server.headersTimeout = t.headers
    server.keepAliveTimeout = t.idle
  }

  /** `Expect: 100-continue` (see onCheckContinue) is answered only once the request is on its way. */
  private readonly onRequest = (req: IncomingMessage, res: ServerResponse, expectsContinue = false): void => {
    const socket = req.socket as Tainted
    setLatest(socket, res)
    // A request pipelined behind one refused as malformed is never forwarded:
    // the connection closes once the refusal is written.
    if (socket[TAINTED] === true) { res.shouldKeepAlive = false; return }
    if (this.closing || this.draining) res.shouldKeepAlive = false
    const head = requestHead(req.rawHeaders, socket.remoteAddress, 'http', false)
    const refusal = refuseRequest(req, head)
    if (refusal !== undefined) {
      this.badRequest(req, res, head, refusal[0], refusal[1])
      return
    }
    const route = this.table.router.match(head.host, req.url as string)
    const pool = route === undefined ? undefined : this.table.pools.get(route.pool)
    if (route === undefined || pool === undefined) {
      this.answer(req, res, head, 404, 'no route for this host and path', undefined, 'no route')
      return
    }
    const upstream = pool.choose(req.rawHeaders, route.revision)
    if (upstream === undefined) {
      res.setHeader('retry-after', '1')
      this.answer(req, res, head, 503, `no instance of pool ${pool.name} is available`, pool.name, 'no instance available')
      this.metrics.requests.labels(pool.name, '', '503').inc()
      pool.traffic.version('').record(503, 0, Outcome.Baton5xx)
      return
    }
    if (expectsContinue) res.writeContinue()
    new Exchange(this.ctx, pool, upstream, req, res, head).start()
  }

  /**
   * `Expect: 100-continue`: Node would send 100 before baton looks at the
   * request; baton sends it only to a request it forwards, so that a refused
   * or unroutable one gets its final answer instead (RFC 9110 §10.1.1).
   * Node closes the connection after a final answer sent without a 100: the
   * client may or may not send the body it announced.
   */
  private readonly onCheckContinue = (req: IncomingMessage, res: ServerResponse): void => {
    this.onRequest(req, res, true)
  }

  /** Any other expectation: 417, as Node would, but with a body that says why; the body it announced is not read. */
  private readonly onCheckExpectation = (req: IncomingMessage, res: ServerResponse): void => {
    setLatest(req.socket, res)
    this.badRequest(req, res, undefined, 417, 'the only expectation supported is 100-continue')
  }

  /** A request the parser let through but baton refuses: a 4xx (501, 505), and the connection closes (what follows it cannot be trusted). */
  private badRequest (req: IncomingMessage, res: ServerResponse, head: RequestHead | undefined, status: number, message: string): void {
    this.metrics.clientErrors.labels(String(status)).inc()
    ;(req.socket as Tainted)[TAINTED] = true
    res.shouldKeepAlive = false
    this.answer(req, res, head, status, message, undefined, message)
  }

  /** baton's own answer to a request (no upstream chose), logged with why. */
  private answer (req: IncomingMessage, res: ServerResponse, head: RequestHead | undefined, status: number, message: string, pool: string | undefined, error: string): void {
    const body = `baton: ${message}\n`
    plain(res, status, body)
    this.ctx.accessLog?.request(req, head?.host, status, 0, Buffer.byteLength(body), 0, pool, undefined, 0, error)
  }

  private readonly onConnection = (socket: Socket): void => {
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, bytes: Buffer): void => {
    // An upgraded connection is drained with its upstream (G7), not swept as idle.
    this.sockets.delete(socket as Socket)
    socket.on('error', () => undefined)
    if ((socket as Tainted)[TAINTED] === true) { socket.end(); return }
    if (this.closing) { refuse(socket, 503, 'shutting down'); return }
    const head = requestHead(req.rawHeaders, req.socket.remoteAddress, 'http', true)
    const refusal = refuseRequest(req, head)
    if (refusal !== undefined) {
      this.metrics.clientErrors.labels(String(refusal[0])).inc()
      refuse(socket, refusal[0], refusal[1])
      return
    }
    const route = this.table.router.match(head.host, req.url as string)
    const pool = route === undefined ? undefined : this.table.pools.get(route.pool)
    if (route === undefined || pool === undefined) { refuse(socket, 404, 'no route for this host and path'); return }
    this.tunnel.forward(pool, req, head, socket, bytes, route.revision)
  }

  private readonly onConnect = (_req: IncomingMessage, socket: Duplex): void => {
    socket.on('error', () => undefined)
    this.metrics.clientErrors.labels('400').inc()
    refuse(socket, 400, 'CONNECT is not supported: baton is no forward proxy')
  }

  /** Malformed or oversized requests and slow heads: a clear 4xx, then close. */
  private readonly onClientError = (err: Error & { code?: string, bytesParsed?: number, rawPacket?: Buffer }, socket: Socket | Duplex): void => {
    const code = err.code ?? ''
    // The client reset or ended the connection in the middle of a message:
    // it is gone (its request counts as a 499), nobody reads an answer.
    if (code === 'ECONNRESET' || code === 'HPE_INVALID_EOF_STATE' || !socket.writable) { socket.destroy(); return }
    const s = socket as Tainted
    // The parser stays failed and reports again on every later chunk.
    if (s[ANSWERING] === true) return
    s[ANSWERING] = true
    socket.pause()
    if (s[TAINTED] === true) {
      // What follows a request baton refused is never answered: the
      // connection closes once that refusal is written.
      if (inProgress(s) === undefined) s.end()
      return
    }
    s[TAINTED] = true
    const status = code === 'HPE_HEADER_OVERFLOW'
      ? (inRequestTarget(err.rawPacket, err.bytesParsed) ? 414 : 431)
      : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT'
        ? 408
        : 400
    this.metrics.clientErrors.labels(String(status)).inc()
    log('debug', 'client error', { code, status, reason: err.message })
    answerClientError(socket as Socket, status)
  }
}

/**
 * Whether a head overflow happened in the request-target (414, RFC 9112
 * §3) rather than in a header field (431). Node's parser reports the
 * overflow where the span that crossed the limit ends: the space after the
 * target, with no line ended before it in the chunk; a header value ends
 * at CR instead.
 */
function inRequestTarget (chunk: Buffer | undefined, at: number | undefined): boolean {
  if (chunk === undefined || at === undefined || at >= chunk.length) return false
  return chunk[at] === 32 && chunk.subarray(0, at).indexOf(10) === -1
}

/**
 * What the parser lets through but baton refuses, before routing: a version
 * other than HTTP/1.x (Node takes `GET /` as HTTP/0.9 and `HTTP/2.0` as a
 * version), more than MAX_HEADERS header lines, a target that is not a path,
 * the Host and Transfer-Encoding faults requestHead found, an HTTP/1.1
 * request without Host, and an HTTP/1.0 one with Transfer-Encoding. Returns
 * [status, message] or undefined.
 */
function refuseRequest (req: IncomingMessage, head: RequestHead): [number, string] | undefined {
  if (req.httpVersionMajor !== 1) {
    // 505 to a major version above 1, as nginx; 400 to HTTP/0.9, whose clients read no status line.
    return req.httpVersionMajor > 1
      ? [505, 'this is an HTTP/1.x listener; HTTP/2 is not supported here']
      : [400, 'the request line needs an HTTP/1.x version']
  }
  if (req.rawHeaders.length > MAX_HEADERS * 2) return [431, `the request has more than ${MAX_HEADERS} header fields`]
  // Absolute-form, asterisk-form and CONNECT: baton is no forward proxy.
  if ((req.url as string).charCodeAt(0) !== 47 /* / */) return [400, 'the request target must be a path']
  if (head.malformed !== undefined) return [head.refuseStatus, `the request has ${head.malformed}`]
  if (head.host === undefined && req.httpVersionMinor === 1) return [400, 'an HTTP/1.1 request needs a Host header']
  // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
  if (head.chunked && req.httpVersionMinor === 0) return [400, 'an HTTP/1.0 request must not carry Transfer-Encoding']
  return undefined
}

/**
 * Answers a request the parser refused, then closes the connection. Answers
 * still owed to requests pipelined before it go out first, so that no client
 * takes the 4xx for the answer to an earlier request.
 */
function answerClientError (socket: Socket, status: number): void {
  if (socket.destroyed) return
  const reason = REASONS[status]
  const body = `baton: ${reason.toLowerCase()}\n`
  const current = inProgress(socket)
  if (current === undefined) {
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

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

function plain (res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, REASONS[status], { 'content-type': PLAIN, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
