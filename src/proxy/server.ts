import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { TLSSocket } from 'node:tls'
import type { ProxyConfig } from '../config/types.js'
import type { ListenerTable } from '../controller/data-plane-link.js'
import { log } from '../log.js'
import type { Metrics } from '../metrics/registry.js'
import type { Pool } from '../upstream/pool.js'
import { Outcome } from '../metrics/traffic.js'
import { AccessLog } from './access-log.js'
import { Exchange, type ClientRequest, type ClientResponse, type ForwardContext } from './forward.js'
import { h2RequestHead } from './h2-head.js'
import { H2Front } from './h2-server.js'
import { answerClientError, inRequestTarget, MAX_HEADERS, plain, refuseRequest } from './h1-refusals.js'
import { requestHead, type RequestHead } from './headers.js'
import { inProgress, setLatest } from './in-progress.js'
import { Listeners, type ListenSpec } from './listeners.js'
import { BadPath, normalizeTarget } from './normalize-path.js'
import { httpsLocation } from './redirect.js'
import { normaliseHost, type Router } from './router.js'
import { refuse, UpgradeTunnel } from './upgrade.js'

export type { ListenSpec }

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

/** What a request needs to find its way; replaced whole on reload. */
export interface RoutingTable {
  router: Router
  pools: ReadonlyMap<string, Pool>
}

/** Marks a client socket whose later pipelined requests must not be forwarded. */
const TAINTED = Symbol('baton.tainted')
/** Marks a client socket whose parse error is being answered. */
const ANSWERING = Symbol('baton.answering')
type Tainted = Socket & { [TAINTED]?: boolean, [ANSWERING]?: boolean }

/** A request the request path takes: HTTP/1.x from node:http, HTTP/2 from node:http2's compatibility layer. */
type AnyRequest = ClientRequest & { readonly url: string }

/**
 * The client side: listeners (Listeners: plain, TLS with HTTP/2, redirect),
 * their timeouts and the request path, which is a few named steps: refuse
 * what is malformed, normalize the path, route, pick, forward.
 */
export class ProxyServer {
  table: RoutingTable
  private readonly ctx: ForwardContext
  private readonly listeners: Listeners
  private readonly tunnel: UpgradeTunnel
  private config: ProxyConfig
  private closing = false
  /** An upgrade replaced this process: answer what comes with Connection: close. */
  private draining = false
  /** Client connections that are plain HTTP/1.1 (TLS ones too; upgraded ones leave), for shutdown. */
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
    this.listeners = new Listeners({
      http: redirect => this.createServer(redirect),
      h2: () => new H2Front(this.config, this.onH2Request, this.onH2CheckContinue, () => this.metrics.clientErrors.labels('h2_reset_flood').inc()),
      handshakeTimeout: () => this.config.timeouts.headers,
      onHandshakeError: this.onHandshakeError
    })
  }

  /** The table's listeners (their kinds, TLS certificates) and session ticket key; open TLS listeners swap theirs in place. */
  setListeners (tables: ListenerTable[], ticketKey: string | undefined): void {
    this.listeners.setTables(tables, ticketKey)
  }

  /** Opens the listeners asked for and not open yet (or open as another kind); closes the others. */
  async listen (specs: ListenSpec[]): Promise<Array<{ host: string, port: number }>> {
    return await this.listeners.listen(specs)
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
    for (const s of this.listeners.httpServers()) this.applyTimeouts(s)
    for (const h2 of this.listeners.h2Fronts()) h2.configure(config)
  }

  /** Every reload (SIGHUP, POST /v1/reload) reopens the access log file: logrotate may have moved it. */
  reopenAccessLog (): void {
    this.ctx.accessLog?.reopen()
  }

  get addresses (): Array<{ host: string, port: number }> {
    return this.listeners.addresses
  }

  /**
   * Stops accepting; keep-alive connections close as their requests finish,
   * HTTP/2 connections get GOAWAY and their open streams finish; the access
   * log is written out.
   */
  async close (graceMs: number): Promise<void> {
    this.closing = true
    await this.listeners.close(graceMs, servers => {
      for (const s of servers) s.closeIdleConnections()
      // Node's closeIdleConnections spares connections that never sent a request.
      for (const socket of this.sockets) if (inProgress(socket) === undefined) socket.destroy()
    })
    // Requests cut just now log as their responses close, a tick later.
    await new Promise(resolve => setImmediate(resolve))
    await this.ctx.accessLog?.close()
  }

  /**
   * An upgrade of baton replaced this process (README "Upgrading baton"):
   * stop accepting on this process's copy of the listeners only (the socket
   * stays open in the supervisor and the new generation accepts on it);
   * every later HTTP/1.1 response carries `Connection: close`, HTTP/2
   * sessions get GOAWAY; after a grace period idle keep-alive connections
   * are closed. Resolves once no client connection is left, or at
   * `timeoutMs` (then what is left is cut). Upgraded connections
   * (WebSockets) are the data plane's to end.
   */
  async drain (timeoutMs: number): Promise<void> {
    this.draining = true
    const detached = this.listeners.stopAccepting()
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
    while ((this.sockets.size > 0 || detached.h2Sessions() > 0) && Date.now() < until) {
      await sleep(DRAIN_SWEEP_MS)
      const t = Date.now()
      for (const [socket, since] of idleSince) {
        if (socket.destroyed) { idleSince.delete(socket); continue }
        if (inProgress(socket) === undefined && t - since >= DRAIN_IDLE_GRACE_MS) socket.destroy()
      }
    }
    detached.cutAll()
  }

  /** An HTTP/1.1 server on the request path (plain listeners, and behind TLS ones), or one that redirects to https. */
  private createServer (redirect: boolean): Server {
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
    }, redirect ? this.onRedirect : this.onRequest)
    // Enough to see that a request has too many (see refuseRequest), no more.
    server.maxHeadersCount = MAX_HEADERS + 1
    server.on('connection', this.onConnection)
    // A redirect listener has no upgrade listener: Node hands an upgrade request to onRedirect like any.
    if (!redirect) server.on('upgrade', this.onUpgrade)
    // Without a listener Node drops CONNECT silently; say why instead.
    server.on('connect', this.onConnect)
    server.on('clientError', this.onClientError)
    server.on('checkContinue', redirect ? this.onRedirect : this.onCheckContinue)
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
    const head = requestHead(req.rawHeaders, socket.remoteAddress, socket instanceof TLSSocket ? 'https' : 'http', false)
    const refusal = refuseRequest(req, head)
    if (refusal !== undefined) {
      this.badRequest(req, res, head, refusal[0], refusal[1])
      return
    }
    this.forward(req as AnyRequest, res, head, expectsContinue)
  }

  /**
   * An HTTP/2 stream (node:http2's compatibility request and response) is
   * served a turn of the event loop later: frames read together are parsed
   * together, so a stream its client reset at once (a rapid-reset attack)
   * is closed by then and costs no upstream request.
   */
  private readonly onH2Request = (req: Http2ServerRequest, res: Http2ServerResponse): void => {
    setImmediate(this.serveH2, req, res, false)
  }

  private readonly onH2CheckContinue = (req: Http2ServerRequest, res: Http2ServerResponse): void => {
    setImmediate(this.serveH2, req, res, true)
  }

  /** The same path as HTTP/1.x from the head on. */
  private readonly serveH2 = (req: Http2ServerRequest, res: Http2ServerResponse, expectsContinue: boolean): void => {
    if (req.stream.closed) {
      this.ctx.accessLog?.request(req, req.authority, 499, 0, 0, 0, undefined, undefined, 0, 'client closed')
      return
    }
    const head = h2RequestHead(req.rawHeaders, req.socket.remoteAddress, req.stream.endAfterHeaders)
    const message = head.malformed !== undefined
      ? `the request has ${head.malformed}`
      : req.method === 'CONNECT' || req.url.charCodeAt(0) !== 47 /* / */ ? 'the request target must be a path (baton is no forward proxy)' : undefined
    if (message !== undefined) {
      const status = head.malformed === undefined ? 400 : head.refuseStatus
      this.metrics.clientErrors.labels(String(status)).inc()
      this.answer(req, res, head, status, message, undefined, message)
      return
    }
    this.forward(req, res, head, expectsContinue)
  }

  /** Normalize the path, route, pick an instance, forward (HTTP/1.x and HTTP/2 alike). */
  private forward (req: AnyRequest, res: ClientResponse & { writeContinue: () => void }, head: RequestHead, expectsContinue: boolean): void {
    // Routed, and forwarded, as normalized; logged as sent.
    const target = normalizeTarget(req.url)
    if (target instanceof BadPath) {
      this.metrics.clientErrors.labels('400').inc()
      this.answer(req, res, head, 400, target.reason, undefined, target.reason)
      return
    }
    const route = this.table.router.match(head.host, target)
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
    new Exchange(this.ctx, pool, upstream, req, res, head, target).start()
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

  /** A redirect listener's every request: 308 to the same host and target over https (README "TLS"). */
  private readonly onRedirect = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket as Tainted
    setLatest(socket, res)
    if (socket[TAINTED] === true) { res.shouldKeepAlive = false; return }
    if (this.closing) res.shouldKeepAlive = false
    const head = requestHead(req.rawHeaders, socket.remoteAddress, 'http', false)
    const host = normaliseHost(head.host)
    const refusal = refuseRequest(req, head) ?? (host === '' ? [400, 'a redirect to https needs a host name in the Host header'] : undefined)
    const port = this.listeners.httpsPort()
    if (refusal !== undefined || port === undefined) {
      this.badRequest(req, res, head, refusal?.[0] ?? 400, refusal?.[1] ?? 'no TLS listener to redirect to')
      return
    }
    res.writeHead(308, { location: httpsLocation(host, port, req.url as string), 'content-length': 0 })
    res.end()
    this.ctx.accessLog?.request(req, head.host, 308, 0, 0, 0, undefined, undefined, 0, 'redirect to https')
  }

  /** A request the parser let through but baton refuses: a 4xx (501, 505), and the connection closes (what follows it cannot be trusted). */
  private badRequest (req: IncomingMessage, res: ServerResponse, head: RequestHead | undefined, status: number, message: string): void {
    this.metrics.clientErrors.labels(String(status)).inc()
    ;(req.socket as Tainted)[TAINTED] = true
    res.shouldKeepAlive = false
    this.answer(req as AnyRequest, res, head, status, message, undefined, message)
  }

  /** baton's own answer to a request (no upstream chose), logged with why. */
  private answer (req: AnyRequest, res: ClientResponse, head: RequestHead | undefined, status: number, message: string, pool: string | undefined, error: string): void {
    const body = `baton: ${message}\n`
    plain(res, status, body)
    this.ctx.accessLog?.request(req, head?.host, status, 0, Buffer.byteLength(body), 0, pool, undefined, 0, error)
  }

  private readonly onConnection = (socket: Socket): void => {
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
  }

  /** A TLS handshake that failed (an old protocol version, no shared cipher, a client that left): counted, logged at debug. */
  private readonly onHandshakeError = (err: NodeJS.ErrnoException): void => {
    this.metrics.clientErrors.labels('tls').inc()
    log('debug', 'TLS handshake failed', { code: err.code, error: err.message })
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, bytes: Buffer): void => {
    // An upgraded connection is drained with its upstream (G7), not swept as idle.
    this.sockets.delete(socket as Socket)
    socket.on('error', () => undefined)
    if ((socket as Tainted)[TAINTED] === true) { socket.end(); return }
    if (this.closing) { refuse(socket, 503, 'shutting down'); return }
    const head = requestHead(req.rawHeaders, req.socket.remoteAddress, socket instanceof TLSSocket ? 'https' : 'http', true)
    const refusal = refuseRequest(req, head)
    if (refusal !== undefined) {
      this.metrics.clientErrors.labels(String(refusal[0])).inc()
      refuse(socket, refusal[0], refusal[1])
      return
    }
    const target = normalizeTarget(req.url as string)
    if (target instanceof BadPath) {
      this.metrics.clientErrors.labels('400').inc()
      refuse(socket, 400, target.reason)
      return
    }
    const route = this.table.router.match(head.host, target)
    const pool = route === undefined ? undefined : this.table.pools.get(route.pool)
    if (route === undefined || pool === undefined) { refuse(socket, 404, 'no route for this host and path'); return }
    this.tunnel.forward(pool, req, head, target, socket, bytes, route.revision)
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

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}
