import { afterEach, describe, expect, it } from 'vitest'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { startLoad } from '../helpers/load.js'
import { demoConfig, startRollout, waitPool, waitRollout } from '../helpers/pool.js'

describe('slowStart and progressDeadline', () => {
  let baton: RunningBaton | undefined
  afterEach(async () => { await baton?.kill('SIGKILL'); baton = undefined })

  it('slowStart ramps a new instance\'s share of traffic', async () => {
    baton = await startBaton(demoConfig({ size: 1, rollout: { maxSurge: 1, slowStart: '4s', minReady: '6s' } }))
    const load = startLoad(baton.url, { keepAlive: 8 })
    const r = await startRollout(baton.adminUrl, { version: 'v2' })
    await waitPool(baton.adminUrl, p => p.instances.some((i) => i.version === 'v2' && i.state === 'serving'))
    const snap = (): Record<string, number> => ({ ...load.result.versions })
    const share = (a: Record<string, number>, b: Record<string, number>): number =>
      ((b.v2 ?? 0) - (a.v2 ?? 0)) / Math.max(1, ((b.v2 ?? 0) - (a.v2 ?? 0)) + ((b.v1 ?? 0) - (a.v1 ?? 0)))
    const s0 = snap()
    await new Promise(resolve => setTimeout(resolve, 1000))
    const s1 = snap()
    await new Promise(resolve => setTimeout(resolve, 3500))
    const s2 = snap()
    await new Promise(resolve => setTimeout(resolve, 1000))
    const s3 = snap()
    const early = share(s0, s1)
    const late = share(s2, s3)
    expect((await waitRollout(baton.adminUrl, r.id)).status).toBe('succeeded')
    const result = await load.stop()
    console.log(`slowStart: v2 share ${(early * 100).toFixed(1)}% in its first second, ${(late * 100).toFixed(1)}% after 4.5 s; ${result.sent} requests, ${result.failed} failed`)
    expect(result.failed).toBe(0)
    expect(early).toBeLessThan(0.3)
    expect(late).toBeGreaterThan(early + 0.1)
  }, 60_000)

  it('a rollout that makes no progress within progressDeadline is rolled back', async () => {
    baton = await startBaton(demoConfig({ size: 2, readiness: { startTimeout: '20s' }, rollout: { progressDeadline: '1500ms' } }))
    const t0 = Date.now()
    const r = await startRollout(baton.adminUrl, { version: 'v2', env: { READY_DELAY: '8000' } })
    const done = await waitRollout(baton.adminUrl, r.id)
    expect(done.status).toBe('rolled_back')
    expect(done.error).toMatch(/progressDeadline/)
    expect(Date.now() - t0).toBeLessThan(7000)
  }, 60_000)
})
