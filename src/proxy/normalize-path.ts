/**
 * The path routing sees and the upstream receives (README "Routing"):
 * percent-encoded unreserved characters decoded, then dot-segments removed
 * (RFC 3986 §6.2.2.2 and §5.2.4), so that `/public/../admin` is routed, and
 * forwarded, as `/admin`. `%2F`, `%00` and every other escape of a reserved
 * or unsafe byte stay as sent: decoding them would change what the path
 * means. Only the part before `?` is touched; the query is kept as sent.
 */

/** Why a request target was refused (400). */
export class BadPath {
  constructor (readonly reason: string) {}
}

export const ABOVE_ROOT = new BadPath('the path climbs above /')
export const BAD_ESCAPE = new BadPath('the path has a % that is not followed by two hex digits')

const PERCENT = 37
const DOT = 46
const SLASH = 47
const QUESTION = 63

/**
 * The normalized target, or why it is refused. A path with no `%` and no
 * `/.` is returned as it is, after one scan and no allocation: the common
 * request pays nothing more.
 */
export function normalizeTarget (url: string): string | BadPath {
  const len = url.length
  for (let i = 0; i < len; i++) {
    const c = url.charCodeAt(i)
    if (c === QUESTION) return url
    if (c === PERCENT || (c === DOT && url.charCodeAt(i - 1) === SLASH)) return normalizeSlowly(url)
  }
  return url
}

function normalizeSlowly (url: string): string | BadPath {
  const q = url.indexOf('?')
  const decoded = decodeUnreserved(q === -1 ? url : url.slice(0, q))
  if (decoded instanceof BadPath) return decoded
  const path = removeDotSegments(decoded)
  if (path instanceof BadPath) return path
  return q === -1 ? path : path + url.slice(q)
}

function hex (c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 65 && c <= 70) return c - 55
  if (c >= 97 && c <= 102) return c - 87
  return -1
}

/** ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3). */
function unreserved (c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === DOT || c === 95 || c === 126
}

/** `%41` → `A`; escapes of anything else kept as written. */
function decodeUnreserved (path: string): string | BadPath {
  let out = ''
  let from = 0
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i + 1)) {
    const hi = hex(path.charCodeAt(i + 1))
    const lo = hex(path.charCodeAt(i + 2))
    if (hi === -1 || lo === -1) return BAD_ESCAPE
    const c = hi * 16 + lo
    if (!unreserved(c)) { i += 2; continue }
    out += path.slice(from, i) + String.fromCharCode(c)
    from = i + 3
    i += 2
  }
  return from === 0 ? path : out + path.slice(from)
}

/**
 * RFC 3986 §5.2.4 on an absolute path, except that a `..` with nothing left
 * to remove is refused rather than dropped: a client that climbs above `/`
 * is probing, and what it meant cannot be known.
 */
function removeDotSegments (path: string): string | BadPath {
  const segments = path.split('/')
  const kept: string[] = []
  // segments[0] is the empty string before the leading slash.
  const last = segments.length - 1
  let trailingSlash = false
  for (let i = 1; i <= last; i++) {
    const s = segments[i]
    if (s === '.' || s === '..') {
      if (s === '..') {
        if (kept.length === 0) return ABOVE_ROOT
        kept.pop()
      }
      // `/a/.` and `/a/b/..` name a directory: `/a/`.
      if (i === last) trailingSlash = true
      continue
    }
    kept.push(s)
  }
  const joined = '/' + kept.join('/')
  return trailingSlash && kept.length > 0 ? joined + '/' : joined
}
