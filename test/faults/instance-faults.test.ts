import { request, type ClientRequest } from 'node:http'
import { createServer, type Server } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { metric, waitFor } from '../helpers/http.js'
import { startLoad } from '../helpers/load.js'
import { demoConfig, getPool, isAlive, startRollout, waitPool, waitRollout } from '../helpers/pool.js'
import { present } from '../helpers/views.js'

/**
 * Sends GET /slow?ms=60000 through baton, one at a time, until each of the
 * pool's `n` instances has one in flight (round-robin puts one on each).
 * `settled()` lists those that ended other than by `abort()`.
 */
async function holdEveryInstance (url: string, adminUrl: string, n: number): Promise<{ settled: () => string[], abort: () => void }> {
  const reqs: ClientRequest[] = []
  const settled: string[] = []
  let aborting = false
  const inflight = async (): Promise<number[]> => (await getPool(adminUrl)).instances.map(i => i.inflight)
  for (let k = 0; k < 3 * n && (await inflight()).some(x => x === 0); k++) {
    const req = request(`${url}/slow?ms=60000`, { agent: false }, res => {
      settled.push(`hold ${k}: ${String(res.statusCode)}`)
      res.resume()
    })
    req.on('error', err => { if (!aborting) settled.push(`hold ${k}: ${err.message}`) })
    req.end()
    reqs.push(req)
    await waitFor(async () => (await inflight()).reduce((a, b) => a + b, 0) > k, 10_000)
  }
  expect(await inflight()).not.toContain(0)
  return { settled: () => settled, abort: () => { aborting = true; for (const r of reqs) r.destroy() } }
}

/** Faults of the app's instances during rollouts, each under GET load, counting every request. */
describe('faults during rollouts', () => {
  let baton: RunningBaton | undefined
  afterEach(async () => { await baton?.kill('SIGKILL'); baton = undefined })

  async function underLoad (body: () => Promise<void>): Promise<void> {
    const load = startLoad(baton!.url, { keepAlive: 6, close: 2, slow: 3, slowMs: 1500 })
    await new Promise(resolve => setTimeout(resolve, 300))
    try {
      await body()
    } finally {
      const r = await load.stop()
      console.log(`${expect.getState().currentTestName ?? ''}: ${r.sent} requests sent, ${r.failed} failed`)
      expect(r.samples).toEqual([])
      expect(r.failed).toBe(0)
    }
  }

  it('kill -9 of a new instance during its probe: rolled back, nothing lost', async () => {
    baton = await startBaton(demoConfig({ size: 3 }))
    await underLoad(async () => {
      const r = await startRollout(baton!.adminUrl, { version: 'v2', env: { READY_DELAY: '3000' } })
      const p = await waitPool(baton!.adminUrl, p => p.instances.some((i) => i.version === 'v2' && i.pid !== null))
      process.kill(present(p.instances.find(i => i.version === 'v2')?.pid, 'the pid of a v2 instance'), 'SIGKILL')
      const done = await waitRollout(baton!.adminUrl, r.id)
      expect(done.status).toBe('rolled_back')
      expect(done.error).toMatch(/SIGKILL/)
    })
    const p = await getPool(baton.adminUrl)
    expect(p.instances.filter((i) => i.state === 'serving' && i.version === 'v1')).toHaveLength(3)
  }, 60_000)

  it('kill -9 of an old instance while it drains slow requests: they are retried, the rollout goes on', async () => {
    // The state to reach, made to happen rather than caught: every v1
    // instance holds a request that outlasts any rollout step (60 s), so the
    // first v1 to drain is draining with it in flight until we kill it.
    const config = demoConfig({ size: 3, rollout: { drainTimeout: '90s' } })
    config.pools.web.balance = 'round-robin'
    baton = await startBaton(config)
    const holds = await holdEveryInstance(baton.url, baton.adminUrl, 3)
    try {
      await underLoad(async () => {
        const retriesBefore = await metric(baton!.adminUrl, 'baton_retries_total', { pool: 'web' })
        const r = await startRollout(baton!.adminUrl, { version: 'v2' })
        const p = await waitPool(baton!.adminUrl, p => p.instances.some(i => i.version === 'v1' && i.state === 'draining' && i.inflight > 0), 50_000)
        const victim = present(p.instances.find(i => i.version === 'v1' && i.state === 'draining'), 'a draining v1 instance')
        process.kill(present(victim.pid, 'its pid'), 'SIGKILL')
        // Its hold was reset before any answer byte: a GET, retried on another instance.
        await waitFor(async () => await metric(baton!.adminUrl, 'baton_retries_total', { pool: 'web' }) > retriesBefore, 10_000)
        await waitPool(baton!.adminUrl, p => !p.instances.some(i => i.id === victim.id && i.state === 'draining'))
        expect(holds.settled()).toEqual([])
        // The other v1 instances would drain for the rest of their hold: it has done its part.
        holds.abort()
        expect((await waitRollout(baton!.adminUrl, r.id)).status).toBe('succeeded')
      })
    } finally {
      holds.abort()
    }
  }, 60_000)

  it('an app that ignores SIGTERM is killed at stopTimeout', async () => {
    baton = await startBaton(demoConfig({ size: 2, env: { IGNORE_TERM: '1' }, rollout: { stopTimeout: '1s' } }))
    const old = (await getPool(baton.adminUrl)).instances.map(i => present(i.pid, 'a pid'))
    await underLoad(async () => {
      const r = await startRollout(baton!.adminUrl, { version: 'v2' })
      expect((await waitRollout(baton!.adminUrl, r.id)).status).toBe('succeeded')
    })
    for (const pid of old) expect(isAlive(pid)).toBe(false)
    expect(baton.lines.filter(l => l.includes('ignored its stop signal'))).toHaveLength(2)
  }, 60_000)

  it('an app that never closes its keep-alive connections still stops without SIGKILL', async () => {
    baton = await startBaton(demoConfig({ size: 2, env: { KEEP_SOCKETS: '1' }, rollout: { stopTimeout: '5s' } }))
    await underLoad(async () => {
      const t0 = Date.now()
      const r = await startRollout(baton!.adminUrl, { version: 'v2' })
      expect((await waitRollout(baton!.adminUrl, r.id)).status).toBe('succeeded')
      // baton closes its idle upstream sockets before the signal, so server.close() completes.
      expect(Date.now() - t0).toBeLessThan(10_000)
    })
    expect(baton.lines.filter(l => l.includes('ignored its stop signal'))).toHaveLength(0)
  }, 60_000)

  it('ports taken by a foreign process are skipped', async () => {
    const config = demoConfig({ size: 2 })
    const [from] = config.pools.web.process.ports.split('-').map(Number)
    // Take the ports right after the two the first instances get (one that
    // something else holds already is just as taken).
    const squatters: Server[] = []
    for (const port of [from + 2, from + 3]) {
      const s = await new Promise<Server | undefined>(resolve => {
        const srv = createServer()
        srv.once('error', () => resolve(undefined))
        srv.listen(port, '127.0.0.1', () => resolve(srv))
      })
      if (s !== undefined) squatters.push(s)
    }
    try {
      baton = await startBaton(config)
      await underLoad(async () => {
        const r = await startRollout(baton!.adminUrl, { version: 'v2' })
        expect((await waitRollout(baton!.adminUrl, r.id)).status).toBe('succeeded')
      })
      const ports = (await getPool(baton.adminUrl)).instances.map(i => Number(present(i.address, 'an address').split(':')[1]))
      expect(ports).not.toContain(from + 2)
      expect(ports).not.toContain(from + 3)
    } finally {
      for (const s of squatters) s.close()
    }
  }, 60_000)

  for (const [name, change, error] of [
    ['a command that cannot start', { command: 'no-such-binary-for-baton --flag' }, /could not start|exited/],
    ['a probe endpoint that hangs', { env: { READY_HANGS: '1' } }, /startTimeout/],
    ['a crash loop at start', { env: { CRASH_AFTER: '100', READY_DELAY: '2000' } }, /exited with code 1/]
  ] as const) {
    it(`${name}: rolled back with nothing lost`, async () => {
      baton = await startBaton(demoConfig({ size: 2, readiness: { timeout: '300ms', startTimeout: '2s' } }))
      await underLoad(async () => {
        const r = await startRollout(baton!.adminUrl, { version: 'v2', ...change })
        const done = await waitRollout(baton!.adminUrl, r.id)
        expect(done.status).toBe('rolled_back')
        expect(done.error).toMatch(error)
      })
      // A broken version is no port race: its start fails at once, never retried.
      expect(baton.lines.filter(l => l.includes('instance port was taken'))).toEqual([])
      const p = await getPool(baton.adminUrl)
      expect(p.instances.filter((i) => i.state === 'serving' && i.version === 'v1')).toHaveLength(2)
    }, 60_000)
  }
})
