import { afterEach, describe, expect, it } from 'vitest'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { startLoad } from '../helpers/load.js'
import { demoConfig, getPool, isAlive, waitPool } from '../helpers/pool.js'
import { present } from '../helpers/views.js'

/** G4: a crashed instance outside a rollout costs no GET and is restarted. */
describe('a crashed serving instance', () => {
  let baton: RunningBaton | undefined
  afterEach(async () => { await baton?.kill('SIGKILL'); baton = undefined })

  it('kill -9 under GET load: 0 failed GETs, the instance is replaced', async () => {
    baton = await startBaton(demoConfig({ size: 4 }))
    const before = await getPool(baton.adminUrl)
    const victim = before.instances[0]
    const load = startLoad(baton.url, { keepAlive: 8, close: 2, slow: 4, slowMs: 500 })
    await new Promise(resolve => setTimeout(resolve, 700))
    const victimPid = present(victim.pid, 'the victim\'s pid')
    process.kill(victimPid, 'SIGKILL')
    const after = await waitPool(baton.adminUrl, p =>
      p.instances.filter((i) => i.state === 'serving' && i.id !== victim.id).length === 4, 20_000)
    await new Promise(resolve => setTimeout(resolve, 700))
    const result = await load.stop()
    console.log(`kill -9: ${result.sent} GETs sent, ${result.failed} failed`)

    expect(result.samples).toEqual([])
    expect(result.failed).toBe(0)
    expect(isAlive(victimPid)).toBe(false)
    const failed = after.instances.find((i) => i.id === victim.id)
    expect(failed?.state).toBe('failed')
    expect(failed?.failure).toMatch(/SIGKILL/)
    expect(after.restarts).toBe(1)
    const metrics = await (await fetch(`${baton.adminUrl}/metrics`)).text()
    expect(metrics).toMatch(/baton_instances\{pool="web",version="v1",state="serving"\} 4/)
  }, 60_000)

  it('a crash loop backs off instead of spinning, and shows in status', async () => {
    // Every instance exits 300 ms after it starts, before it is ready.
    baton = await startBaton(demoConfig({ size: 1, readyDelayMs: 5000, env: { CRASH_AFTER: '300' }, readiness: { startTimeout: '3s' } }), { timeoutMs: 30_000 })
    const seen = new Set<string>()
    const until = Date.now() + 6000
    while (Date.now() < until) {
      const p = await getPool(baton.adminUrl)
      for (const i of p.instances) seen.add(i.id)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    const p = await getPool(baton.adminUrl)
    // Backoff 0.5+1+2+4 s: at most ~5 starts in 6 s after the first, not hundreds.
    expect(seen.size).toBeGreaterThanOrEqual(3)
    expect(seen.size).toBeLessThanOrEqual(7)
    expect(p.crashLoop).toBe(true)
    expect(p.restarts).toBeGreaterThanOrEqual(3)
  }, 60_000)
})
