import { describe, expect, it } from 'vitest'
import { normaliseHost, Router } from '../../src/proxy/router.js'

// Router, as a unit: SPEC §2 routing (first match wins; Host without its
// port, case-insensitively; `*.domain` one or more labels; pathPrefix whole
// segments, query ignored). The process-level proof is routing.test.ts.

const router = new Router([
  { host: 'api.example.com', pathPrefix: '/v1', pool: 'api-v1' },
  { host: 'api.example.com', pool: 'api' },
  { host: '*.example.com', pathPrefix: '/static/', pool: 'static' },
  { host: '[::1]', pool: 'v6' },
  { pathPrefix: '/admin', pool: 'admin' },
  { pathPrefix: '/', pool: 'web' }
])

describe('Router', () => {
  const cases: Array<[string | undefined, string, string | undefined]> = [
    ['api.example.com', '/v1', 'api-v1'],
    ['api.example.com', '/v1/users?x=1', 'api-v1'],
    ['API.Example.COM:8080', '/v1/users', 'api-v1'],
    ['api.example.com.', '/v1', 'api-v1'],
    ['api.example.com', '/v10', 'api'],
    ['api.example.com', '/v1x/y', 'api'],
    ['api.example.com', '/', 'api'],
    ['cdn.example.com', '/static/a.css', 'static'],
    ['a.b.example.com', '/static', 'static'],
    ['example.com', '/static/a.css', 'web'],
    ['cdn.example.com', '/staticx', 'web'],
    ['[::1]:8080', '/', 'v6'],
    ['[::1]', '/x', 'v6'],
    [undefined, '/admin/x', 'admin'],
    ['', '/admin', 'admin'],
    ['other', '/administrator', 'web'],
    ['other', '/admin?x', 'admin'],
    ['other', '/', 'web']
  ]
  for (const [host, url, pool] of cases) {
    it(`${String(host)} ${url} → ${String(pool)}`, () => {
      expect(router.route(host, url)).toBe(pool)
    })
  }

  it('answers undefined (404) when no route matches', () => {
    const narrow = new Router([{ host: 'only.example', pathPrefix: '/x', pool: 'p' }])
    expect(narrow.route('only.example', '/y')).toBeUndefined()
    expect(narrow.route('other.example', '/x')).toBeUndefined()
    expect(narrow.route(undefined, '/x')).toBeUndefined()
  })

  it('takes the first route that matches, in config order', () => {
    const r = new Router([{ pathPrefix: '/', pool: 'first' }, { pathPrefix: '/a', pool: 'second' }])
    expect(r.route('h', '/a')).toBe('first')
  })

  it('normalises hosts: port and trailing dot off, lower case, IPv6 brackets kept', () => {
    expect(normaliseHost('Example.COM.:443')).toBe('example.com')
    expect(normaliseHost('[2001:DB8::1]:80')).toBe('[2001:db8::1]')
    expect(normaliseHost(undefined)).toBe('')
  })
})
