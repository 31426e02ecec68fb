/**
 * Header rewriting for both directions (HTTP semantics, RFC 9110): hop-by-hop
 * headers and every header named by `Connection` stay on their hop;
 * X-Forwarded-For/-Proto/-Host are set; Host is kept. Names are lower-cased
 * only when their length could make them one of the headers we act on, so the
 * common header costs one length check.
 */

import { HOP_BY_HOP } from '../upstream/http1/head.js'

const INTERESTING_LENGTHS = new Set([2, 4, 6, 7, 10, 14, 15, 16, 17])

export interface RequestHead {
  /**
   * The header section for the upstream, one `Name: value\r\n` line per
   * field (X-Forwarded-* last), without the empty line that ends it.
   */
  fields: string
  /** True when the request carries a body (Content-Length > 0 or Transfer-Encoding). */
  hasBody: boolean
  /** The body comes chunked: `fields` has no framing for it, the exchange adds Content-Length or Transfer-Encoding. */
  chunked: boolean
  /** The client accepts trailer fields (`TE: trailers`). */
  trailers: boolean
  /** The Host header as sent (routing strips its port); undefined without one. */
  host: string | undefined
  /**
   * Why the request must be refused before it goes anywhere, if it must:
   * more than one Host header or a Host that is no `host[:port]` (RFC 9110
   * §7.2), more than one Transfer-Encoding header (parsers disagree on how
   * to join them), a Transfer-Encoding whose final coding is not chunked
   * (RFC 9112 §6.3: its length is unknowable), or one with a coding besides
   * chunked (see transferCodings).
   */
  malformed: string | undefined
  /** The status that refuses a malformed request: 400, or 501 for a transfer coding baton cannot pass on. */
  refuseStatus: number
}

/** uri-host [":" port] (RFC 3986 §3.2.2): an IP literal or a reg-name, which may be empty. */
export const VALID_HOST = /^(?:\[[0-9A-Za-z:.%_~-]+\]|[0-9A-Za-z._~!$&'()*+,;=%-]*)(?::[0-9]*)?$/

const OWS = /^[ \t]+|[ \t]+$/g
const LEADING_ZEROS = /^0+(?=\d)/

/**
 * Checks a Transfer-Encoding value: 0 when it is exactly chunked (as a list
 * of one); 400 when its framing is wrong (no chunked last, or chunked
 * twice); 501 (RFC 9112 §6.1, as nginx) for any other coding, `identity`
 * included (no transfer coding since RFC 7230), which the upstream would
 * never learn of: baton forwards the body de-chunked and re-framed.
 */
function transferCodings (value: string): number {
  let last = ''
  let unknown = false
  for (const item of value.split(',')) {
    const coding = item.replace(OWS, '').toLowerCase()
    if (coding === '') continue
    if (last === 'chunked') return 400
    if (coding !== 'chunked') unknown = true
    last = coding
  }
  if (last !== 'chunked') return 400
  return unknown ? 501 : 0
}

/** Tokens listed in Connection headers, lower-cased; undefined when there are none to act on. */
function connectionTokens (raw: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue
    for (const t of raw[i + 1].split(',')) {
      const tok = t.trim().toLowerCase()
      if (tok === '' || tok === 'close' || tok === 'keep-alive') continue
      tokens ??= new Set()
      tokens.add(tok)
    }
  }
  return tokens
}

/**
 * The request head as it goes upstream, and what the proxy must know about
 * it, in one pass over the client's raw headers. `upgrade` keeps Upgrade and
 * Connection (a WebSocket handshake).
 */
export function requestHead (raw: readonly string[], clientIp: string | undefined, proto: string, upgrade: boolean): RequestHead {
  const named = connectionTokens(raw)
  let fields = ''
  let xff: string | undefined
  let host: string | undefined
  let malformed: string | undefined
  let refuseStatus = 400
  let hasBody = false
  let codings = false
  let trailers = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    const value = raw[i + 1]
    if (INTERESTING_LENGTHS.has(name.length)) {
      const lower = name.toLowerCase()
      if (lower === 'host') {
        if (host !== undefined || !VALID_HOST.test(value)) {
          malformed = host !== undefined ? 'more than one Host header' : 'a Host header that is no host[:port]'
          refuseStatus = 400
        }
        host = value
        fields += `${name}: ${value}\r\n`
        continue
      }
      if (lower === 'content-length') {
        if (value !== '0') hasBody = true
        // Node's parser took leading zeros; an upstream might read them as octal.
        fields += `${name}: ${value.charCodeAt(0) === 48 ? value.replace(LEADING_ZEROS, '') : value}\r\n`
        continue
      }
      if (lower === 'transfer-encoding') {
        hasBody = true
        const status = codings ? 400 : transferCodings(value)
        if (status !== 0) {
          malformed = codings
            ? 'more than one Transfer-Encoding header'
            : status === 501 ? 'a transfer coding other than chunked, which baton cannot pass on' : 'a Transfer-Encoding that does not end in chunked'
          refuseStatus = status
        }
        codings = true
        continue
      }
      // baton answers 100-continue to the client itself (server.ts).
      if (lower === 'expect') continue
      if (lower === 'x-forwarded-for') { xff = xff === undefined ? value : `${xff}, ${value}`; continue }
      if (lower === 'x-forwarded-proto' || lower === 'x-forwarded-host') continue
      if (upgrade && (lower === 'upgrade' || lower === 'connection')) { fields += `${name}: ${value}\r\n`; continue }
      if (lower === 'te') { if (/(?:^|,)\s*trailers\s*(?:[;,]|$)/i.test(value)) trailers = true; continue }
      if (HOP_BY_HOP.has(lower)) continue
      if (named !== undefined && named.has(lower)) continue
    } else if (named !== undefined && named.has(name.toLowerCase())) {
      continue
    }
    fields += `${name}: ${value}\r\n`
  }
  const ip = clientIp ?? ''
  fields += `x-forwarded-for: ${xff === undefined ? ip : `${xff}, ${ip}`}\r\nx-forwarded-proto: ${proto}\r\n`
  if (host !== undefined) fields += `x-forwarded-host: ${host}\r\n`
  return { fields, hasBody, chunked: codings, trailers, host, malformed, refuseStatus }
}

/**
 * The end-to-end fields of an upstream response for the client: the
 * client's own list unless its Connection header named fields that stay on
 * its hop (rare; then a filtered copy).
 */
export function responseFields (headers: string[], connectionTokens: readonly string[] | undefined): string[] {
  if (connectionTokens === undefined) return headers
  const kept: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    if (!connectionTokens.includes(headers[i].toLowerCase())) kept.push(headers[i], headers[i + 1])
  }
  return kept
}

/** Fields that must not stand in a trailer section (RFC 9110 §6.5.1): framing, routing, controls, authentication, content metadata. */
const NOT_IN_TRAILERS = new Set([
  'content-length', 'transfer-encoding', 'host', 'content-encoding', 'content-type', 'content-range', 'trailer',
  'authorization', 'proxy-authenticate', 'www-authenticate', 'set-cookie', 'cache-control', 'expect', 'max-forwards',
  'pragma', 'range', 'te', 'age', 'expires', 'date', 'location', 'retry-after', 'vary', 'warning'
])

/**
 * Trailer fields the client may be given, as a map for res.addTrailers
 * (node:http2's takes no list); a name sent twice gets its values joined
 * by `, ` (RFC 9110 §5.3: Set-Cookie, the one field that cannot be, is no
 * trailer). Undefined when none.
 */
export function forwardedTrailers (fields: readonly string[]): Record<string, string> | undefined {
  let out: Record<string, string> | undefined
  for (let i = 0; i < fields.length; i += 2) {
    const lower = fields[i].toLowerCase()
    if (NOT_IN_TRAILERS.has(lower) || HOP_BY_HOP.has(lower)) continue
    out ??= Object.create(null) as Record<string, string>
    out[lower] = out[lower] === undefined ? fields[i + 1] : `${out[lower]}, ${fields[i + 1]}`
  }
  return out
}
