import { afterEach, describe, expect, it } from 'vitest'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { startLoad } from '../helpers/load.js'
import { adminJson, demoConfig, getPool, startRollout, waitRollout } from '../helpers/pool.js'

/**
 * G3: a new version that never gets ready, or that crashes inside minReady,
 * fails the rollout; with onFailure: rollback the new instances are stopped,
 * the old revision serves at full size and clients see no failed request.
 */
describe('failed versions roll back by themselves', () => {
  let baton: RunningBaton | undefined
  afterEach(async () => { await baton?.kill('SIGKILL'); baton = undefined })

  const cases = [
    { name: 'never gets ready within startTimeout', env: { NEVER_READY: '1' }, startTimeout: '2s', readies: 0, error: /startTimeout/ },
    // Exits with code 1 one second after its first good probe, so always
    // while soaking in minReady (3 s), however long it took to start.
    { name: 'crashes inside minReady', env: { READY_DELAY: '200', CRASH_AFTER_READY: '1000' }, startTimeout: '20s', readies: 1, error: /exited with code 1/ }
  ]
  for (const c of cases) {
    it(`a version that ${c.name} is rolled back with 0 failed requests`, async () => {
      baton = await startBaton(demoConfig({
        size: 4,
        readiness: { startTimeout: c.startTimeout },
        rollout: { minReady: '3s', drainTimeout: '5s' }
      }))
      // GETs only: a crash cuts the requests in flight on that instance, and
      // only idempotent ones may be retried (G4); POST load is in the G1 test.
      const load = startLoad(baton.url, { keepAlive: 6, close: 3, slow: 2, slowMs: 1000 })
      await new Promise(resolve => setTimeout(resolve, 500))
      const r = await startRollout(baton.adminUrl, { version: 'v2', env: c.env })
      const done = await waitRollout(baton.adminUrl, r.id)
      await new Promise(resolve => setTimeout(resolve, 500))
      const result = await load.stop()
      console.log(`rollback (${c.name}): ${result.sent} requests sent, ${result.failed} failed; events: ${done.events.map((e) => e.message).join(' | ')}`)

      expect(done.status).toBe('rolled_back')
      expect(done.error).toMatch(c.error)
      // Never ready, or ready and then failed inside minReady:
      const v2Ready = baton.lines.filter(l => l.includes('"msg":"instance ready"') && l.includes('"version":"v2"'))
      expect(v2Ready).toHaveLength(c.readies)
      expect(result.samples).toEqual([])
      expect(result.failed).toBe(0)
      expect(result.sent).toBeGreaterThan(300)

      const pool = await getPool(baton.adminUrl)
      const live = pool.instances.filter((i) => i.state !== 'failed')
      expect(live).toHaveLength(4)
      expect(live.every((i) => i.state === 'serving' && i.version === 'v1')).toBe(true)
      expect(pool.version).toBe('v1')
      expect(pool.rollout).toBeNull()
      const metrics = await (await fetch(`${baton.adminUrl}/metrics`)).text()
      expect(metrics).toMatch(/baton_rollouts_total\{pool="web",result="rolled_back"\} 1/)
    }, 90_000)
  }

  it('with onFailure: pause, a failing rollout pauses and abort brings the old version back', async () => {
    baton = await startBaton(demoConfig({ size: 2, readiness: { startTimeout: '1500ms' }, rollout: { onFailure: 'pause' } }))
    const r = await startRollout(baton.adminUrl, { version: 'v2', env: { NEVER_READY: '1' } })
    const paused = await waitRollout(baton.adminUrl, r.id)
    expect(paused.status).toBe('paused')
    expect(paused.error).toMatch(/startTimeout/)
    // Old instances keep serving while paused.
    const res = await fetch(baton.url + '/')
    expect(res.status).toBe(200)
    expect(res.headers.get('x-app-version')).toBe('v1')
    const aborted = await adminJson(baton.adminUrl, `/v1/rollouts/${r.id}/abort`, { method: 'POST' })
    expect(aborted.status).toBe(200)
    const end = await waitRollout(baton.adminUrl, r.id)
    expect(end.status).toBe('aborted')
    const pool = await getPool(baton.adminUrl)
    expect(pool.instances.filter((i) => i.state === 'serving' && i.version === 'v1')).toHaveLength(2)
  }, 60_000)
})
