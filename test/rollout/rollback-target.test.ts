import { afterEach, describe, expect, it } from 'vitest'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { adminJson, demoConfig, getPool, startRollout, waitRollout } from '../helpers/pool.js'

describe('rollback to the previous revision', () => {
  let baton: RunningBaton | undefined
  afterEach(async () => { await baton?.kill('SIGKILL'); baton = undefined })

  it('skips a revision that was rolled back and never served', async () => {
    baton = await startBaton(demoConfig({ size: 1, readiness: { startTimeout: '1500ms' }, rollout: { minReady: '200ms' } }))
    const run = async (body: Record<string, unknown>): Promise<string> =>
      (await waitRollout(baton!.adminUrl, (await startRollout(baton!.adminUrl, body)).id)).status
    expect(await run({ version: 'v2' })).toBe('succeeded')
    expect(await run({ version: 'v3', env: { NEVER_READY: '1' } })).toBe('rolled_back')
    expect(await run({ version: 'v4', env: { NEVER_READY: '0' } })).toBe('succeeded')
    const r = await adminJson(baton.adminUrl, '/v1/pools/web/rollback', { method: 'POST' })
    expect(r.status).toBe(202)
    expect(r.body.toVersion).toBe('v2')
    expect((await waitRollout(baton.adminUrl, r.body.id)).status).toBe('succeeded')
    expect((await getPool(baton.adminUrl)).version).toBe('v2')
  }, 60_000)
})
