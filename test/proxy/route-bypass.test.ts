import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { config, raw, send, waitFor } from '../helpers/http.js'

// The route bypass (SPEC §8, README "Routing"): a path is routed as
// normalized — unreserved escapes decoded, dot-segments removed — and the
// upstream receives that same path, so `/v1/../admin` can never reach the
// `/v1` pool with a path its app would read as `/admin`. A path climbing
// above `/` gets 400; the access log keeps the path as the client sent it.

describe('route bypass through dot-segments and escapes', () => {
  const names = ['v1', 'admin', 'web'] as const
  const backends: Record<string, Backend> = {}
  let baton: RunningBaton
  let logFile: string

  beforeAll(async () => {
    const started = await Promise.all(names.map(async n => await startBackend({ NAME: n })))
    names.forEach((n, i) => { backends[n] = started[i] })
    baton = await startBaton(config(
      Object.fromEntries(names.map(n => [n, { servers: [backends[n].address] }])),
      {
        accessLog: { path: 'access.log' },
        routes: [
          { match: { pathPrefix: '/v1' }, pool: 'v1' },
          { match: { pathPrefix: '/admin' }, pool: 'admin' },
          { match: { pathPrefix: '/' }, pool: 'web' }
        ]
      }
    ))
    logFile = join(baton.dir, 'access.log')
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await Promise.all(Object.values(backends).map(async b => await b.kill()))
  })

  /** [pool that answered, the path its backend received], or the status baton answered itself. */
  async function routed (path: string): Promise<[string, string] | number> {
    const r = await send(`${baton.url}${path}`)
    if (r.status !== 200) return r.status
    const body = JSON.parse(r.text) as { name: string, url: string }
    return [body.name, body.url]
  }

  it('sends /v1/../admin to the admin pool as /admin, never to /v1 (the bypass)', async () => {
    expect(await routed('/v1/../admin/users')).toEqual(['admin', '/admin/users'])
    expect(await routed('/v1/../x')).toEqual(['web', '/x'])
    expect(await routed('/v1/./../admin')).toEqual(['admin', '/admin'])
    // The backend of /v1 saw none of them.
    const stats = JSON.parse((await send(`http://${backends.v1.address}/admin/stats`)).text) as { total: number }
    expect(stats.total).toBe(0)
  })

  it('decodes escaped dots and letters before routing', async () => {
    expect(await routed('/v1/%2e%2e/admin')).toEqual(['admin', '/admin'])
    expect(await routed('/v1/%2E%2e/admin?q=/../v1')).toEqual(['admin', '/admin?q=/../v1'])
    expect(await routed('/v1/.%2E/admin')).toEqual(['admin', '/admin'])
    expect(await routed('/%61dmin/x')).toEqual(['admin', '/admin/x'])
    expect(await routed('/%76%31')).toEqual(['v1', '/v1'])
  })

  it('removes single dots and keeps a trailing slash where a segment went', async () => {
    expect(await routed('/v1/./users/.')).toEqual(['v1', '/v1/users/'])
    expect(await routed('/v1/users/..')).toEqual(['v1', '/v1/'])
    expect(await routed('/a/b/../../v1')).toEqual(['v1', '/v1'])
  })

  it('leaves %2F and %00 encoded: they never split or end a segment', async () => {
    expect(await routed('/v1/..%2Fadmin')).toEqual(['v1', '/v1/..%2Fadmin'])
    expect(await routed('/v1/%2e%2e%2Fadmin')).toEqual(['v1', '/v1/..%2Fadmin'])
    expect(await routed('/v1/a%00b')).toEqual(['v1', '/v1/a%00b'])
  })

  it('answers 400 to a path that climbs above / or has a broken escape, and keeps the connection', async () => {
    for (const path of ['/..', '/../admin', '/v1/../../admin', '/%2e%2e/admin', '/admin%zz', '/admin%4']) {
      const r = await send(`${baton.url}${path}`)
      expect(r.status, path).toBe(400)
      expect(r.text).toMatch(/^baton: the path (climbs above \/|has a % that is not followed by two hex digits)\n$/)
    }
    // A refused path is no framing fault: the next request on the connection is served.
    const r = await raw(baton.ports[0], 'GET /../x HTTP/1.1\r\nHost: a\r\n\r\nGET /v1/ok HTTP/1.1\r\nHost: a\r\n\r\n', { responses: 2 })
    expect(r.statuses).toEqual([400, 200])
    expect(r.closed).toBe(false)
  })

  it('refuses a WebSocket upgrade that climbs above /', async () => {
    const r = await raw(baton.ports[0], 'GET /../ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
    expect(r.statuses).toEqual([400])
  })

  it('logs the path as the client sent it', async () => {
    await send(`${baton.url}/v1/%2e%2e/admin?logged=1`)
    const line = await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').split('\n')
      .filter(l => l !== '').map(l => JSON.parse(l) as { path: string, pool: string | null })
      .find(l => l.path.endsWith('logged=1')))
    expect(line).toMatchObject({ path: '/v1/%2e%2e/admin?logged=1', pool: 'admin' })
  })
})
