import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminApi, demoPool, finished, settledOn, type AdminApi } from '../helpers/admin.js'
import { claimPortRange } from '../helpers/ports.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { config, metric, sleep } from '../helpers/http.js'

// README "Admin API": pause, resume and abort of the current rollout, and
// POST /v1/pools/NAME/rollback to the previous revision.

describe('admin API: controlling rollouts', () => {
  let baton: RunningBaton
  let api: AdminApi

  beforeAll(async () => {
    const [lo] = claimPortRange(100).split('-').map(Number)
    baton = await startBaton(config({
      web: demoPool(`${lo}-${lo + 49}`),
      // A pool that pauses instead of rolling back on failure.
      careful: demoPool(`${lo + 50}-${lo + 99}`, { readiness: { startTimeout: '2s' }, rollout: { onFailure: 'pause' } })
    }, { routes: [{ match: { host: 'careful.test' }, pool: 'careful' }, { match: { pathPrefix: '/' }, pool: 'web' }] }))
    api = adminApi(baton.adminUrl)
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
  })

  async function version (): Promise<string> {
    return ((await (await fetch(baton.url)).json()) as { version: string }).version
  }

  it('refuses a rollback without a previous revision (409) and of an unknown pool (404)', async () => {
    const r = await api.post('/v1/pools/web/rollback')
    expect(r.status).toBe(409)
    expect(r.body).toEqual({ error: 'pool "web" has no previous revision to roll back to', code: 'BATON_ERR_NO_PREVIOUS_REVISION' })
    expect((await api.post('/v1/pools/nope/rollback')).status).toBe(404)
    for (const action of ['pause', 'resume', 'abort']) {
      const c = await api.post(`/v1/rollouts/web-2-000000/${action}`)
      expect(c.status).toBe(404)
      expect(c.body.error).toBe('no rollout with id "web-2-000000"')
    }
  })

  it('pauses a rollout (nothing more is replaced) and resumes it to the end', async () => {
    const r = await api.post('/v1/pools/web/rollouts', { version: 'v2', env: { READY_DELAY: '800' } })
    expect(r.status).toBe(202)
    const id: string = r.body.id
    const paused = await api.post(`/v1/rollouts/${id}/pause`)
    expect(paused.status).toBe(200)
    expect(paused.body).toMatchObject({ id, status: 'paused', error: null })
    expect(paused.body.events.at(-1)?.message).toBe('paused')
    expect((await api.post(`/v1/rollouts/${id}/pause`)).body.status).toBe('paused')

    // The instance already on its way comes up, but no old one is drained while paused.
    await api.waitPool('web', p => p.instances.some((i) => i.version === 'v2' && i.state === 'serving'))
    await sleep(1_000) // well past minReady (300ms): a running rollout would have drained a v1 by now
    const held = (await api.get('/v1/pools/web')).body
    expect(held.rollout).toBe(id)
    expect(held.instances.filter((i) => i.version === 'v1' && i.state === 'serving')).toHaveLength(2)
    expect((await api.get(`/v1/rollouts/${id}`)).body.status).toBe('paused')

    const resumed = await api.post(`/v1/rollouts/${id}/resume`)
    expect(resumed.status).toBe(200)
    expect(resumed.body.status).toBe('running')
    expect((await api.waitRollout(id, finished)).status).toBe('succeeded')
    await api.waitPool('web', settledOn('v2'))
    expect(await version()).toBe('v2')

    for (const action of ['pause', 'resume', 'abort']) {
      const late = await api.post(`/v1/rollouts/${id}/${action}`)
      expect(late.status).toBe(409)
      expect(late.body).toEqual({ error: `rollout ${id} has finished (succeeded)`, code: 'BATON_ERR_ROLLOUT_FINISHED' })
    }
  })

  it('aborts a rollout: it ends aborted with the old version serving at full size', async () => {
    const r = await api.post('/v1/pools/web/rollouts', { version: 'v3', env: { READY_DELAY: '1500' } })
    expect(r.status).toBe(202)
    const id: string = r.body.id
    const aborted = await api.post(`/v1/rollouts/${id}/abort`)
    expect(aborted.status).toBe(200)
    expect(aborted.body.direction).toBe('back')
    const done = await api.waitRollout(id, finished)
    expect(done.status).toBe('aborted')
    expect(done.events.map((e) => e.message)).toContain('aborted: rolling back to revision 2 (v2)')
    const pool = await api.waitPool('web', settledOn('v2'))
    expect(pool).toMatchObject({ revision: 2, version: 'v2', rollout: null })
    expect(await version()).toBe('v2')
    expect(await metric(baton.adminUrl, 'baton_rollouts_total', { pool: 'web', result: 'aborted' })).toBe(1)
    expect(await metric(baton.adminUrl, 'baton_rollout_in_progress', { pool: 'web' })).toBe(0)
  })

  it('rolls a pool back to its previous revision', async () => {
    const r = await api.post('/v1/pools/web/rollback')
    expect(r.status).toBe(202)
    expect(r.body).toMatchObject({ pool: 'web', fromRevision: 2, toRevision: 1, status: 'running' })
    expect((await api.post('/v1/pools/web/rollback')).status).toBe(409) // one at a time (G5)
    expect((await api.waitRollout(r.body.id, finished)).status).toBe('succeeded')
    const pool = await api.waitPool('web', settledOn('v1'))
    expect(pool).toMatchObject({ revision: 1, version: 'v1' })
    expect(await version()).toBe('v1')
  })

  it('keeps the pool\'s onFailure: pause when a body overrides only maxSurge', async () => {
    const r = await api.post('/v1/pools/careful/rollouts', { version: 'bad', env: { NEVER_READY: '1' }, strategy: { maxSurge: 1 } })
    expect(r.status).toBe(202)
    const stuck = await api.waitRollout(r.body.id, v => v.status !== 'running')
    expect(stuck.status).toBe('paused')
    expect(stuck.error).toMatch(/not ready within startTimeout/)
    const pool = (await api.get('/v1/pools/careful')).body
    expect(pool.instances.filter((i) => i.version === 'v1' && i.state === 'serving')).toHaveLength(2)
    expect((await api.post(`/v1/rollouts/${r.body.id}/abort`)).status).toBe(200)
    expect((await api.waitRollout(r.body.id, finished)).status).toBe('aborted')
    await api.waitPool('careful', settledOn('v1'))
  })
})
