import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { startBaton } from '../helpers/baton.js'
import { demoConfig, getPool, isAlive } from '../helpers/pool.js'
import { present } from '../helpers/views.js'

/** After baton dies by SIGKILL, the next start finds the instances it left and stops them. */
describe('instances left by a killed baton', () => {
  it('are found through the state file and stopped by the next start', async () => {
    const first = await startBaton(demoConfig({ size: 2 }))
    const orphans = (await getPool(first.adminUrl)).instances.map(i => present(i.pid, 'a pid'))
    expect(orphans).toHaveLength(2)
    await first.killKeepingInstances()
    // Their own process groups keep them alive after baton is gone.
    for (const pid of orphans) expect(isAlive(pid)).toBe(true)

    // Same config text at the same path: the state file is keyed by the config's path.
    const second = await startBaton(readFileSync(first.configFile, 'utf8'), { dir: first.dir })
    try {
      for (const pid of orphans) expect(isAlive(pid)).toBe(false)
      expect(second.lines.filter(l => l.includes('stopping an instance left by an earlier run'))).toHaveLength(2)
      const pool = await getPool(second.adminUrl)
      expect(pool.instances.filter((i) => i.state === 'serving')).toHaveLength(2)
      expect(pool.instances.every(i => i.pid === null || !orphans.includes(i.pid))).toBe(true)
      const res = await fetch(second.url + '/')
      expect(res.status).toBe(200)
    } finally {
      expect(await second.kill('SIGTERM')).toBe(0)
    }
  }, 60_000)
})
