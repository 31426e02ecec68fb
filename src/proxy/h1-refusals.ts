import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { REASONS } from './errors.js'
import type { ClientResponse } from './forward.js'
import type { RequestHead } from './headers.js'
import { inProgress } from './in-progress.js'

// What an HTTP/1.x request gets when baton refuses it before routing, and
// how the answer to a request the parser refused goes out.

export const PLAIN = 'text/plain; charset=utf-8'

/**
 * Most header lines a request may carry (Envoy's default; Apache and HAProxy
 * allow about as many): more get 431. Node would otherwise keep the first
 * 2,000 and drop the rest without a word.
 */
export const MAX_HEADERS = 100

/**
 * Whether a head overflow happened in the request-target (414, RFC 9112
 * §3) rather than in a header field (431). Node's parser reports the
 * overflow where the span that crossed the limit ends: the space after the
 * target, with no line ended before it in the chunk; a header value ends
 * at CR instead.
 */
export function inRequestTarget (chunk: Buffer | undefined, at: number | undefined): boolean {
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
export function refuseRequest (req: IncomingMessage, head: RequestHead): [number, string] | undefined {
  if (req.httpVersionMajor !== 1) {
    // 505 to a major version above 1, as nginx; 400 to HTTP/0.9, whose clients read no status line.
    return req.httpVersionMajor > 1
      ? [505, 'this is an HTTP/1.x listener; HTTP/2 is spoken only on TLS listeners (ALPN h2)']
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
export function answerClientError (socket: Socket, status: number): void {
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

/**
 * A short text answer. No reason phrase is passed: Node's are the same
 * (errors.ts REASONS), and HTTP/2 has none (Node warns when given one).
 */
export function plain (res: ClientResponse | ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': PLAIN, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
