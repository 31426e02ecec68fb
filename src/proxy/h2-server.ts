import {
  constants, createServer, type Http2Server, type Http2ServerRequest, type Http2ServerResponse, type ServerOptions,
  type ServerHttp2Session, type ServerHttp2Stream
} from 'node:http2'
import type { OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import { DEFAULTS } from '../config/defaults.js'
import type { ProxyConfig } from '../config/types.js'
import { log } from '../log.js'

declare module 'node:http2' {
  interface Http2ServerResponse {
    // Node 20's compatibility response takes a flat [name, value, ...] list
    // as node:http's does (lib/internal/http2/compat.js); its typings name only the map.
    writeHead (statusCode: number, headers: OutgoingHttpHeaders | string[]): this
  }
}

export type H2Handler = (req: Http2ServerRequest, res: Http2ServerResponse) => void

/** Header fields a request may carry besides its pseudo-headers, as for HTTP/1.1 (server.ts MAX_HEADERS); more get 431. */
export const H2_MAX_HEADERS = 100

/**
 * After the first GOAWAY (which lets every stream in, RFC 9113 §6.8), the
 * client has this long to stop opening streams before the second names the
 * last one taken: streams already on the wire are served, not refused.
 */
const GOAWAY_GRACE_MS = 1_000
const MAX_STREAM_ID = 2 ** 31 - 1

/**
 * nghttp2's own budget of streams a client may reset before they are
 * answered (its defaults: a burst of 1,000, then 33 a second). Past it
 * nghttp2 sends GOAWAY and reads no more frames — but Node keeps the
 * connection open and goes on decrypting whatever the client sends, so
 * baton closes the connection itself when the same budget runs out.
 */
const RESET_BURST = 1_000
const RESETS_PER_S = 33

/** What baton keeps per HTTP/2 connection. */
interface SessionState {
  /** Streams open: an idle session (none open) is closed after `timeouts.idle`. */
  open: number
  /** Resets left in the budget, and when it was last refilled. */
  resets: number
  refilled: number
  /** The budget ran out: the session is being destroyed. */
  condemned: boolean
}

/**
 * Node 20's bounds on what one HTTP/2 client may cost (README "HTTP/2"):
 * streams at once and header list size as advertised settings; invalid
 * frames, refused streams, unanswered PINGs and SETTINGS in flight as
 * session limits (past them Node ends the session); nghttp2 itself ends a
 * session that resets streams faster than it allows (CVE-2023-44487).
 */
function options (config: ProxyConfig): ServerOptions {
  return {
    settings: {
      maxConcurrentStreams: DEFAULTS.tls.maxConcurrentStreams,
      maxHeaderListSize: config.maxHeaderSize,
      enablePush: false
    },
    // Pairs Node accepts before it resets the stream; 431 above H2_MAX_HEADERS is baton's own answer.
    maxHeaderListPairs: H2_MAX_HEADERS + 28,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    maxOutstandingPings: 10,
    maxSettings: 32,
    maxSessionMemory: 10
  }
}

/**
 * The HTTP/2 side of a TLS listener: a node:http2 server that never listens
 * itself — the TLS listener hands it each connection that chose `h2` by
 * ALPN — whose streams go through the request path by node:http2's
 * compatibility request and response. It knows its sessions, so that a stop
 * (or drain) can send each a GOAWAY and let its open streams finish.
 */
export class H2Front {
  readonly server: Http2Server
  private readonly sessions = new Map<ServerHttp2Session, SessionState>()
  private goingAway = false

  constructor (private config: ProxyConfig, onRequest: H2Handler, onCheckContinue: H2Handler, private readonly onFlood: () => void) {
    this.server = createServer(options(config))
    this.server.on('request', onRequest)
    this.server.on('checkContinue', onCheckContinue)
    this.server.on('session', this.onSession)
    this.server.on('stream', this.onStream)
    // Errors of one session or stream end that session or stream; nothing else.
    this.server.on('sessionError', (err: Error) => log('debug', 'http2 session error', { error: err.message }))
  }

  /** Hands over a TLS connection whose client chose h2. */
  accept (socket: Socket): void {
    this.server.emit('connection', socket)
  }

  /** New sessions take the new limits and timeouts. */
  configure (config: ProxyConfig): void {
    this.config = config
    this.server.updateSettings(options(config).settings ?? {})
  }

  get sessionCount (): number { return this.sessions.size }

  /**
   * Every session is told to go away (a stop, a drain): first a GOAWAY that
   * still admits every stream, then one naming the last stream taken; open
   * streams finish, then each session closes. New sessions go at once.
   */
  goAway (): void {
    this.goingAway = true
    for (const s of this.sessions.keys()) this.sendGoAway(s)
  }

  /** What is still open when the grace is over. */
  destroyAll (): void {
    for (const s of this.sessions.keys()) s.destroy()
  }

  private sendGoAway (session: ServerHttp2Session): void {
    if (session.closed || session.destroyed) return
    session.goaway(constants.NGHTTP2_NO_ERROR, MAX_STREAM_ID)
    setTimeout(() => { if (!session.closed && !session.destroyed) session.close() }, GOAWAY_GRACE_MS).unref()
  }

  private readonly onSession = (session: ServerHttp2Session): void => {
    const state: SessionState = { open: 0, resets: RESET_BURST, refilled: performance.now(), condemned: false }
    this.sessions.set(session, state)
    session.on('error', (err: Error) => log('debug', 'http2 session error', { error: err.message }))
    session.once('close', () => this.sessions.delete(session))
    if (this.goingAway) { this.sendGoAway(session); return }
    session.setTimeout(this.config.timeouts.idle, () => {
      // Quiet for `idle` with nothing in flight: a keep-alive connection's end (GOAWAY, no cut).
      if (state.open === 0) session.close()
    })
  }

  private readonly onStream = (stream: ServerHttp2Stream): void => {
    const session = stream.session as ServerHttp2Session
    const state = this.sessions.get(session)
    if (state === undefined) return
    state.open++
    stream.once('close', () => { state.open-- })
    // Reset by the client before baton answered: what a rapid-reset attack does, a stream at a time.
    stream.once('aborted', () => { if (!stream.headersSent) this.clientReset(session, state) })
  }

  private clientReset (session: ServerHttp2Session, state: SessionState): void {
    const now = performance.now()
    state.resets = Math.min(RESET_BURST, state.resets + (now - state.refilled) * RESETS_PER_S / 1000) - 1
    state.refilled = now
    if (state.resets >= 0 || state.condemned) return
    state.condemned = true
    log('debug', 'http2 connection closed: its client resets streams faster than they can be answered', { remote: session.socket?.remoteAddress })
    this.onFlood()
    // Not from inside this event: it comes from nghttp2 reading frames, and
    // destroying the session under it fails an assertion in Node 20 (a crash).
    setImmediate(() => session.destroy())
  }
}
