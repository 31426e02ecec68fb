/**
 * The head of an upstream's HTTP/1.1 response (RFC 9112 §4, §5), parsed from
 * one latin1 string. Strict where a lenient reading would let two parties
 * disagree on where the response ends: a proxy that guesses forwards one
 * response as two, or two as one (response splitting and desync).
 */

/**
 * Fields that describe one hop and are never passed on (RFC 9110 §7.6.1, and
 * the HTTP row of README "What it guarantees"). HTTP2-Settings belongs to an h2c upgrade.
 */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings'])

/** Largest response head (or trailer section) read from an upstream; a larger one is answered 502. */
export const MAX_HEAD_BYTES = 64 * 1024

/** One parsed response head; a connection keeps one and refills it for each response. */
export class ResponseHead {
  status = 0
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor = 1
  /** End-to-end fields as [name, value, name, value, ...], hop-by-hop ones left out. Valid until the next head on the same connection. */
  readonly headers: string[] = []
  /** The Content-Length, or -1 without one. */
  contentLength = -1
  /** Transfer-Encoding: chunked. */
  chunked = false
  /** The upstream closes the connection after this response (Connection: close, or HTTP/1.0 without keep-alive). */
  close = false
  /** The seconds of a `Keep-Alive: timeout=N` hint, or -1 without one. */
  keepAliveSeconds = -1
  /** Fields the Connection header names (besides close and keep-alive), lower-cased: they stay on this hop too. */
  connectionTokens: string[] | undefined

  private reset (): void {
    this.status = 0
    this.minor = 1
    this.headers.length = 0
    this.contentLength = -1
    this.chunked = false
    this.close = false
    this.keepAliveSeconds = -1
    this.connectionTokens = undefined
  }

  /**
   * Parses `text`, a whole head from the status line through its empty
   * line. Returns what is wrong with it (completing "the upstream's response
   * ..."), or undefined when it is sound.
   */
  parse (text: string): string | undefined {
    this.reset()
    // HTTP/1.x SP 3DIGIT [SP reason] CRLF
    if (!text.startsWith('HTTP/1.') || text.charCodeAt(8) !== 32) return 'has no HTTP/1.x status line'
    const minor = text.charCodeAt(7) - 48
    if (minor !== 0 && minor !== 1) return 'has no HTTP/1.x status line'
    this.minor = minor
    let status = 0
    for (let i = 9; i < 12; i++) {
      const d = text.charCodeAt(i) - 48
      if (d < 0 || d > 9) return 'has a status that is not three digits'
      status = status * 10 + d
    }
    if (status < 100) return 'has a status below 100'
    const after = text.charCodeAt(12)
    if (after !== 32 && after !== 13) return 'has a status that is not three digits'
    this.status = status
    let eol = text.indexOf('\n', 12)
    if (eol === -1 || text.charCodeAt(eol - 1) !== 13) return 'ends a line with a bare LF'
    let keepAlive = false
    let pos = eol + 1
    for (;;) {
      eol = text.indexOf('\n', pos)
      if (eol === -1 || text.charCodeAt(eol - 1) !== 13) return 'ends a line with a bare LF'
      if (eol - 1 === pos) break // the empty line
      const problem = this.field(text, pos, eol - 1)
      if (problem !== undefined) {
        if (problem !== KEEP_ALIVE) return problem
        keepAlive = true
      }
      pos = eol + 1
    }
    if (this.chunked && this.contentLength !== -1) return 'has both Content-Length and Transfer-Encoding'
    if (minor === 0 && !keepAlive) this.close = true
    return undefined
  }

  /** One field line text[start, end) (no CRLF). Returns a problem, KEEP_ALIVE for a Connection: keep-alive, or undefined. */
  private field (text: string, start: number, end: number): string | undefined {
    const first = text.charCodeAt(start)
    if (first === 32 || first === 9) return 'folds a header line (obs-fold)'
    const colon = text.indexOf(':', start)
    if (colon === -1 || colon >= end) return 'has a header line without a colon'
    if (colon === start) return 'has a header with an empty name'
    let vs = colon + 1
    let ve = end
    while (vs < ve && isOws(text.charCodeAt(vs))) vs++
    while (ve > vs && isOws(text.charCodeAt(ve - 1))) ve--
    const name = text.slice(start, colon)
    const value = text.slice(vs, ve)
    // Only names as long as one of the fields acted on are lower-cased.
    const n = name.length
    if (n === 14 || n === 17 || n === 10 || n === 16 || n === 2 || n === 7) {
      const lower = name.toLowerCase()
      if (lower === 'content-length') {
        if (this.contentLength !== -1) return 'has more than one Content-Length'
        if (!DIGITS.test(value)) return 'has a Content-Length that is not a number'
        this.contentLength = Number(value)
        this.headers.push(name, value)
        return undefined
      }
      if (lower === 'transfer-encoding') {
        if (this.chunked) return 'has more than one Transfer-Encoding'
        // baton passes bodies on de-chunked and re-framed: any other coding
        // (or `identity`, which is none) would reach the client undeclared.
        if (value.toLowerCase() !== 'chunked') return `has a Transfer-Encoding other than chunked (${value.slice(0, 40)})`
        this.chunked = true
        return undefined
      }
      if (lower === 'connection') return this.connection(value)
      if (lower === 'keep-alive') { this.keepAliveSeconds = keepAliveTimeout(value); return undefined }
      if (HOP_BY_HOP.has(lower)) return undefined
    }
    this.headers.push(name, value)
    return undefined
  }

  private connection (value: string): string | undefined {
    // The usual values, without splitting a list.
    const lower = value.toLowerCase()
    if (lower === 'keep-alive') return KEEP_ALIVE
    if (lower === 'close') { this.close = true; return undefined }
    let keepAlive = false
    for (const item of value.split(',')) {
      const token = item.trim().toLowerCase()
      if (token === '') continue
      if (token === 'close') this.close = true
      else if (token === 'keep-alive') keepAlive = true
      else (this.connectionTokens ??= []).push(token)
    }
    return keepAlive ? KEEP_ALIVE : undefined
  }
}

/** Marks a Connection header that asked for keep-alive (an HTTP/1.0 upstream needs it to keep the connection). */
const KEEP_ALIVE = '\u0000keep-alive'

/** At most 15 digits: a length JavaScript numbers hold exactly. */
const DIGITS = /^\d{1,15}$/

function isOws (c: number): boolean { return c === 32 || c === 9 }

/** The N of `timeout=N` in a Keep-Alive value (RFC 2068 §19.7.1.1), or -1. */
function keepAliveTimeout (value: string): number {
  // The usual `timeout=5` (what Node sends), without a regular expression.
  if (value.startsWith('timeout=')) {
    const n = Number(value.slice(8))
    if (Number.isInteger(n) && n >= 0) return n
  }
  const m = /(?:^|[,;\s])timeout\s*=\s*"?(\d{1,9})/i.exec(value)
  return m === null ? -1 : Number(m[1])
}

/**
 * Parses a trailer section (field lines, each ending in CRLF, without the
 * final empty line) into `out` as [name, value, ...]. Returns a problem or
 * undefined.
 */
export function parseFields (text: string, out: string[]): string | undefined {
  let pos = 0
  while (pos < text.length) {
    const eol = text.indexOf('\n', pos)
    if (eol === -1 || text.charCodeAt(eol - 1) !== 13) return 'ends a trailer line with a bare LF'
    const first = text.charCodeAt(pos)
    if (first === 32 || first === 9) return 'folds a trailer line (obs-fold)'
    const colon = text.indexOf(':', pos)
    if (colon <= pos || colon >= eol) return 'has a trailer line without a name and colon'
    out.push(text.slice(pos, colon), text.slice(colon + 1, eol - 1).trim())
    pos = eol + 1
  }
  return undefined
}
