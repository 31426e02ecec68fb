import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SseParser, type SseMessage } from '../../src/cli/sse.js'
import { adminApi, demoPool, finished, settledOn, type AdminApi } from '../helpers/admin.js'
import { claimPortRange } from '../helpers/ports.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { config, metric, waitFor } from '../helpers/http.js'
import { present } from '../helpers/views.js'
import type { EventData } from '../helpers/views.js'

// README "Admin API": pools, rollouts (202, G5's 409, 400 on bad bodies), the rollout
// record, GET /v1/events during a rollout, and the rollout metrics (README "Metrics").

/** Records GET /v1/events; `ready` resolves once the stream is open. */
async function subscribe (adminUrl: string): Promise<{ messages: SseMessage[], close: () => void }> {
  const ac = new AbortController()
  const res = await fetch(`${adminUrl}/v1/events`, { signal: ac.signal })
  expect(res.status).toBe(200)
  const messages: SseMessage[] = []
  const parser = new SseParser()
  const decoder = new TextDecoder()
  void (async () => {
    try {
      for await (const chunk of res.body!) messages.push(...parser.push(decoder.decode(chunk, { stream: true })))
    } catch { /* aborted */ }
  })()
  return { messages, close: () => ac.abort() }
}

describe('admin API: pools and rollouts', () => {
  let baton: RunningBaton
  let api: AdminApi
  const ports = claimPortRange()
  const [from, to] = ports.split('-').map(Number)

  beforeAll(async () => {
    baton = await startBaton(config({ web: demoPool(ports) }))
    api = adminApi(baton.adminUrl)
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
  })

  it('lists pools and shows one, with their instances', async () => {
    const all = await api.get('/v1/pools')
    expect(all.status).toBe(200)
    expect(all.body.pools).toHaveLength(1)
    const web = all.body.pools[0]
    expect(web).toMatchObject({ name: 'web', revision: 1, version: 'v1', size: 2, rollout: null })
    expect(web.instances).toHaveLength(2)
    for (const i of web.instances) {
      expect(i).toMatchObject({ version: 'v1', revision: 1, state: 'serving', inflight: 0 })
      expect(i.id).toMatch(/^web-1-/)
      expect(i.address).toMatch(/^127\.0\.0\.1:\d+$/)
      const port = Number(present(i.address, 'an address').split(':')[1])
      expect(port >= from && port <= to).toBe(true)
      expect(typeof i.pid).toBe('number')
      expect(typeof i.requests).toBe('number')
      expect(Number.isNaN(Date.parse(i.startedAt))).toBe(false)
    }
    const one = await api.get('/v1/pools/web')
    expect(one.status).toBe(200)
    expect(one.body).toMatchObject({ name: 'web', revision: 1, version: 'v1', size: 2, rollout: null })
    const unknown = await api.get('/v1/pools/nope')
    expect(unknown.status).toBe(404)
    expect(unknown.body).toEqual({ error: 'no pool named "nope"', code: 'BATON_ERR_POOL_NOT_FOUND' })
  })

  it('answers a path that is not valid percent-encoding with a 400, not a logged 500', async () => {
    for (const path of ['/v1/pools/%E0', '/v1/rollouts/%zz', '/v1/pools/%E0/rollouts']) {
      const method = path.endsWith('rollouts') ? 'POST' : 'GET'
      const r = await api.call(method, path)
      expect(r.status, path).toBe(400)
      expect(r.body, path).toEqual({ error: `the path ${path} is not valid percent-encoding`, code: 'BATON_ERR_ADMIN_BAD_PATH' })
    }
    expect(baton.lines.some(l => l.includes('admin request failed'))).toBe(false)
    expect((await api.get('/v1/pools/web')).status).toBe(200)
  })

  it('refuses bad rollout bodies with a 400 naming the field, and starts nothing', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ foo: 1 }, /^bad request body: foo: unknown field$/],
      [{ version: 'v2', strategy: { maxSurge: 'abc' } }, /strategy\.maxSurge: expected a count or a percentage/],
      [{ strategy: { minReady: 'soon' } }, /strategy\.minReady: "soon" is not a duration/],
      [{ strategy: { surge: 1 } }, /strategy\.surge: unknown field/],
      [{ strategy: { onFailure: 'explode' } }, /strategy\.onFailure: expected rollback or pause/],
      [{ strategy: { strategy: 'linear' } }, /strategy\.strategy: expected rolling, canary or blueGreen/],
      [{ strategy: { canary: { steps: [{ weight: 200, pause: '1s' }] } } }, /strategy\.canary\.steps\.0\.weight: must be 0-100/],
      [{ strategy: { canary: { steps: [{ weight: 50, pause: '1s' }, { weight: 10, pause: 'soon' }] } } }, /strategy\.canary\.steps\.1\.pause: "soon" is neither a duration/],
      [{ strategy: { canary: { steps: [{ weight: 50, pause: '1s' }, { weight: 10, pause: '1s' }] } } }, /strategy\.canary\.steps\.1\.weight: weights must not go down/],
      [{ strategy: { canary: { steps: [{ weight: 5, pause: '1s' }], analysis: { maxErrorRate: 0.01 } } } }, /strategy\.canary\.analysis\.maxErrorRate: a bare number is ambiguous: write 0\.01%/],
      // The pool has no canary steps of its own to fall back on.
      [{ strategy: { strategy: 'canary' } }, /^bad request body: strategy: a canary needs canary\.steps, and pool "web" has none in its config$/],
      [{ env: { A: { b: 1 } } }, /env\.A/],
      [{ version: '' }, /version/],
      [[1, 2], /bad request body/],
      // The pool has maxUnavailable 0: with maxSurge 0 nothing could ever move.
      [{ strategy: { maxSurge: 0 } }, /^bad request body: strategy: maxSurge 0 with maxUnavailable 0 for 2 instance\(s\): the rollout could never move$/],
      [{ strategy: { maxSurge: '0%', maxUnavailable: '49%' } }, /the rollout could never move/]
    ]
    for (const [body, error] of cases) {
      const r = await api.post('/v1/pools/web/rollouts', body)
      expect(r.status, JSON.stringify(body)).toBe(400)
      expect(r.body.error, JSON.stringify(body)).toMatch(error)
    }
    const notJson = await api.call('POST', '/v1/pools/web/rollouts', { raw: '{"version": "v2",' })
    expect(notJson.status).toBe(400)
    expect(notJson.body).toEqual({ error: 'the request body is not valid JSON', code: 'BATON_ERR_ADMIN_BAD_JSON' })
    const huge = await api.call('POST', '/v1/pools/web/rollouts', { raw: JSON.stringify({ version: 'x'.repeat(200_000) }) })
    expect(huge.status).toBe(413)
    expect(huge.body.error).toMatch(/over 65536 bytes/)
    expect(huge.headers.get('connection')).toBe('close') // the rest of that body is never read
    const unknownPool = await api.post('/v1/pools/nope/rollouts', { version: 'v2' })
    expect(unknownPool.status).toBe(404)
    expect((await api.get('/v1/rollouts/web-9-000000')).status).toBe(404)
    expect((await api.get('/v1/rollouts/web-9-000000')).body).toEqual({ error: 'no rollout with id "web-9-000000"', code: 'BATON_ERR_ROLLOUT_NOT_FOUND' })
    // Nothing was started by any of these.
    expect((await api.get('/v1/pools/web')).body).toMatchObject({ revision: 1, version: 'v1', rollout: null })
    expect(await metric(baton.adminUrl, 'baton_rollouts_total')).toBe(0)
  })

  it('runs a rollout: 202, 409 while it runs (G5), events, succeeded, metrics', async () => {
    const events = await subscribe(baton.adminUrl)
    try {
      const r = await api.post('/v1/pools/web/rollouts', { version: 'v2', env: { EXTRA: 'yes' } })
      expect(r.status).toBe(202)
      const id: string = r.body.id
      expect(r.body).toMatchObject({ pool: 'web', fromRevision: 1, toRevision: 2, status: 'running', total: 2, finishedAt: null, error: null })
      expect(id).toMatch(/^web-2-/)
      expect(r.body.events[0].message).toMatch(/started/)
      expect(await metric(baton.adminUrl, 'baton_rollout_in_progress', { pool: 'web' })).toBe(1)
      expect((await api.get('/v1/pools/web')).body.rollout).toBe(id)

      // G5: one at a time, whatever the second asks for.
      for (const body of [{ version: 'v3' }, {}]) {
        const again = await api.post('/v1/pools/web/rollouts', body)
        expect(again.status).toBe(409)
        expect(again.body).toEqual({ error: `a rollout (${id}) is already running in pool "web"`, code: 'BATON_ERR_ROLLOUT_RUNNING' })
      }
      expect((await api.post('/v1/pools/web/rollback')).status).toBe(409)

      const done = await api.waitRollout(id, finished)
      expect(done).toMatchObject({ id, status: 'succeeded', updated: 2, total: 2, error: null })
      expect(Date.parse(present(done.finishedAt, 'finishedAt'))).toBeGreaterThanOrEqual(Date.parse(done.startedAt))
      expect(done.events.at(-1)?.message).toBe('succeeded')
      for (const e of done.events) expect(Number.isNaN(Date.parse(e.at))).toBe(false)

      const pool = await api.waitPool('web', settledOn('v2'))
      expect(pool).toMatchObject({ revision: 2, version: 'v2' })
      const answer = await (await fetch(baton.url)).json() as { version: string }
      expect(answer.version).toBe('v2')

      // The stream carried the instances' lives and the rollout's progress.
      type Seen = EventData & { event: string }
      const seen = await waitFor((): Seen[] | false => {
        const parsed = events.messages.map(m => ({ event: m.event, ...JSON.parse(m.data) as EventData }))
        return parsed.some(e => e.event === 'rollout' && e.status === 'succeeded') && parsed.filter(e => e.event === 'instance' && e.state === 'stopped').length >= 2 && parsed
      }, 10_000)
      const instanceEvents = seen.filter(e => e.event === 'instance')
      for (const e of instanceEvents) expect(e).toMatchObject({ type: 'instance', pool: 'web' })
      expect(instanceEvents.filter(e => e.version === 'v2' && e.state === 'starting')).toHaveLength(2)
      expect(instanceEvents.filter(e => e.version === 'v2' && e.state === 'serving')).toHaveLength(2)
      expect(instanceEvents.filter(e => e.version === 'v1' && e.state === 'draining')).toHaveLength(2)
      expect(instanceEvents.filter(e => e.version === 'v1' && e.state === 'stopped')).toHaveLength(2)
      const rolloutEvents = seen.filter(e => e.event === 'rollout')
      for (const e of rolloutEvents) expect(e).toMatchObject({ type: 'rollout', pool: 'web', rollout: id, total: 2 })
      expect(rolloutEvents.at(-1)).toMatchObject({ status: 'succeeded', message: 'succeeded', updated: 2 })
    } finally {
      events.close()
    }

    expect(await metric(baton.adminUrl, 'baton_rollouts_total', { pool: 'web', result: 'succeeded' })).toBe(1)
    expect(await metric(baton.adminUrl, 'baton_rollout_in_progress', { pool: 'web' })).toBe(0)
    expect(await metric(baton.adminUrl, 'baton_instances', { pool: 'web', version: 'v2', state: 'serving' })).toBe(2)
    expect(await metric(baton.adminUrl, 'baton_instances', { pool: 'web', version: 'v1' })).toBe(0)
  })

  it('applies a body\'s strategy to that rollout: maxSurge 2 starts both new instances at once', async () => {
    const r = await api.post('/v1/pools/web/rollouts', { version: 'v3', strategy: { maxSurge: 2 } })
    expect(r.status).toBe(202)
    const starting = await api.waitPool('web', p => p.instances.filter((i) => i.version === 'v3').length === 2)
    expect(starting.instances.filter((i) => i.version === 'v2' && i.state === 'serving')).toHaveLength(2)
    expect((await api.waitRollout(r.body.id, finished)).status).toBe('succeeded')
    await api.waitPool('web', settledOn('v3'))
  })
})
