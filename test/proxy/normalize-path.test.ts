import { describe, expect, it } from 'vitest'
import { ABOVE_ROOT, BAD_ESCAPE, normalizeTarget } from '../../src/proxy/normalize-path.js'

// The normalization alone (README "Routing"): unreserved escapes decoded,
// dot-segments removed (RFC 3986 §5.2.4), %2F and %00 kept, 400 above `/`.

describe('normalizeTarget', () => {
  it('returns the very string it was given when there is nothing to do (the fast path)', () => {
    for (const url of ['/', '/v1/users/7', '/a.b/c.d', '/x?y=/../z', '/x?%41', '/file.tar.gz', '/a-b_c~d']) {
      expect(normalizeTarget(url)).toBe(url)
    }
  })

  it('removes dot-segments as RFC 3986 §5.2.4 does', () => {
    const cases: Array<[string, string]> = [
      ['/v1/../x', '/x'],
      ['/public/../admin', '/admin'],
      ['/a/./b', '/a/b'],
      ['/a/b/.', '/a/b/'],
      ['/a/b/..', '/a/'],
      ['/a/..', '/'],
      ['/./', '/'],
      ['/.', '/'],
      ['/a/b/../../c', '/c'],
      ['/a//../b', '/a/b'],
      ['//..', '/'],
      ['/a/.../b', '/a/.../b'],
      ['/a/..b/.c', '/a/..b/.c'],
      ['/.well-known/acme', '/.well-known/acme'],
      ['/v1/../x?a=/../b', '/x?a=/../b']
    ]
    for (const [from, to] of cases) expect(normalizeTarget(from), from).toBe(to)
  })

  it('decodes escapes of unreserved characters first, so encoded dots are dot-segments too', () => {
    const cases: Array<[string, string]> = [
      ['/v1/%2e%2e/x', '/x'],
      ['/v1/%2E%2e/x', '/x'],
      ['/v1/.%2e/x', '/x'],
      ['/%76%31/users', '/v1/users'],
      ['/%41%5a%61%7a%30%39%2d%2e%5f%7e', '/AZaz09-._~'],
      ['/a%20b', '/a%20b'],
      ['/x?%2e%2e', '/x?%2e%2e']
    ]
    for (const [from, to] of cases) expect(normalizeTarget(from), from).toBe(to)
  })

  it('leaves %2F and %00 (and every reserved escape) encoded, so they never make a segment', () => {
    expect(normalizeTarget('/v1/..%2Fadmin')).toBe('/v1/..%2Fadmin')
    expect(normalizeTarget('/v1/%2e%2e%2fadmin')).toBe('/v1/..%2fadmin')
    expect(normalizeTarget('/v1/%00/../x')).toBe('/v1/x')
    expect(normalizeTarget('/a%00b')).toBe('/a%00b')
    expect(normalizeTarget('/%252e%252e/x')).toBe('/%252e%252e/x')
    expect(normalizeTarget('/a%3Fb')).toBe('/a%3Fb')
  })

  it('refuses a path that climbs above / and a broken escape', () => {
    for (const url of ['/..', '/../x', '/a/../..', '/v1/../../etc/passwd', '/%2e%2e/x', '/%2E%2E', '/./..']) {
      expect(normalizeTarget(url), url).toBe(ABOVE_ROOT)
    }
    for (const url of ['/a%', '/a%4', '/a%zz', '/a%g1/../b']) expect(normalizeTarget(url), url).toBe(BAD_ESCAPE)
  })
})
