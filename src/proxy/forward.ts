import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { Metrics } from '../metrics/registry.js'
import type { Pool } from '../upstream/pool.js'
import type { Upstream } from '../upstream/upstream.js'
import { Outcome } from '../metrics/traffic.js'
import { classify, IDEMPOTENT, type UpstreamErrorKind } from './errors.js'
import { responseHeaders, type RequestHead } from './headers.js'

export interface ForwardContext {
  metrics: Metrics
  retries: number
  /** Longest pause allowed while a client sends its request body. */
  bodyTimeout: number
}

/**
 * One client request on its way through an upstream, and the undici handler
 * for it (the callback API, so that no promise or stream is made per request).
 * An attempt that fails before any response byte is retried on another
 * instance when G4 allows: any method if the request was never written, an
 * idempotent one without a body otherwise.
 */
export class Exchange implements Dispatcher.DispatchHandler {
  private upstream: Upstream
  /** Upstreams this request failed on, made only when it is retried. */
  private tried: Upstream[] | undefined
  private attempts = 0
  private connected = false
  private headersSent = false
  private done = false
  private status = 0
  private abortUpstream: ((err?: Error) => void) | undefined
  private resume: (() => void) | undefined
  private readonly started = performance.now()
  private readonly opts: Dispatcher.DispatchOptions

  constructor (
    private readonly ctx: ForwardContext,
    private readonly pool: Pool,
    upstream: Upstream,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    head: RequestHead
  ) {
    this.upstream = upstream
    this.opts = {
      path: req.url as string,
      method: req.method as Dispatcher.HttpMethod,
      headers: head.headers,
      body: head.hasBody ? req : null
    }
    res.on('close', this.onClientClose)
    if (head.hasBody) {
      // A slow upload must not hold an upstream request open for ever.
      // On the request, not the socket: Node's server destroys a socket whose
      // timeout nobody on the request, response or server listens to.
      req.setTimeout(ctx.bodyTimeout, this.onBodyTimeout)
      req.once('end', this.onBodyEnd)
    }
  }

  start (): void {
    this.upstream.inflight++
    this.upstream.client.dispatch(this.opts, this)
  }

  onConnect (abort: (err?: Error) => void): void {
    this.abortUpstream = abort
    this.connected = true
    if (this.done) abort()
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true // 1xx informational: not forwarded
    this.status = statusCode
    this.resume = resume
    // Should Node refuse the upstream's head (it throws), undici aborts the
    // attempt and onError answers 502: nothing reached the client yet.
    this.res.writeHead(statusCode, responseHeaders(rawHeaders))
    this.headersSent = true
    return true
  }

  onData (chunk: Buffer): boolean {
    const ok = this.res.write(chunk)
    if (!ok) this.res.once('drain', this.onDrain)
    return ok
  }

  onComplete (): void {
    this.res.end()
    if (this.status >= 500) this.pool.recordFailure(this.upstream)
    else this.pool.recordSuccess(this.upstream)
    this.finish(this.status)
  }

  onError (err: Error): void {
    if (this.done) return
    const kind = classify(err)
    if (kind === 'aborted' && this.res.destroyed) {
      // The client left (finish() has run then), or its connection was closed
      // after a 4xx for a malformed body: either way this exchange is over.
      this.finish(499, Outcome.ClientAbort)
      return
    }
    this.ctx.metrics.upstreamErrors.labels(this.pool.name, kind).inc()
    this.upstream.traffic.attemptError()
    if (kind === 'refused' || kind === 'connect_timeout' || kind === 'reset') this.pool.recordFailure(this.upstream)
    if (this.headersSent) {
      // Part of the response is out: the only honest signal left is to cut it.
      this.res.destroy(err)
      this.finish(this.status, Outcome.UpstreamFailed)
      return
    }
    if (this.retriable(kind)) {
      const tried = this.tried ??= []
      tried.push(this.upstream)
      const next = this.pool.pick(this.upstream, tried)
      if (next !== undefined) {
        this.ctx.metrics.retries.labels(this.pool.name).inc()
        this.upstream.traffic.retry()
        this.attempts++
        this.upstream.release()
        this.upstream = next
        this.connected = false
        this.abortUpstream = undefined
        this.start()
        return
      }
    }
    const status = kind === 'timeout' ? 504 : kind === 'no_fd' ? 503 : 502
    this.reply(status, kind)
  }

  private retriable (kind: UpstreamErrorKind): boolean {
    if (this.attempts >= this.ctx.retries || this.res.destroyed) return false
    if (!this.connected) return kind !== 'timeout' && kind !== 'body_timeout' && kind !== 'aborted' && kind !== 'no_fd'
    return kind === 'reset' && this.opts.body === null && IDEMPOTENT.has(this.opts.method)
  }

  private reply (status: number, kind: string): void {
    const body = status === 504
      ? 'baton: the upstream did not answer in time\n'
      : status === 503
        ? 'baton: out of file descriptors; try again shortly\n'
        : `baton: the upstream failed (${kind})\n`
    if (!this.res.headersSent && !this.res.destroyed) {
      if (status === 503) this.res.setHeader('retry-after', '1')
      this.res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) })
      this.res.end(body)
    }
    this.finish(status, status === 502 ? Outcome.UpstreamFailed : Outcome.Baton5xx)
  }

  private finish (status: number, outcome = Outcome.App): void {
    if (this.done) return
    this.done = true
    this.upstream.release()
    this.upstream.observe(status, (performance.now() - this.started) / 1000, outcome)
  }

  private readonly onDrain = (): void => { this.resume?.() }

  private readonly onBodyEnd = (): void => {
    this.req.socket.setTimeout(0)
    this.req.off('timeout', this.onBodyTimeout)
  }

  /** The client stopped sending its body for bodyTimeout: 408, and the upstream request is dropped. */
  private readonly onBodyTimeout = (): void => {
    this.onBodyEnd()
    if (this.done || this.req.complete) return
    this.res.shouldKeepAlive = false
    if (!this.res.headersSent) {
      const body = 'baton: the request body stopped arriving\n'
      this.res.writeHead(408, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' })
      this.res.end(body)
    } else {
      this.res.destroy()
    }
    this.finish(408, Outcome.ClientAbort)
    // After finish(): the upstream's abort error must not answer a second time.
    this.abortUpstream?.()
  }

  /**
   * The client's response closed before this exchange ended: the client left,
   * or baton answered it itself (a 4xx for a malformed body). Either way the
   * upstream work stops; if undici has not dispatched yet, onConnect aborts.
   */
  private readonly onClientClose = (): void => {
    if (this.done) return
    this.abortUpstream?.()
    this.finish(this.res.writableFinished ? this.res.statusCode : 499, Outcome.ClientAbort)
  }
}
