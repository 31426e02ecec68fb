import { HOP_BY_HOP } from '../upstream/http1/head.js'
import { H2_MAX_HEADERS } from './h2-server.js'
import { VALID_HOST, type RequestHead } from './headers.js'

const LEADING_ZEROS = /^0+(?=\d)/
const TE_TRAILERS = /(?:^|,)\s*trailers\s*(?:[;,]|$)/i

/**
 * An HTTP/2 request's head as it goes upstream over HTTP/1.1 (README
 * "HTTP/2"), from node:http2's raw list (names lower-case, nghttp2 checked
 * the framing): `:authority` becomes Host (a Host that differs is refused,
 * RFC 9113 §8.3.1), other pseudo-headers go, cookie crumbs are joined into
 * one Cookie (§8.2.3), connection-specific fields (refused by nghttp2
 * already) and TE stay behind, X-Forwarded-* are set with proto https. A
 * body without Content-Length is re-framed by the exchange (`chunked`).
 */
export function h2RequestHead (raw: readonly string[], clientIp: string | undefined, endAfterHeaders: boolean): RequestHead {
  let fields = ''
  let authority: string | undefined
  let host: string | undefined
  let cookie: string | undefined
  let xff: string | undefined
  let length: string | undefined
  let trailers = false
  let count = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    const value = raw[i + 1]
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':authority') authority = value
      continue
    }
    count++
    switch (name) {
      case 'host': host = value; continue
      case 'cookie': cookie = cookie === undefined ? value : `${cookie}; ${value}`; continue
      case 'content-length': length = value.replace(LEADING_ZEROS, ''); fields += `content-length: ${length}\r\n`; continue
      case 'te': trailers = TE_TRAILERS.test(value); continue
      case 'expect': case 'x-forwarded-proto': case 'x-forwarded-host': continue
      case 'x-forwarded-for': xff = xff === undefined ? value : `${xff}, ${value}`; continue
    }
    if (HOP_BY_HOP.has(name)) continue
    fields += `${name}: ${value}\r\n`
  }
  let malformed: string | undefined
  let refuseStatus = 400
  const target = authority ?? host
  if (target === undefined) malformed = 'no :authority (nor Host): baton routes by host'
  else if (!VALID_HOST.test(target)) malformed = 'an :authority that is no host[:port]'
  else if (authority !== undefined && host !== undefined && host !== authority) malformed = 'a Host header that differs from :authority'
  else if (endAfterHeaders && length !== undefined && length !== '0') malformed = 'a Content-Length with no body'
  if (count > H2_MAX_HEADERS) { malformed = `more than ${H2_MAX_HEADERS} header fields`; refuseStatus = 431 }
  const hasBody = !endAfterHeaders && length !== '0'
  const ip = clientIp ?? ''
  let head = target === undefined ? '' : `host: ${target}\r\n`
  if (cookie !== undefined) head += `cookie: ${cookie}\r\n`
  head += `${fields}x-forwarded-for: ${xff === undefined ? ip : `${xff}, ${ip}`}\r\nx-forwarded-proto: https\r\n`
  if (target !== undefined) head += `x-forwarded-host: ${target}\r\n`
  return { fields: head, hasBody, chunked: hasBody && length === undefined, trailers, host: target, malformed, refuseStatus }
}
