/**
 * Header rewriting for both directions (SPEC, HTTP semantics): hop-by-hop
 * headers and every header named by `Connection` stay on their hop;
 * X-Forwarded-For/-Proto/-Host are set; Host is kept. Names are lower-cased
 * only when their length could make them one of the headers we act on, so the
 * common header costs one length check.
 */

const INTERESTING_LENGTHS = new Set([2, 4, 6, 7, 10, 14, 15, 16, 17])

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

export interface RequestHead {
  /** Flat [name, value, name, value, ...] for undici. */
  headers: string[]
  /** True when the request carries a body (Content-Length > 0 or Transfer-Encoding). */
  hasBody: boolean
  /** The Host header as sent (routing strips its port). */
  host: string | undefined
  /**
   * Why the request must be refused with 400 before it goes anywhere, if it
   * must: more than one Host header (RFC 9112 §3.2), or a Transfer-Encoding
   * whose final coding is not chunked (§6.3: its length is unknowable).
   */
  malformed: string | undefined
}

const FINAL_CHUNKED = /(?:^|,)[ \t]*chunked[ \t]*$/i

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
  let hasBody = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    const value = raw[i + 1]
    if (INTERESTING_LENGTHS.has(name.length)) {
      const lower = name.toLowerCase()
      if (lower === 'host') {
        if (host !== undefined) malformed = 'more than one Host header'
        host = value
        out.push(name, value)
        continue
      }
      if (lower === 'content-length') { if (value !== '0') hasBody = true; out.push(name, value); continue }
      if (lower === 'transfer-encoding') {
        hasBody = true
        if (!FINAL_CHUNKED.test(value)) malformed = 'a Transfer-Encoding that does not end in chunked'
        continue
      }
      // undici refuses Expect; Node already answered 100-continue to the client.
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
  return { headers: out, hasBody, host, malformed }
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
