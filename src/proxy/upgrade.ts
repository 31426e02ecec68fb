import { request, type ClientRequest, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ProxyConfig } from '../config/types.js'
import { log } from '../log.js'
import type { Metrics } from '../metrics/registry.js'
import { Outcome } from '../metrics/traffic.js'
import type { Pool } from '../upstream/pool.js'
import type { Upstream } from '../upstream/upstream.js'
import { classify, countsAsFailure, failureStatus, REASONS, retriable, type UpstreamErrorKind } from './errors.js'
import type { RequestHead } from './headers.js'
import { FrameBoundary, GOING_AWAY } from './ws-frames.js'

/**
 * WebSocket upgrades (G7). The upgrade request goes out with the same header
 * rules as any request (hop-by-hop headers dropped but Upgrade/Connection,
 * X-Forwarded-* set); a refused, timed-out or reset attempt before the
 * upstream answered is retried on another instance (G4: a GET that carried no
 * bytes past its head). Once switched, the two sockets are piped and live and
 * die together; the tunnel counts as in flight on its upstream until then,
 * and its client socket is registered there so a drain can close it at
 * drainTimeout.
 */
export class UpgradeTunnel {
  constructor (private readonly metrics: Metrics, public config: ProxyConfig) {}

  /** `target`: the normalized request target (normalize-path.ts) the upstream receives; `revision`: the revision a pinned route sends to (0: the pool's own choice, see Pool.choose). */
  forward (pool: Pool, req: IncomingMessage, head: RequestHead, target: string, socket: Duplex, bytes: Buffer, revision = 0): void {
    if (req.method !== 'GET' || !/^websocket$/i.test(req.headers.upgrade ?? '')) {
      refuse(socket, 400, 'only WebSocket upgrades are proxied')
      return
    }
    // A body on an upgrade request has no place to go (what follows the head
    // belongs to the new protocol): refuse rather than guess.
    if (head.hasBody) {
      refuse(socket, 400, 'an upgrade request must not carry a body')
      return
    }
    const upstream = pool.choose(req.rawHeaders, revision)
    if (upstream === undefined) {
      refuse(socket, 503, `no instance of pool ${pool.name} is available`)
      return
    }
    new UpgradeExchange(this, pool, req, target, fieldList(head.fields), socket as Socket, bytes).start(upstream)
  }

  upstreamError (pool: Pool, upstream: Upstream, kind: UpstreamErrorKind): void {
    this.metrics.upstreamErrors.labels(pool.name, kind).inc()
    upstream.traffic.attemptError()
  }

  retried (pool: Pool, upstream: Upstream): void {
    this.metrics.retries.labels(pool.name).inc()
    upstream.traffic.retry()
  }
}

class UpgradeExchange {
  private upstream: Upstream | undefined
  private upstreamReq: ClientRequest | undefined
  private connectTimer: NodeJS.Timeout | undefined
  private attempts = 0
  private readonly tried: Upstream[] = []
  /** The current attempt's connection is open: its request went out. */
  private sent = false
  private switched = false
  /** The upstream answered without switching (see onResponse). */
  private answered = false
  private done = false
  private readonly started = performance.now()

  constructor (
    private readonly tunnel: UpgradeTunnel,
    private readonly pool: Pool,
    private readonly req: IncomingMessage,
    private readonly target: string,
    private readonly headers: string[],
    private readonly socket: Socket,
    private readonly head: Buffer
  ) {
    socket.once('close', () => this.end())
  }

  start (upstream: Upstream): void {
    this.upstream = upstream
    this.sent = false
    upstream.inflight++
    upstream.upgrades.add(this)
    const t = this.tunnel.config.timeouts
    const r = request({
      host: upstream.host,
      port: upstream.port,
      method: 'GET',
      path: this.target,
      headers: this.headers,
      agent: false,
      setHost: false
    })
    this.upstreamReq = r
    r.once('socket', (s: Socket) => {
      this.connectTimer = setTimeout(() => r.destroy(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })), t.connect)
      s.once('connect', () => {
        this.sent = true
        clearTimeout(this.connectTimer)
        // The upstream must answer the upgrade within the upstream timeout.
        this.connectTimer = setTimeout(() => r.destroy(Object.assign(new Error('no answer to the upgrade'), { code: 'UND_ERR_HEADERS_TIMEOUT' })), t.upstream)
      })
    })
    r.once('upgrade', this.onUpgrade)
    r.once('response', this.onResponse)
    r.on('error', this.onError)
    r.end()
  }

  private readonly onUpgrade = (res: IncomingMessage, up: Socket, upHead: Buffer): void => {
    clearTimeout(this.connectTimer)
    if (this.done) { up.destroy(); return }
    this.switched = true
    const client = this.socket
    let head = 'HTTP/1.1 101 Switching Protocols\r\n'
    for (let i = 0; i < res.rawHeaders.length; i += 2) head += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`
    client.write(head + '\r\n')
    if (upHead.length > 0) client.write(upHead)
    if (this.head.length > 0) up.write(this.head)
    client.setNoDelay(true)
    up.setNoDelay(true)
    client.setTimeout(0)
    up.on('error', () => client.destroy())
    client.on('error', () => up.destroy())
    up.once('close', () => { if (!this.goingAway) client.destroy() })
    client.once('close', () => up.destroy())
    this.up = up
    // Server-to-client bytes go through a frame counter (see goAway); the
    // other way is a plain pipe.
    up.on('data', (chunk: Buffer) => {
      if (this.goingAway) { this.forwardUntilBoundary(chunk); return }
      this.frames.feed(chunk)
      if (!client.write(chunk)) up.pause()
    })
    up.once('end', () => { if (!this.goingAway) client.end() })
    client.on('drain', () => up.resume())
    client.pipe(up)
    this.upstream?.observe(101, (performance.now() - this.started) / 1000)
  }

  /**
   * The drain timed out with this tunnel still open (G7): end it the way a
   * server going away would, with a 1001 close frame between two frames,
   * rather than cutting the client's connection.
   */
  goAway (): void {
    if (!this.switched || this.up === undefined || this.done) { this.socket.destroy(); return }
    this.goingAway = true
    setTimeout(() => this.socket.destroy(), 2_000).unref()
    if (this.frames.atBoundary) this.sayGoodbye()
    else this.up.resume()
  }

  private forwardUntilBoundary (chunk: Buffer): void {
    const end = this.frames.feed(chunk, true)
    if (end > 0) this.socket.write(chunk.subarray(0, end))
    if (this.frames.atBoundary) this.sayGoodbye()
  }

  private sayGoodbye (): void {
    const up = this.up as Socket
    up.removeAllListeners('data')
    this.socket.unpipe(up)
    up.destroy()
    this.socket.end(GOING_AWAY)
  }

  private up: Socket | undefined
  private goingAway = false
  private readonly frames = new FrameBoundary()

  /** The upstream answered without switching: pass its answer on and close. */
  private readonly onResponse = (res: IncomingMessage): void => {
    clearTimeout(this.connectTimer)
    this.answered = true
    let head = `HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? ''}\r\n`
    for (let i = 0; i < res.rawHeaders.length; i += 2) {
      const name = res.rawHeaders[i].toLowerCase()
      // The body is read decoded and delimited by the close.
      if (name === 'connection' || name === 'transfer-encoding' || name === 'keep-alive' || name === 'upgrade') continue
      head += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`
    }
    this.socket.write(head + 'Connection: close\r\n\r\n')
    this.upstream?.observe(res.statusCode ?? 502, (performance.now() - this.started) / 1000)
    res.pipe(this.socket)
    res.on('error', () => this.socket.destroy())
  }

  private readonly onError = (err: Error & { code?: string }): void => {
    clearTimeout(this.connectTimer)
    // Once the upstream's answer is on its way, a failure can only cut it.
    if (this.done || this.switched || this.answered) { this.socket.destroy(); return }
    const kind = classify(err)
    const upstream = this.upstream as Upstream
    this.tunnel.upstreamError(this.pool, upstream, kind)
    if (countsAsFailure(kind)) this.pool.recordFailure(upstream)
    if (this.attempts < this.tunnel.config.retries && retriable(kind, this.sent, 'GET', false)) {
      this.tried.push(upstream)
      const next = this.pool.pick(upstream, this.tried)
      if (next !== undefined) {
        this.attempts++
        this.tunnel.retried(this.pool, upstream)
        this.releaseUpstream()
        this.start(next)
        return
      }
    }
    log('debug', 'upgrade failed', { pool: this.pool.name, upstream: upstream.address, error: err.message })
    const status = failureStatus(kind)
    upstream.observe(status, (performance.now() - this.started) / 1000, status === 502 ? Outcome.UpstreamFailed : Outcome.Baton5xx)
    refuse(this.socket, status, status === 504 ? 'the upstream did not answer in time' : `the upstream failed (${kind})`)
  }

  private releaseUpstream (): void {
    const u = this.upstream
    if (u === undefined) return
    this.upstream = undefined
    u.upgrades.delete(this)
    u.release()
  }

  /** The client side closed: everything for this tunnel ends. */
  private end (): void {
    if (this.done) return
    this.done = true
    clearTimeout(this.connectTimer)
    if (!this.switched) this.upstreamReq?.destroy()
    this.releaseUpstream()
  }
}

/** Header fields as requestHead writes them (`Name: value` lines) to the flat list node:http takes. */
function fieldList (fields: string): string[] {
  const out: string[] = []
  let pos = 0
  while (pos < fields.length) {
    const eol = fields.indexOf('\r\n', pos)
    const colon = fields.indexOf(':', pos)
    out.push(fields.slice(pos, colon), fields.slice(colon + 2, eol))
    pos = eol + 2
  }
  return out
}

/** Answers on a raw socket that has not been upgraded yet, then closes it. */
export function refuse (socket: Duplex, status: number, message: string): void {
  if (socket.destroyed || !socket.writable) return
  const body = `baton: ${message}\n`
  socket.end(`HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
}
