import { connect, type Socket } from 'node:net'
import { ChunkedDecoder } from './chunked.js'
import { copyOut } from './chunks.js'
import { protocolError, socketErrorKind, UpstreamError } from './errors.js'
import { MAX_HEAD_BYTES, ResponseHead } from './head.js'
import { RequestBody, type ConnectionOwner, type ResponseHandler } from './types.js'

export { RequestBody, type ConnectionOwner, type ResponseHandler }

const enum Phase { Connecting, Idle, Head, Body, Closed }
const enum Framing { None, Length, Chunked, Close }

/**
 * Every upstream socket reads into this one buffer: a read is consumed
 * (parsed, and body bytes copied out) before the next read of any socket
 * starts, so one buffer serves them all and no memory is allocated per read.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024)
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1')
const BARE_LF_END = Buffer.from('\n\n', 'latin1')
const LAST_CHUNK = '0\r\n\r\n'

/**
 * One HTTP/1.1 connection to an upstream, carrying one request at a time:
 * the head goes out in one write, the response is parsed as it arrives and
 * handed to the exchange that sent the request. A response that breaks
 * HTTP/1.1 framing fails its exchange and closes the connection; a clean
 * one returns the connection to its pool the moment its last byte is read.
 */
export class Connection {
  readonly socket: Socket
  /** The exchange this connection is (being) opened for, until it connects. */
  reservedFor: unknown
  /** Responses completed on this connection: more than 0 means a request on it reuses it. */
  served = 0
  /** While idle: until when (epoch ms) it may carry another request. */
  idleUntil = 0
  private handler: ResponseHandler | null = null
  private phase = Phase.Connecting
  private framing = Framing.None
  private remaining = 0
  private requestBody = RequestBody.None
  private requestDone = true
  private headRequest = false
  private paused = false
  /** The final head was passed to the handler (a chunked one waits for its first read to check out). */
  private announced = true
  private readonly head = new ResponseHead()
  private partial: Buffer | undefined
  private chunked: ChunkedDecoder | undefined
  private connectTimer: NodeJS.Timeout | undefined

  constructor (private readonly owner: ConnectionOwner, reservedFor: unknown) {
    this.reservedFor = reservedFor
    this.socket = connect({
      host: owner.host,
      port: owner.port,
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: this.onRead }
    })
    this.socket.setTimeout(owner.upstreamTimeout)
    this.connectTimer = setTimeout(this.onConnectTimeout, owner.connectTimeout)
    this.socket.once('connect', this.onConnect)
    this.socket.on('error', this.onError)
    this.socket.on('end', this.onEnd)
    this.socket.on('close', this.onClose)
    this.socket.on('timeout', this.onTimeout)
    this.socket.on('drain', this.onDrain)
  }

  /** True when a request on it reuses a connection that served one before. */
  get reused (): boolean { return this.served > 0 }

  /**
   * Sends a request head, with the body's first bytes when given, in one
   * write; the rest of the body follows with writeBody and endBody unless
   * `body` is None.
   */
  request (handler: ResponseHandler, head: string, body: RequestBody, isHead: boolean, first: Buffer | null): void {
    this.handler = handler
    this.phase = Phase.Head
    this.requestBody = body
    this.requestDone = body === RequestBody.None
    this.headRequest = isHead
    this.paused = false
    if (first === null) {
      this.socket.write(head, 'latin1')
      return
    }
    this.socket.cork()
    this.socket.write(head, 'latin1')
    this.writeBody(first)
    this.socket.uncork()
  }

  /** Writes request body bytes; false when the socket's buffer is full (wait for onUpstreamDrain). */
  writeBody (chunk: Buffer): boolean {
    if (this.phase === Phase.Closed) return true
    if (this.requestBody !== RequestBody.Chunked) return this.socket.write(chunk)
    if (chunk.length === 0) return true
    this.socket.cork()
    this.socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1')
    this.socket.write(chunk)
    const ok = this.socket.write('\r\n', 'latin1')
    this.socket.uncork()
    return ok
  }

  /** The request body is complete. */
  endBody (): void {
    if (this.phase === Phase.Closed || this.requestDone) return
    this.requestDone = true
    if (this.requestBody === RequestBody.Chunked) this.socket.write(LAST_CHUNK, 'latin1')
  }

  /** Reading paused for backpressure may go on. */
  resume (): void {
    if (!this.paused || this.phase === Phase.Closed) return
    this.paused = false
    this.socket.resume()
  }

  /**
   * The exchange gives up on this request (its client left). A response
   * whose rest is known and small is read to its end and dropped, as nginx's
   * buffering does, so the connection carries the next request; any other
   * is closed (mid-message a connection cannot be trusted).
   */
  abort (): void {
    if (this.phase === Phase.Body && this.framing === Framing.Length && this.remaining <= DRAIN_LIMIT && this.requestDone && this.announced) {
      this.handler = DRAINING
      this.resume()
      return
    }
    this.handler = null
    this.close()
  }

  /** Closes the connection for good. */
  close (): void {
    if (this.phase === Phase.Closed) return
    this.phase = Phase.Closed
    this.handler = null
    clearTimeout(this.connectTimer)
    this.socket.destroy()
    this.owner.onClosed(this)
  }

  private readonly onConnect = (): void => {
    clearTimeout(this.connectTimer)
    this.connectTimer = undefined
    if (this.phase !== Phase.Connecting) return
    this.phase = Phase.Idle
    this.owner.onConnected(this)
  }

  private readonly onConnectTimeout = (): void => {
    this.connectFailed(new UpstreamError('connect_timeout', `connecting to ${this.owner.host}:${this.owner.port} took longer than ${this.owner.connectTimeout} ms`))
  }

  private connectFailed (err: UpstreamError): void {
    if (this.phase !== Phase.Connecting) return
    this.close()
    this.owner.onConnectFailed(this, err)
  }

  private readonly onRead = (nread: number, buf: Buffer): boolean => {
    if (this.handler === null) {
      // Bytes on an idle connection: whatever they are, the next response
      // read from it could not be trusted.
      this.close()
      return false
    }
    let pos = 0
    if (this.phase === Phase.Head) {
      pos = this.readHead(buf, nread)
      if (pos < 0) return this.keepReading()
    }
    if (this.phase === Phase.Body) this.readBody(buf, pos, nread)
    return this.keepReading()
  }

  /** What onRead tells the socket: false stops reading (closed, or paused for backpressure). */
  private keepReading (): boolean {
    return this.phase !== Phase.Closed && !this.paused
  }

  /** Parses heads in buf[0, end); returns where the body starts, or -1 when there is nothing more to read now. */
  private readHead (buf: Buffer, end: number): number {
    const handler = this.handler as ResponseHandler
    let pos = 0
    for (;;) {
      let text: string
      let next: number
      if (this.partial === undefined) {
        const at = bounded(buf.indexOf(HEAD_END, pos), end)
        if (at === -1) return this.keepPartial(buf.subarray(pos, end))
        next = at + 4
        if (next - pos > MAX_HEAD_BYTES) return this.protocolFailure('has a head larger than 64 KiB')
        text = buf.toString('latin1', pos, next)
      } else {
        const joined = Buffer.concat([this.partial, buf.subarray(0, end)])
        const at = joined.indexOf(HEAD_END, Math.max(0, this.partial.length - 3))
        if (at === -1) { this.partial = undefined; return this.keepPartial(joined) }
        if (at + 4 > MAX_HEAD_BYTES) return this.protocolFailure('has a head larger than 64 KiB')
        text = joined.toString('latin1', 0, at + 4)
        next = at + 4 - this.partial.length
        this.partial = undefined
      }
      const problem = this.head.parse(text)
      if (problem !== undefined) return this.protocolFailure(problem)
      const status = this.head.status
      if (status < 200) {
        if (status === 101) return this.protocolFailure('switches protocols for a request that asked for no upgrade')
        // 100 Continue is baton's to send (it answers Expect itself); 103 is passed on.
        if (status !== 100) {
          handler.onInformational(this.head)
          if (this.handler !== handler) return -1
        }
        pos = next
        if (pos === end) return -1
        continue
      }
      return this.startBody(handler, buf, next, end)
    }
  }

  /** Keeps the start of a head split across reads; fails one that grows past the limit or ends lines in bare LFs. */
  private keepPartial (bytes: Buffer): number {
    if (bytes.length > MAX_HEAD_BYTES) return this.protocolFailure('has a head larger than 64 KiB')
    if (bytes.indexOf(BARE_LF_END) !== -1) return this.protocolFailure('ends a line with a bare LF')
    this.partial = Buffer.from(bytes)
    return -1
  }

  /** The final head is in: decide the body's framing, refuse bytes that cannot belong to it, pass the head on. */
  private startBody (handler: ResponseHandler, buf: Buffer, next: number, end: number): number {
    const head = this.head
    const status = head.status
    if (this.headRequest || status === 204 || status === 304) {
      this.framing = Framing.None
    } else if (head.chunked) {
      this.framing = Framing.Chunked
      if (this.chunked === undefined) this.chunked = new ChunkedDecoder()
      else this.chunked.reset()
    } else if (head.contentLength !== -1) {
      this.framing = head.contentLength === 0 ? Framing.None : Framing.Length
      this.remaining = head.contentLength
    } else {
      this.framing = Framing.Close
    }
    // Bytes beyond the declared end arrived with the head: the response
    // says less than the upstream sent, so nothing of it is passed on.
    if ((this.framing === Framing.None && next < end) || (this.framing === Framing.Length && end - next > this.remaining)) {
      return this.protocolFailure('has more bytes than its framing declares')
    }
    this.phase = Phase.Body
    // A chunked head waits for the chunks read with it: a body broken in its
    // first read is answered 502, not passed on and cut.
    this.announced = this.framing !== Framing.Chunked
    if (this.announced) {
      handler.onResponseHead(head)
      if (this.handler !== handler) return -1
    }
    if (this.framing === Framing.None) { this.complete(undefined); return -1 }
    return next
  }

  /** Passes the head of a chunked response on, once; false when the handler left. */
  private announce (handler: ResponseHandler): boolean {
    if (this.announced) return true
    this.announced = true
    handler.onResponseHead(this.head)
    return this.handler === handler
  }

  private readBody (buf: Buffer, pos: number, end: number): void {
    const handler = this.handler as ResponseHandler
    if (this.framing === Framing.Length) {
      const n = Math.min(this.remaining, end - pos)
      this.remaining -= n
      if (n > 0 && !this.deliver(handler, buf, pos, pos + n)) return
      if (this.remaining === 0) {
        if (pos + n < end) this.protocolFailure('has more bytes than its Content-Length')
        else this.complete(undefined)
      }
      return
    }
    if (this.framing === Framing.Close) {
      this.deliver(handler, buf, pos, end)
      return
    }
    const decoder = this.chunked as ChunkedDecoder
    let start = -1
    let stop = -1
    // Each data run is passed on when the next step succeeds, so that the
    // head of a response whose first read is broken is never sent.
    while (pos < end && !decoder.done) {
      pos = decoder.step(buf, pos, end)
      if (decoder.error !== undefined) { this.protocolFailure(decoder.error); return }
      if (decoder.dataEnd > decoder.dataStart) {
        if (start !== -1 && !(this.announce(handler) && this.deliver(handler, buf, start, stop))) return
        start = decoder.dataStart
        stop = decoder.dataEnd
      }
    }
    if (decoder.done && pos < end) { this.protocolFailure('has bytes after its last chunk'); return }
    if (!this.announce(handler)) return
    if (start !== -1 && !this.deliver(handler, buf, start, stop)) return
    if (decoder.done) this.complete(decoder.trailers)
  }

  /** Copies buf[start, end) out of the shared read buffer to the handler; false when the handler left. */
  private deliver (handler: ResponseHandler, buf: Buffer, start: number, end: number): boolean {
    if (handler === DRAINING) return true
    if (!handler.onResponseData(copyOut(buf, start, end))) this.paused = true
    return this.handler === handler
  }

  /** The response is whole: back to the pool if the connection can carry another request, then tell the exchange. */
  private complete (trailers: readonly string[] | undefined): void {
    const handler = this.handler as ResponseHandler
    this.handler = null
    this.served++
    // A connection whose request body is not all sent, or that the upstream
    // closes, or whose response ended with the connection, carries no more.
    const reusable = this.requestDone && !this.head.close && this.framing !== Framing.Close && this.phase !== Phase.Closed
    if (reusable) {
      this.phase = Phase.Idle
      if (this.paused) { this.paused = false; this.socket.resume() }
      this.owner.onReusable(this, this.head.keepAliveSeconds)
    } else {
      this.close()
    }
    handler.onResponseEnd(trailers)
  }

  private protocolFailure (problem: string): number {
    this.fail(protocolError(problem))
    return -1
  }

  /** Closes the connection and fails the exchange on it, if any. */
  fail (err: UpstreamError): void {
    const handler = this.handler
    this.close()
    handler?.onUpstreamError(err)
  }

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    const kind = socketErrorKind(err.code)
    const e = new UpstreamError(kind, err.message)
    if (this.phase === Phase.Connecting) this.connectFailed(e)
    else this.fail(e)
  }

  private readonly onEnd = (): void => {
    if (this.handler !== null && this.phase === Phase.Body && this.framing === Framing.Close) {
      this.complete(undefined)
      return
    }
    if (this.phase === Phase.Connecting) {
      this.connectFailed(new UpstreamError('reset', 'the upstream closed the connection while it was being opened'))
      return
    }
    const answered = this.phase === Phase.Body
    this.fail(new UpstreamError('reset', answered ? 'the upstream closed the connection in the middle of the response' : 'the upstream closed the connection before answering'))
  }

  private readonly onClose = (): void => {
    if (this.phase === Phase.Connecting) this.connectFailed(new UpstreamError('reset', 'the connection closed while it was being opened'))
    else if (this.phase !== Phase.Closed) this.fail(new UpstreamError('reset', 'the upstream connection closed'))
  }

  /** The upstream timeout passed with no byte either way; backpressure from a slow client does not count. */
  private readonly onTimeout = (): void => {
    if (this.handler === null || this.paused) return
    if (this.phase === Phase.Head) {
      this.fail(new UpstreamError('timeout', `the upstream did not answer within ${this.owner.upstreamTimeout} ms`))
    } else if (this.phase === Phase.Body) {
      this.fail(new UpstreamError('body_timeout', `the upstream's response stalled for ${this.owner.upstreamTimeout} ms`))
    }
  }

  private readonly onDrain = (): void => { this.handler?.onUpstreamDrain() }
}

/** Most response bytes still to come that a connection reads and drops after its client left, to keep it. */
const DRAIN_LIMIT = 256 * 1024

/** The handler of a response read only to keep its connection. */
const DRAINING: ResponseHandler = {
  onInformational: () => undefined,
  onResponseHead: () => undefined,
  onResponseData: () => true,
  onResponseEnd: () => undefined,
  onUpstreamError: () => undefined,
  onUpstreamDrain: () => undefined
}

/** `at` when a match lies wholly inside [0, end) of a buffer that holds stale bytes after end, else -1. */
function bounded (at: number, end: number): number {
  return at !== -1 && at + 4 <= end ? at : -1
}
