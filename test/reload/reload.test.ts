import { writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, TEST_WORKERS, type RunningBaton } from '../helpers/baton.js'
import { startLoad } from '../helpers/load.js'
import { adminJson, demoConfig, getPool, waitRollout } from '../helpers/pool.js'
import { present } from '../helpers/views.js'

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/**
 * Live reload (README "Admin API": POST /v1/reload, SIGHUP): applied as a diff in place
 * under continuous load — routes, a new listener, a new pool and a rollout —
 * with 0 failed requests; a bad file is refused whole.
 */
describe('live config reload', () => {
  let baton: RunningBaton | undefined
  let files: Backend | undefined
  afterEach(async () => {
    await baton?.kill('SIGKILL')
    await files?.kill()
    baton = undefined
    files = undefined
  })

  it('changes routes, adds a listener and a pool, and rolls out a pool, with 0 failed requests', async () => {
    const config = demoConfig({ size: 2, rollout: { minReady: '300ms' } })
    config.routes = [{ match: { pathPrefix: '/' }, pool: 'web' }]
    baton = await startBaton(config)
    files = await startBackend({ NAME: 'files' })
    const load = startLoad(baton.url, { keepAlive: 4, close: 2, posts: 2 })
    await new Promise(resolve => setTimeout(resolve, 500))
    const listenersBefore = baton.lines.filter(l => l.includes('"msg":"listening"')).length

    const port2 = await freePort()
    const next = structuredClone(config)
    next.listen.push({ port: port2, host: '127.0.0.1' })
    next.pools.files = { servers: [files.address] }
    next.routes = [{ match: { pathPrefix: '/static' }, pool: 'files' }, { match: { pathPrefix: '/' }, pool: 'web' }]
    next.pools.web.version = 'v2'
    writeFileSync(baton.configFile, stringify(next))
    const reloaded = await adminJson(baton.adminUrl, '/v1/reload', { method: 'POST' })
    expect(reloaded.status).toBe(200)
    expect(reloaded.body.rollouts).toHaveLength(1)
    const load2 = startLoad(`http://127.0.0.1:${port2}`, { keepAlive: 2 })
    const done = await waitRollout(baton.adminUrl, reloaded.body.rollouts[0])
    expect(done.status).toBe('succeeded')

    // The new route and pool answer on both listeners; the old listener was not reopened.
    for (const p of [baton.ports[0], port2]) {
      const res = await fetch(`http://127.0.0.1:${p}/static/a.css`)
      expect(res.headers.get('x-backend')).toBe('files')
    }
    // Each worker opened the new listener once; none reopened the old one.
    expect(baton.lines.filter(l => l.includes('"msg":"listening"')).length).toBe(listenersBefore + (TEST_WORKERS ?? 1))
    expect((await getPool(baton.adminUrl)).version).toBe('v2')

    // A bad file is refused whole, with its errors, and nothing changes.
    writeFileSync(baton.configFile, stringify({ ...next, proxy: { retries: -1 }, bogus: true }))
    const refused = await adminJson(baton.adminUrl, '/v1/reload', { method: 'POST' })
    expect(refused.status).toBe(400)
    expect(refused.body.error).toMatch(/nothing was changed/)
    expect(present(refused.body.problems, 'problems').join('\n')).toMatch(/bogus/)
    expect((await fetch(`${baton.url}/static/x`)).headers.get('x-backend')).toBe('files')

    // SIGHUP does the same as POST /v1/reload: here it drops the files route.
    writeFileSync(baton.configFile, stringify({ ...next, routes: [{ match: { pathPrefix: '/' }, pool: 'web' }] }))
    process.kill(baton.pid, 'SIGHUP')
    await baton.waitLine(l => { const changes = Array.isArray(l.changes) ? l.changes.map(String) : []; return l.msg === 'config reloaded' && changes.includes('routes applied') && !changes.some(c => c.includes('rollout')) }, 10_000)
    expect((await fetch(`${baton.url}/static/x`)).headers.get('x-app-version')).toBe('v2')

    const r1 = await load.stop()
    const r2 = await load2.stop()
    console.log(`reload: ${r1.sent + r2.sent} requests sent, ${r1.failed + r2.failed} failed`)
    expect([...r1.samples, ...r2.samples]).toEqual([])
    expect(r1.failed + r2.failed).toBe(0)
    expect(r2.sent).toBeGreaterThan(50)
  }, 90_000)
})
