import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminApi, demoPool } from '../helpers/admin.js'
import { claimPortRange } from '../helpers/ports.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { recordEvents } from '../helpers/events.js'
import { startLoad } from '../helpers/load.js'
import { demoConfig, startRollout, waitRollout } from '../helpers/pool.js'
import type { PoolRolloutsAnswer } from '../helpers/views.js'

// What the live page needs from the server (SPEC §3, §10): its own files
// without a token and with a strict CSP, the data routes still behind the
// token, a pool's past rollouts, and per-second traffic on the event stream.

describe('the live page files and the token', () => {
  let baton: RunningBaton
  const api = (token?: string): ReturnType<typeof adminApi> => adminApi(baton.adminUrl, token)

  beforeAll(async () => {
    baton = await startBaton({
      listen: [{ port: 0, host: '127.0.0.1' }],
      admin: { listen: '127.0.0.1:0', token: 'page-secret' },
      pools: { web: demoPool(claimPortRange(), { size: 1 }) }
    })
  })
  afterAll(async () => { expect(await baton.kill()).toBe(0) })

  it('serves GET / and the page files without a token, typed, with a self-only CSP and no caching', async () => {
    const files: Array<[string, string]> = [
      ['/', 'text/html; charset=utf-8'],
      ['/page/app.js', 'text/javascript; charset=utf-8'],
      ['/page/api.js', 'text/javascript; charset=utf-8'],
      ['/page/chart.js', 'text/javascript; charset=utf-8'],
      ['/page/view.js', 'text/javascript; charset=utf-8'],
      ['/page/style.css', 'text/css; charset=utf-8'],
      ['/page/favicon.svg', 'image/svg+xml']
    ]
    for (const [path, type] of files) {
      const r = await api().get(path)
      expect(r.status, path).toBe(200)
      expect(r.headers.get('content-type'), path).toBe(type)
      expect(r.headers.get('cache-control'), path).toBe('no-store')
      expect(r.headers.get('x-content-type-options'), path).toBe('nosniff')
      const csp = r.headers.get('content-security-policy') ?? ''
      expect(csp, path).toContain("default-src 'none'")
      expect(csp, path).toContain("script-src 'self'")
      expect(csp, path).toContain("connect-src 'self'")
      expect(csp, path).not.toMatch(/unsafe|\*|https?:/)
      expect(r.text.length, path).toBeGreaterThan(50)
    }
    // The page learns that it must ask for the token before its first call.
    expect((await api().get('/')).text).toContain('data-auth="token"')
  })

  it('keeps every data route behind the token, the new one included', async () => {
    for (const path of ['/v1/pools', '/v1/pools/web/rollouts', '/v1/pools/web/traffic', '/v1/events', '/metrics']) {
      expect((await api().get(path)).status, path).toBe(401)
      expect((await api('wrong').get(path)).status, path).toBe(401)
    }
    // A path under /page/ that is not one of the files, or tries to leave the folder: 404, no file.
    for (const path of ['/page/nope.js', '/page/..%2F..%2Fpackage.json', '/page/index.html', '/page/']) {
      const r = await api().get(path)
      expect(r.status, path).not.toBe(200)
      expect(r.text, path).not.toContain('"name": "baton"')
    }
    expect((await api().get('/page/%E0%A4%A')).status).toBe(400)
    expect((await api().call('POST', '/')).status).toBe(401)
  })
})

describe('GET /v1/pools/NAME/rollouts, the traffic events and GET /v1/pools/NAME/traffic', () => {
  let baton: RunningBaton

  beforeAll(async () => {
    baton = await startBaton(demoConfig({ size: 2, rollout: { minReady: '200ms' } }))
  })
  afterAll(async () => { expect(await baton.kill()).toBe(0) })

  it('lists the pool\'s rollouts newest first, without their event logs; 404 for an unknown pool', async () => {
    const api = adminApi(baton.adminUrl)
    expect(JSON.parse((await api.get('/v1/pools/web/rollouts')).text)).toEqual({ rollouts: [] })
    const first = await startRollout(baton.adminUrl, { version: 'v2' })
    expect((await waitRollout(baton.adminUrl, first.id)).status).toBe('succeeded')
    const second = await startRollout(baton.adminUrl, { version: 'v3' })
    const during = (JSON.parse((await api.get('/v1/pools/web/rollouts')).text) as PoolRolloutsAnswer).rollouts
    expect(during.map(r => r.id)).toEqual([second.id, first.id])
    expect(during[0].status).toMatch(/running|succeeded/)
    expect(during[1]).toMatchObject({ id: first.id, pool: 'web', status: 'succeeded', fromVersion: 'v1', toVersion: 'v2', updated: 2, total: 2 })
    expect('events' in during[1]).toBe(false)
    expect((await waitRollout(baton.adminUrl, second.id)).status).toBe('succeeded')
    const r = await api.get('/v1/pools/nope/rollouts')
    expect(r.status).toBe(404)
    expect(r.body).toEqual({ error: 'no pool named "nope"', code: 'BATON_ERR_POOL_NOT_FOUND' })
  })

  it('sends each pool\'s traffic once a second, and the seconds add up to what the clients sent', async () => {
    const rec = recordEvents(baton.adminUrl)
    await rec.ready
    // Bounded by count: each worker sends its share, then stops by itself.
    const load = startLoad(baton.url, { keepAlive: 2, maxRequests: 200 })
    const fails = startLoad(baton.url, { keepAlive: 1, maxRequests: 30, path: '/fail' })
    await waitFor(() => load.result.ok + load.result.failed === 400 && fails.result.byStatus[500] === 30, 30_000)
    const client = await load.stop()
    const failing = await fails.stop()
    // Every request is answered, so the last one is in the second that ends next: wait for two ticks.
    const ticks = rec.events.filter(e => e.type === 'traffic').length
    await waitFor(() => rec.events.filter(e => e.type === 'traffic').length >= ticks + 2, 10_000)
    rec.close()

    const traffic = rec.events.filter(e => e.type === 'traffic')
    expect(traffic.every(e => e.data.pool === 'web' && e.data.t % 1000 === 0 && Array.isArray(e.data.versions))).toBe(true)
    let requests = 0
    let ok = 0
    let server5xx = 0
    let failed = 0
    for (const e of traffic) {
      for (const v of e.data.versions) {
        expect(v.version).toBe('v3')
        expect(Object.keys(v).sort()).toEqual(['client4xx', 'clientAborts', 'failed', 'ok2xx', 'p99', 'redirect3xx', 'requests', 'server5xx', 'version'])
        if (v.requests > 0) expect(v.p99).toBeGreaterThan(0)
        requests += v.requests
        ok += v.ok2xx
        server5xx += v.server5xx
        failed += v.failed
      }
    }
    expect(client.sent).toBe(400)
    expect(client.failed).toBe(0)
    expect(failing.sent).toBe(30)
    expect(requests).toBe(430)
    expect(ok).toBe(400)
    expect(server5xx).toBe(30)
    expect(failed).toBe(30)

    // GET /v1/pools/NAME/traffic: the last 5 minutes, every second, the same numbers the stream sent.
    const recent = (await adminApi(baton.adminUrl).get('/v1/pools/web/traffic')).body.traffic
    expect(recent).toHaveLength(300)
    recent.forEach((e, i) => { if (i > 0) expect(e.t - recent[i - 1].t).toBe(1000) })
    expect(recent.reduce((n, e) => n + e.versions.reduce((m, v) => m + v.requests, 0), 0)).toBe(430)
    const byT = new Map(recent.map(e => [e.t, e]))
    for (const e of traffic) expect(byT.get(e.data.t), `second ${e.data.t}`).toEqual(e.data)
    expect((await adminApi(baton.adminUrl).get('/v1/pools/nope/traffic')).status).toBe(404)
  })
})

async function waitFor (pred: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!pred()) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
