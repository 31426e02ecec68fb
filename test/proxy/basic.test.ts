import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'

describe('proxying to a static pool', () => {
  let backends: Backend[]
  let baton: RunningBaton
  beforeAll(async () => {
    backends = await Promise.all([startBackend({ NAME: 'a' }), startBackend({ NAME: 'b' })])
    baton = await startBaton({
      listen: [{ port: 0, host: '127.0.0.1' }],
      admin: { listen: '127.0.0.1:0' },
      pools: { web: { servers: backends.map(b => b.address), balance: 'round-robin' } }
    })
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await Promise.all(backends.map(async b => await b.kill()))
  })

  it('forwards method, path, query and body, and balances over both servers', async () => {
    const names = new Set<string>()
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${baton.url}/echo?i=${i}`, { method: 'POST', body: 'x'.repeat(100) })
      expect(res.status).toBe(200)
      const body = await res.json() as { name: string, url: string, method: string, size: number }
      expect(body).toMatchObject({ url: `/echo?i=${i}`, method: 'POST', size: 100 })
      names.add(body.name)
    }
    expect([...names].sort()).toEqual(['a', 'b'])
  })

  it('answers /healthz on the admin API', async () => {
    const res = await fetch(`${baton.adminUrl}/healthz`)
    // SPEC §7: which baton answers: its version, generation and serving controller.
    const body = await res.json() as { status: string, version: string, generation: number, pid: number }
    expect(body).toEqual({ status: 'ok', version: expect.stringMatching(/^\d+\.\d+\.\d+/), generation: 1, pid: expect.any(Number) })
    expect(body.pid).not.toBe(baton.pid)
  })
})
