import { describe, expect, it } from 'vitest'
import { startBaton } from '../helpers/baton.js'
import { demoConfig, getPool, isAlive } from '../helpers/pool.js'
import { present } from '../helpers/views.js'

/** G6: SIGTERM/SIGINT to baton: stop accepting, finish in-flight requests, stop the instances, exit 0. */
describe('graceful stop of baton itself', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: in-flight requests finish, instances stop, exit 0`, async () => {
      const baton = await startBaton(demoConfig({ size: 2 }))
      const pids = (await getPool(baton.adminUrl)).instances.map(i => present(i.pid, 'a pid'))
      expect(pids).toHaveLength(2)
      const slow = Array.from({ length: 4 }, async () => await fetch(`${baton.url}/slow?ms=1500`).then(async r => ({ status: r.status, text: await r.text() })))
      await new Promise(resolve => setTimeout(resolve, 300))
      const t0 = Date.now()
      const exited = baton.kill(signal)
      // New connections are refused soon after the signal.
      let refused = false
      for (let i = 0; i < 50 && !refused; i++) {
        await new Promise(resolve => setTimeout(resolve, 50))
        refused = await fetch(`${baton.url}/`, { headers: { connection: 'close' } }).then(() => false, () => true)
      }
      const answers = await Promise.all(slow)
      expect(answers.every(a => a.status === 200 && a.text.startsWith('slow answer'))).toBe(true)
      expect(refused).toBe(true)
      expect(await exited).toBe(0)
      expect(Date.now() - t0).toBeLessThan(10_000)
      for (const pid of pids) expect(isAlive(pid)).toBe(false)
      expect(baton.lines.some(l => l.includes('"baton stopped"'))).toBe(true)
    }, 60_000)
  }
})
