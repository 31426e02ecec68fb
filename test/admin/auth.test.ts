import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminApi } from '../helpers/admin.js'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { config } from '../helpers/http.js'

// README "Admin API": every route but GET /healthz needs the bearer token when one is
// configured; the answer without it is a 401 with one clear sentence, before
// the route is even looked up (so an unknown path tells nothing either).

const ROUTES: Array<[string, string]> = [
  ['GET', '/v1/pools'],
  ['GET', '/v1/pools/web'],
  ['GET', '/v1/pools/nope'],
  ['POST', '/v1/pools/web/rollouts'],
  ['POST', '/v1/pools/web/rollback'],
  ['GET', '/v1/rollouts/web-2-abcdef'],
  ['POST', '/v1/rollouts/web-2-abcdef/pause'],
  ['POST', '/v1/rollouts/web-2-abcdef/resume'],
  ['POST', '/v1/rollouts/web-2-abcdef/abort'],
  ['POST', '/v1/reload'],
  ['GET', '/v1/processes'],
  ['POST', '/v1/upgrade'],
  ['GET', '/v1/upgrade'],
  ['GET', '/v1/events'],
  ['GET', '/metrics'],
  ['GET', '/no/such/route'],
  ['POST', '/healthz']
]

describe('admin API authentication', () => {
  let backend: Backend
  let baton: RunningBaton

  beforeAll(async () => {
    backend = await startBackend({ NAME: 'a' })
    baton = await startBaton(config({ web: { servers: [backend.address] } }, { admin: { listen: '127.0.0.1:0', token: 'secret' } }))
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await backend.kill()
  })

  it('answers GET /healthz without a token', async () => {
    const r = await adminApi(baton.adminUrl).get('/healthz')
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ status: 'ok', generation: 1 })
    expect((await adminApi(baton.adminUrl, 'wrong').get('/healthz')).status).toBe(200)
  })

  it('refuses every other route without a token, with a bad one, or another scheme (401)', async () => {
    const callers = [
      adminApi(baton.adminUrl),
      adminApi(baton.adminUrl, 'wrong'),
      adminApi(baton.adminUrl, 'secret-but-longer'),
      adminApi(baton.adminUrl, '')
    ]
    for (const [method, path] of ROUTES) {
      for (const api of callers) {
        const r = await api.call(method, path)
        expect(r.status, `${method} ${path}`).toBe(401)
        expect(r.body).toEqual({ error: 'a valid bearer token is required', code: 'BATON_ERR_ADMIN_UNAUTHORIZED' })
        expect(r.headers.get('content-type')).toBe('application/json')
      }
      const basic = await adminApi(baton.adminUrl).call(method, path, { headers: { authorization: 'Basic c2VjcmV0' } })
      expect(basic.status, `${method} ${path} with Basic`).toBe(401)
    }
  })

  it('lets the right token through', async () => {
    const api = adminApi(baton.adminUrl, 'secret')
    const pools = await api.get('/v1/pools')
    expect(pools.status).toBe(200)
    expect(pools.body.pools.map((p) => p.name)).toEqual(['web'])
    expect((await api.get('/v1/pools/web')).body).toMatchObject({ name: 'web', rollout: null })
    const metrics = await api.get('/metrics')
    expect(metrics.status).toBe(200)
    expect(metrics.text).toContain('baton_instances')
    // A static pool has nothing to roll out: a clear 400, not a crash.
    const r = await api.post('/v1/pools/web/rollouts', { version: 'v2' })
    expect(r.status).toBe(400)
    expect(r.body.error).toMatch(/static servers/)
    expect((await api.get('/no/such/route')).status).toBe(404)
  })

  it('opens the event stream with the right token', async () => {
    const ac = new AbortController()
    const res = await fetch(`${baton.adminUrl}/v1/events`, { headers: { authorization: 'Bearer secret' }, signal: ac.signal })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/event-stream')
    const reader = res.body!.getReader()
    const first = await reader.read()
    expect(new TextDecoder().decode(first.value)).toMatch(/^: baton events/)
    ac.abort()
    await reader.cancel().catch(() => undefined)
  })
})
