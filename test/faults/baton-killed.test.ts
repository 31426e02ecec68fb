import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { startBaton } from '../helpers/baton.js'
import { demoConfig, getPool, isAlive, startRollout, waitPool } from '../helpers/pool.js'

describe('baton itself SIGKILLed mid-rollout', () => {
  it('starts again with no orphans and the pool at size on one consistent revision', async () => {
    const first = await startBaton(demoConfig({ size: 3, rollout: { minReady: '2s' } }))
    await startRollout(first.adminUrl, { version: 'v2' })
    // Mid-rollout: some v2 instance is up while v1 ones still serve.
    const mid = await waitPool(first.adminUrl, p =>
      p.instances.some((i) => i.version === 'v2' && i.state === 'serving') &&
      p.instances.some((i) => i.version === 'v1' && i.state === 'serving'))
    const pids: number[] = mid.instances.map((i) => i.pid).filter((p: number | null) => p !== null)
    await first.killKeepingInstances()

    const second = await startBaton(readFileSync(first.configFile, 'utf8'), { dir: first.dir })
    try {
      for (const pid of pids) expect(isAlive(pid)).toBe(false)
      const p = await getPool(second.adminUrl)
      const serving = p.instances.filter((i) => i.state === 'serving')
      expect(serving).toHaveLength(3)
      // The config says v1: the new run is on v1 only, one revision.
      expect(new Set(p.instances.map((i) => `${String(i.version)}/${String(i.revision)}`))).toEqual(new Set(['v1/1']))
      expect((await fetch(second.url + '/')).status).toBe(200)
    } finally {
      expect(await second.kill('SIGTERM')).toBe(0)
    }
  }, 60_000)
})
