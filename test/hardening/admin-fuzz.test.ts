import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { demoConfig, getPool } from '../helpers/pool.js'

/**
 * Admin request bodies from fast-check: never a 500 or a crash, always a
 * JSON error naming what is wrong, and a refused request changes nothing.
 */
describe('admin API bodies, fuzzed', () => {
  let baton: RunningBaton
  beforeAll(async () => { baton = await startBaton(demoConfig({ size: 1, readiness: { startTimeout: '2s' } })) })
  afterAll(async () => { expect(await baton.kill()).toBe(0) })

  const field = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string()), fc.dictionary(fc.string(), fc.string()))
  const body = fc.oneof(
    fc.string().map(s => ({ raw: s })),
    fc.json().map(s => ({ raw: s })),
    fc.record({
      version: fc.option(field),
      env: fc.option(fc.oneof(field, fc.dictionary(fc.string(), field))),
      command: fc.option(field),
      strategy: fc.option(fc.oneof(field, fc.record({ maxSurge: field, maxUnavailable: field, minReady: field, drainTimeout: field }, { requiredKeys: [] }))),
      bogus: fc.option(field)
    }, { requiredKeys: [] }).map(o => ({ raw: JSON.stringify(o) }))
  )

  it('never answers 500, and a refused request changes nothing', async () => {
    let refused = 0
    let accepted = 0
    await fc.assert(fc.asyncProperty(body, async ({ raw }) => {
      const before = await getPool(baton.adminUrl)
      const res = await fetch(`${baton.adminUrl}/v1/pools/web/rollouts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw })
      const text = await res.text()
      expect([202, 400, 409, 413]).toContain(res.status)
      const json = JSON.parse(text)
      if (res.status === 202) {
        accepted++
        // Keep the pool as it was for the next run: abort what was just started.
        await fetch(`${baton.adminUrl}/v1/rollouts/${json.id as string}/abort`, { method: 'POST' })
        return
      }
      refused++
      expect(typeof json.error).toBe('string')
      expect(json.error.length).toBeGreaterThan(5)
      expect(json.error).not.toMatch(/\n|at .*\.js:\d+/) // one sentence, no stack trace
      const after = await getPool(baton.adminUrl)
      if (res.status === 400 || res.status === 413) expect(after.revisions).toEqual(before.revisions)
    }), { numRuns: 150 })
    console.log(`admin fuzz: ${refused} refused, ${accepted} accepted (then aborted)`)
    expect(refused).toBeGreaterThan(50)
    expect((await fetch(`${baton.adminUrl}/healthz`)).status).toBe(200)
  }, 120_000)
})
