import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { config, raw, send } from '../helpers/http.js'

// README "Config reference", routes: the Host header without its port, case-insensitively
// (`*.example.com` matches one or more labels, not the bare domain);
// pathPrefix by whole segments, not stripped; first match wins; else 404.

describe('routing', () => {
  const names = ['api', 'wild', 'mixed', 'v1', 'assets'] as const
  const backends: Record<string, Backend> = {}
  let baton: RunningBaton

  beforeAll(async () => {
    const started = await Promise.all(names.map(async n => await startBackend({ NAME: n })))
    names.forEach((n, i) => { backends[n] = started[i] })
    baton = await startBaton(config(
      Object.fromEntries(names.map(n => [n, { servers: [backends[n].address] }])),
      {
        routes: [
          { match: { host: 'api.example.com', pathPrefix: '/v1' }, pool: 'api' },
          { match: { host: '*.example.com' }, pool: 'wild' },
          { match: { host: 'Mixed.Case.Test' }, pool: 'mixed' },
          { match: { pathPrefix: '/v1' }, pool: 'v1' },
          { match: { pathPrefix: '/assets/' }, pool: 'assets' }
        ]
      }
    ))
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await Promise.all(Object.values(backends).map(async b => await b.kill()))
  })

  /** Which pool answered (its backend's NAME), or the status when baton answered itself. */
  async function routed (host: string, path: string): Promise<string | number> {
    const r = await send(`${baton.url}${path}`, { headers: { host } })
    if (r.status !== 200) return r.status
    const body = JSON.parse(r.text) as { name: string, url: string }
    expect(body.url, 'the path reached the backend changed').toBe(path)
    return body.name
  }

  it('matches an exact host with a pathPrefix', async () => {
    expect(await routed('api.example.com', '/v1')).toBe('api')
    expect(await routed('api.example.com', '/v1/users/7')).toBe('api')
    expect(await routed('api.example.com', '/v1?q=1')).toBe('api')
    expect(await routed('api.example.com', '/v1/')).toBe('api')
  })

  it('matches pathPrefix by whole segments', async () => {
    // `/v10` and `/v1x` are not under `/v1`: the next route (the wildcard) takes them.
    expect(await routed('api.example.com', '/v10')).toBe('wild')
    expect(await routed('api.example.com', '/v1x/y')).toBe('wild')
    expect(await routed('other.test', '/v1')).toBe('v1')
    expect(await routed('other.test', '/v1/a?b=c')).toBe('v1')
    expect(await routed('other.test', '/v10')).toBe(404)
    expect(await routed('other.test', '/v')).toBe(404)
    // A prefix written with a trailing slash still means the segment.
    expect(await routed('other.test', '/assets/app.css')).toBe('assets')
    expect(await routed('other.test', '/assets')).toBe('assets')
    expect(await routed('other.test', '/assetsx/app.css')).toBe(404)
  })

  it('ignores the port and the case of the Host header', async () => {
    expect(await routed('API.Example.COM:8443', '/v1/users')).toBe('api')
    expect(await routed('api.example.com:80', '/v1')).toBe('api')
    expect(await routed('mixed.case.test', '/anything')).toBe('mixed')
    expect(await routed('MIXED.CASE.TEST:9000', '/anything')).toBe('mixed')
    expect(await routed('api.example.com.', '/v1')).toBe('api')
  })

  it('matches *.example.com against one or more labels but not the bare domain', async () => {
    expect(await routed('www.example.com', '/x')).toBe('wild')
    expect(await routed('a.b.c.example.com', '/x')).toBe('wild')
    expect(await routed('WWW.EXAMPLE.COM:8080', '/x')).toBe('wild')
    expect(await routed('example.com', '/x')).toBe(404)
    expect(await routed('badexample.com', '/x')).toBe(404)
    expect(await routed('example.com.evil.test', '/x')).toBe(404)
    // The bare domain falls through to the host-less routes.
    expect(await routed('example.com', '/v1/x')).toBe('v1')
  })

  it('takes the first matching route', async () => {
    // Both the api route and the v1 route match; the api route comes first.
    expect(await routed('api.example.com', '/v1/x')).toBe('api')
    // The wildcard comes before the v1 route.
    expect(await routed('www.example.com', '/v1/x')).toBe('wild')
  })

  it('answers 404 with a clear body when no route matches, and keeps the connection', async () => {
    const r = await raw(baton.ports[0], 'GET /nothing HTTP/1.1\r\nHost: nowhere.test\r\n\r\nGET /v1/ok HTTP/1.1\r\nHost: nowhere.test\r\nConnection: close\r\n\r\n')
    expect(r.statuses).toEqual([404, 200])
    expect(r.data).toContain('baton: no route for this host and path')
  })

  it('routes IPv4 and bracketed IPv6 literal hosts to host-less routes', async () => {
    expect(await routed('127.0.0.1:1234', '/v1')).toBe('v1')
    expect(await routed('[::1]:1234', '/v1')).toBe('v1')
    expect(await routed('[::1]', '/nope')).toBe(404)
  })

  it('does not strip the path it forwards, nor merge slashes or decode reserved escapes', async () => {
    for (const path of ['/v1/a//b', '/v1/a%20b?x=%20y&z', '/v1/a;b=c', '/v1?', '/v1/a%2Fb']) {
      expect(await routed('other.test', path)).toBe('v1')
    }
    // Escapes of unreserved characters are decoded (SPEC §8; route-bypass.test.ts has the rest).
    const r = await send(`${baton.url}/v1/%7Euser?x=%7E`, { headers: { host: 'other.test' } })
    expect(JSON.parse(r.text)).toMatchObject({ name: 'v1', url: '/v1/~user?x=%7E' })
  })
})
