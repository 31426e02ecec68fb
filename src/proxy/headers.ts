/**
 * Header rewriting for both directions (SPEC, HTTP semantics): hop-by-hop
 * headers and every header named by `Connection` stay on their hop;
 * X-Forwarded-For/-Proto/-Host are set; Host is kept. Names are lower-cased
 * only when their length could make them one of the headers we act on, so the
 * common header costs one length check.
 */

const INTERESTING_LENGTHS = new Set([2, 4, 6, 7, 10, 14, 15, 16, 17])

// HTTP2-Settings belongs to an h2c upgrade, which is never passed on (RFC 9113 §3.2.1: connection-specific).
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings'])

export interface RequestHead {
  /** Flat [name, value, name, value, ...] for undici. */
  headers: string[]
  /** True when the request carries a body (Content-Length > 0 or Transfer-Encoding). */
  hasBody: boolean
  /** The Host header as sent (routing strips its port). */
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
const VALID_HOST = /^(?:\[[0-9A-Za-z:.%_~-]+\]|[0-9A-Za-z._~!$&'()*+,;=%-]*)(?::[0-9]*)?$/

/** Whether a Host value has the syntax of RFC 9110 §7.2; a space, `/`, `@` or `?` in it would read differently upstream. */
export function validHost (value: string): boolean {
  return VALID_HOST.test(value)
}

const OWS = /^[ \t]+|[ \t]+$/g

/**
 * Checks a Transfer-Encoding value: 0 when it is a list that ends in
 * chunked, once, with at most `identity` before it; 400 when its framing is
 * wrong; 501 (RFC 9112 §6.1, as nginx) for another coding such as gzip,
 * which the upstream would never learn of: baton forwards the body
 * de-chunked and re-framed, and cannot send the coding on.
 */
function transferCodings (value: string): number {
  let last = ''
  let unknown = false
  for (const item of value.split(',')) {
    const coding = item.replace(OWS, '').toLowerCase()
    if (coding === '') continue
    if (last === 'chunked') return 400
    if (coding !== 'chunked' && coding !== 'identity') unknown = true
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

export function requestHead (raw: readonly string[], clientIp: string | undefined, proto: string, upgrade: boolean): RequestHead {
  const named = connectionTokens(raw)
  const out: string[] = []
  let xff: string | undefined
  let host: string | undefined
  let malformed: string | undefined
  let refuseStatus = 400
  let hasBody = false
  let codings = false
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
        out.push(name, value)
        continue
      }
      if (lower === 'content-length') { if (value !== '0') hasBody = true; out.push(name, value); continue }
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
      // undici refuses Expect; baton answers 100-continue to the client itself (server.ts).
      if (lower === 'expect') continue
      if (lower === 'x-forwarded-for') { xff = xff === undefined ? value : `${xff}, ${value}`; continue }
      if (lower === 'x-forwarded-proto' || lower === 'x-forwarded-host') continue
      if (upgrade && (lower === 'upgrade' || lower === 'connection')) { out.push(name, value); continue }
      if (HOP_BY_HOP.has(lower)) continue
      if (named !== undefined && named.has(lower)) continue
    } else if (named !== undefined && named.has(name.toLowerCase())) {
      continue
    }
    out.push(name, value)
  }
  const ip = clientIp ?? ''
  out.push('x-forwarded-for', xff === undefined ? ip : `${xff}, ${ip}`)
  out.push('x-forwarded-proto', proto)
  if (host !== undefined) out.push('x-forwarded-host', host)
  return { headers: out, hasBody, host, malformed, refuseStatus }
}

/**
 * Upstream response headers (undici gives Buffers) to a flat array for
 * `res.writeHead`, without hop-by-hop headers.
 */
export function responseHeaders (raw: Buffer[]): string[] {
  const out: string[] = []
  let named: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString('latin1')
    const value = raw[i + 1].toString('latin1')
    if (INTERESTING_LENGTHS.has(name.length)) {
      const lower = name.toLowerCase()
      if (lower === 'connection') {
        for (const t of value.split(',')) {
          const tok = t.trim().toLowerCase()
          if (tok !== '' && tok !== 'close' && tok !== 'keep-alive') (named ??= new Set()).add(tok)
        }
        continue
      }
      if (HOP_BY_HOP.has(lower)) continue
    }
    out.push(name, value)
  }
  if (named === undefined) return out
  const kept: string[] = []
  for (let i = 0; i < out.length; i += 2) {
    if (!named.has(out[i].toLowerCase())) kept.push(out[i], out[i + 1])
  }
  return kept
}
