import type { OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { Metrics } from '../metrics/registry.js'
import { Outcome } from '../metrics/traffic.js'
import type { Connection, ResponseHandler } from '../upstream/http1/connection.js'
import { RequestBody } from '../upstream/http1/connection.js'
import { recyclable, recycle } from '../upstream/http1/chunks.js'
import { protocolError, type UpstreamError } from '../upstream/http1/errors.js'
import type { ResponseHead } from '../upstream/http1/head.js'
import type { ConnectionWaiter } from '../upstream/http1/pool.js'
import type { Pool } from '../upstream/pool.js'
import type { Upstream } from '../upstream/upstream.js'
import type { AccessLog } from './access-log.js'
import { countsAsFailure, failureStatus, retriable, type UpstreamErrorKind } from './errors.js'
import { forwardedTrailers, responseFields, type RequestHead } from './headers.js'
import { responseClosed } from './in-progress.js'

export interface ForwardContext {
  metrics: Metrics
  retries: number
  /** Longest pause allowed while a client sends its request body. */
  bodyTimeout: number
  /** Where each finished request is logged, when an access log is configured. */
  accessLog: AccessLog | undefined
}

/**
 * What the request path uses of a client request: node:http's
 * IncomingMessage has it, and so does node:http2's compatibility request,
 * so HTTP/2 streams go through the same Exchange.
 */
export interface ClientRequest {
  readonly method?: string
  readonly url?: string
  readonly rawHeaders: string[]
  readonly httpVersionMajor: number
  readonly httpVersionMinor: number
  readonly complete: boolean
  readonly socket: Socket
  on: (event: 'readable', listener: () => void) => unknown
  once: (event: 'end', listener: () => void) => unknown
  off: (event: 'readable' | 'timeout', listener: () => void) => unknown
  read: () => unknown
  resume: () => unknown
  setTimeout: (ms: number, onTimeout?: () => void) => unknown
}

/** Everything a paused request holds, as one Buffer (null when empty). */
function readAll (req: ClientRequest): Buffer | null {
  let body: Buffer | null = null
  for (let c = req.read() as Buffer | null; c !== null; c = req.read() as Buffer | null) body = body === null ? c : Buffer.concat([body, c])
  return body
}

/**
 * What the request path uses of a client response: node:http's
 * ServerResponse has it, and so has node:http2's compatibility response
 * (which has no `destroyed` and no `shouldKeepAlive`: a stream has no
 * connection of its own to keep or close).
 */
export interface ClientResponse {
  writeHead (status: number, headers: OutgoingHttpHeaders | string[]): unknown
  write (chunk: Buffer, written?: () => void): boolean
  end (): unknown
  end (body: string): unknown
  destroy (err?: Error): unknown
  on (event: 'close', listener: () => void): unknown
  once (event: 'drain' | 'finish' | 'close', listener: () => void): unknown
  setHeader (name: string, value: string): unknown
  addTrailers (fields: Record<string, string>): void
  writeEarlyHints (hints: Record<string, string | string[]>): void
  readonly headersSent: boolean
  readonly destroyed?: boolean
  readonly writableFinished: boolean
  readonly statusCode: number
  shouldKeepAlive?: boolean
}

const PLAIN = 'text/plain; charset=utf-8'
/** Why an HTTP/2 stream is reset mid-response (node:http2 sends INTERNAL_ERROR for a reset with an error). */
const CUT = new Error('the upstream response was cut')

/**
 * One client request on its way through an upstream: it takes a connection
 * from the upstream's pool, sends the head in one write, streams the body
 * both ways with backpressure, and hears the response as callbacks (no
 * promise, stream or event emitter per request). An attempt that fails
 * before any response byte is retried on another instance when G4 allows
 * (see retriable).
 */
export class Exchange implements ResponseHandler, ConnectionWaiter {
  private upstream: Upstream
  /** Upstreams this request failed on, made only when it is retried. */
  private tried: Upstream[] | undefined
  private attempts = 0
  /** The connection of the current attempt, once it has one. */
  private conn: Connection | undefined
  /** The current attempt wrote its request (head, and the body so far). */
  private sent = false
  /** The request body is read ('readable'); false before the first attempt that sends it, and after an early answer. */
  private reading = false
  /** The head waited a turn of the event loop for the rest of the body (see onReadable). */
  private waitedForBody = false
  /** The upstream connection's buffer is full: the body waits for onUpstreamDrain. */
  private bodyBlocked = false
  /** A 'drain' listener is on the client response. */
  private awaitingDrain = false
  /** Large body chunks the client socket has not written yet, oldest first (see chunks.ts). */
  private lent: Buffer[] | undefined
  /** The write callback of lent chunks, made for the first one. */
  private chunkWritten: (() => void) | undefined
  private headersSent = false
  private done = false
  private status = 0
  private bytesIn = 0
  private bytesOut = 0
  private readonly started = performance.now()
  private readonly method: string

  constructor (
    private readonly ctx: ForwardContext,
    private readonly pool: Pool,
    upstream: Upstream,
    private readonly req: ClientRequest,
    private readonly res: ClientResponse,
    private readonly head: RequestHead,
    /** The request target as it goes upstream: normalized (normalize-path.ts); `req.url` stays as sent, for the log. */
    private readonly target: string
  ) {
    this.upstream = upstream
    this.method = req.method as string
    res.on('close', this.onClientClose)
    if (head.hasBody) {
      // A slow upload must not hold an upstream request open for ever.
      // On the request, not the socket: Node's server destroys a socket whose
      // timeout nobody on the request, response or server listens to.
      req.setTimeout(ctx.bodyTimeout, this.onBodyTimeout)
    }
  }

  start (): void {
    this.upstream.inflight++
    this.attempts++
    this.sent = false
    this.upstream.connections.acquire(this)
  }

  onConnection (conn: Connection): void {
    if (this.done) { this.upstream.connections.giveBack(conn); return }
    this.conn = conn
    if (!this.head.hasBody) {
      this.sent = true
      conn.request(this, this.requestLine(''), RequestBody.None, this.method === 'HEAD', null)
      return
    }
    // The head waits for the body's first bytes and goes out with them (one
    // write): a body whose very start is malformed never reaches the upstream.
    if (!this.reading) {
      this.reading = true
      this.req.on('readable', this.onReadable)
      this.req.once('end', this.onBodyEnd)
    } else {
      this.onReadable()
    }
  }

  /** The request line and head for the upstream; `framing` is the Content-Length or Transfer-Encoding line a re-framed body needs. */
  private requestLine (framing: string): string {
    return `${this.method} ${this.target} HTTP/1.1\r\n${this.head.fields}${framing}\r\n`
  }

  /** Moves body bytes from the client to the upstream while it takes them. */
  private readonly onReadable = (): void => {
    const conn = this.conn
    if (conn === undefined || this.bodyBlocked) return
    if (!this.sent) {
      if (!this.req.complete && !this.waitedForBody) {
        // Node reads a request's head and the body bytes that came with it
        // in separate ticks: one turn of the loop later, a body sent whole is
        // all here.
        this.waitedForBody = true
        setImmediate(this.onReadable)
        return
      }
      this.sent = true
      if (this.req.complete) {
        // The whole body is here: it goes on with a Content-Length, as nginx
        // sends it, whatever framing the client used.
        const body = readAll(this.req)
        const length = body === null ? 0 : body.length
        this.bytesIn += length
        conn.request(this, this.requestLine(this.head.chunked ? `content-length: ${length}\r\n` : ''), RequestBody.Length, false, body)
        conn.endBody()
        return
      }
      const first = this.req.read() as Buffer | null
      if (first !== null) this.bytesIn += first.length
      const chunked = this.head.chunked
      conn.request(this, this.requestLine(chunked ? 'transfer-encoding: chunked\r\n' : ''), chunked ? RequestBody.Chunked : RequestBody.Length, false, first)
    }
    for (let chunk = this.req.read() as Buffer | null; chunk !== null; chunk = this.req.read() as Buffer | null) {
      this.bytesIn += chunk.length
      if (!conn.writeBody(chunk)) { this.bodyBlocked = true; return }
    }
  }

  onInformational (head: ResponseHead): void {
    // 103 Early Hints, to HTTP/1.1 clients only (RFC 9110 §15.2); only its Link fields can be passed on.
    if (head.status !== 103 || this.req.httpVersionMinor !== 1) return
    const link: string[] = []
    for (let i = 0; i < head.headers.length; i += 2) if (head.headers[i].toLowerCase() === 'link') link.push(head.headers[i + 1])
    if (link.length === 0) return
    try { this.res.writeEarlyHints({ link }) } catch { /* a Link Node refuses is not passed on */ }
  }

  onResponseHead (head: ResponseHead): void {
    this.status = head.status
    try {
      this.res.writeHead(head.status, responseFields(head.headers, head.connectionTokens))
    } catch {
      // A field name or value Node will not write: nothing reached the client yet.
      this.conn?.abort()
      this.onUpstreamError(protocolError('has a header field that is not valid HTTP'))
      return
    }
    this.headersSent = true
  }

  onResponseData (chunk: Buffer): boolean {
    this.bytesOut += chunk.length
    let ok: boolean
    if (recyclable(chunk)) {
      // Node calls write callbacks in order, once the bytes are written (or dropped with the socket).
      (this.lent ??= []).push(chunk)
      ok = this.res.write(chunk, this.chunkWritten ??= () => this.onChunkWritten())
    } else {
      ok = this.res.write(chunk)
    }
    if (!ok && !this.awaitingDrain) {
      this.awaitingDrain = true
      this.res.once('drain', this.onClientDrain)
    }
    return ok
  }

  onResponseEnd (trailers: readonly string[] | undefined): void {
    this.conn = undefined
    this.stopReading()
    if (trailers !== undefined && this.head.trailers) {
      const fields = forwardedTrailers(trailers)
      if (fields !== undefined) this.res.addTrailers(fields)
    }
    this.res.end()
    if (this.status >= 500) this.pool.recordFailure(this.upstream)
    else this.pool.recordSuccess(this.upstream)
    this.finish(this.status, Outcome.App, undefined)
  }

  onUpstreamError (err: UpstreamError): void {
    this.conn = undefined
    if (this.done) return
    const kind = err.kind
    this.ctx.metrics.upstreamErrors.labels(this.pool.name, kind).inc()
    this.upstream.traffic.attemptError()
    if (countsAsFailure(kind)) this.pool.recordFailure(this.upstream)
    if (this.headersSent) {
      // Part of the response is out: the only honest signal left is to cut it.
      this.cut()
      this.finish(this.status, Outcome.UpstreamFailed, kind)
      return
    }
    if (this.attempts <= this.ctx.retries && !this.res.destroyed && retriable(kind, this.sent, this.method, this.head.hasBody)) {
      const tried = this.tried ??= []
      tried.push(this.upstream)
      const next = this.pool.pick(this.upstream, tried)
      if (next !== undefined) {
        this.ctx.metrics.retries.labels(this.pool.name).inc()
        this.upstream.traffic.retry()
        this.upstream.release()
        this.upstream = next
        this.start()
        return
      }
    }
    this.reply(failureStatus(kind), kind)
  }

  onUpstreamDrain (): void {
    if (!this.bodyBlocked) return
    this.bodyBlocked = false
    this.onReadable()
  }

  /** The upstream answered before it had the whole body (or the exchange ended): the rest is read and dropped. */
  private stopReading (): void {
    if (!this.reading) return
    this.reading = false
    this.req.off('readable', this.onReadable)
    if (!this.req.complete) this.req.resume()
  }

  private reply (status: number, kind: UpstreamErrorKind): void {
    const body = status === 504
      ? 'baton: the upstream did not answer in time\n'
      : status === 503
        ? kind === 'no_fd' ? 'baton: out of file descriptors; try again shortly\n' : 'baton: every connection to the upstream is busy; try again shortly\n'
        : `baton: the upstream failed (${kind})\n`
    if (!this.res.headersSent && !this.res.destroyed) {
      if (status === 503) this.res.setHeader('retry-after', '1')
      this.res.writeHead(status, { 'content-type': PLAIN, 'content-length': Buffer.byteLength(body) })
      this.res.end(body)
      this.bytesOut = Buffer.byteLength(body)
    }
    this.finish(status, status === 502 ? Outcome.UpstreamFailed : Outcome.Baton5xx, kind)
  }

  private finish (status: number, outcome: Outcome, error: string | undefined): void {
    if (this.done) return
    this.done = true
    const upstream = this.upstream
    upstream.release()
    const ms = performance.now() - this.started
    upstream.observe(status, ms / 1000, outcome)
    this.ctx.accessLog?.request(this.req, this.head.host, status, this.bytesIn, this.bytesOut, ms, this.pool.name, upstream, this.attempts, error)
  }

  /**
   * Ends a response that cannot be finished: the HTTP/1.1 connection is
   * closed; an HTTP/2 stream is reset with INTERNAL_ERROR (a reset without
   * an error code would be NO_ERROR, which a client may take for a whole
   * response).
   */
  private cut (): void {
    if (this.req.httpVersionMajor === 2) this.res.destroy(CUT)
    else this.res.destroy()
  }

  /** The oldest large chunk lent to the client socket is written: its buffer goes back for reuse. */
  private onChunkWritten (): void {
    const chunk = this.lent?.shift()
    if (chunk !== undefined) recycle(chunk)
  }

  private readonly onClientDrain = (): void => {
    this.awaitingDrain = false
    this.conn?.resume()
  }

  private readonly onBodyEnd = (): void => {
    this.req.setTimeout(0)
    this.req.off('timeout', this.onBodyTimeout)
    const conn = this.conn
    if (conn === undefined || !this.reading) return
    // A chunked body can end without a byte: the head goes out with its end.
    if (!this.sent) this.onReadable()
    conn.endBody()
  }

  /** The client stopped sending its body for bodyTimeout: 408, and the upstream request is dropped. */
  private readonly onBodyTimeout = (): void => {
    this.req.off('timeout', this.onBodyTimeout)
    if (this.done || this.req.complete) return
    this.res.shouldKeepAlive = false
    if (!this.res.headersSent) {
      const body = 'baton: the request body stopped arriving\n'
      const headers: OutgoingHttpHeaders = { 'content-type': PLAIN, 'content-length': Buffer.byteLength(body) }
      // HTTP/2 forbids Connection: there the stream ends and the connection serves on.
      if (this.req.httpVersionMajor !== 2) headers.connection = 'close'
      this.res.writeHead(408, headers)
      this.res.end(body)
    } else {
      this.cut()
    }
    this.finish(408, Outcome.ClientAbort, 'client body timeout')
    this.abortUpstream()
  }

  /**
   * The client's response closed before this exchange ended: the client left,
   * or baton answered it itself (a 4xx for a malformed body). Either way the
   * upstream work stops: the connection is closed (mid-message it cannot be
   * reused), or the wait for one is given up.
   */
  private readonly onClientClose = (): void => {
    responseClosed(this.req.socket, this.res)
    if (this.done) return
    this.finish(this.res.writableFinished ? this.res.statusCode : 499, Outcome.ClientAbort, 'client closed')
    this.abortUpstream()
  }

  private abortUpstream (): void {
    const conn = this.conn
    this.conn = undefined
    if (conn === undefined) this.upstream.connections.cancel(this)
    // Nothing was written on it yet: it is as good as idle.
    else if (!this.sent) this.upstream.connections.giveBack(conn)
    else conn.abort()
  }
}
