import { Agent } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, writeConfig, type RunningBaton } from '../helpers/baton.js'
import { config, deadPort, instances, metric, send, sleep, waitFor } from '../helpers/http.js'
import { startLoad } from '../helpers/load.js'

// Static pools: with `readiness`, a server takes traffic only while its
// active check passes; passive ejection takes out a server after consecutive
// connect errors or 5xx, never more than half of the pool.

type Stats = { total: number, paths: Record<string, number> }
const stats = async (b: Backend): Promise<Stats> => await (await fetch(`http://${b.address}/admin/stats`)).json() as Stats

/** `n` requests one after the other; `agent`: on one keep-alive connection, so one worker's balancer sees them all. */
async function whoami (url: string, n: number, agent: Agent | false = false): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  for (let i = 0; i < n; i++) {
    const r = await send(`${url}/whoami`, { agent })
    const key = r.status === 200 ? r.text : `status ${r.status}`
    counts[key] = (counts[key] ?? 0) + 1
  }
  return counts
}

describe('active health checks (readiness)', () => {
  let a: Backend
  let b: Backend
  let baton: RunningBaton
  let dead: number
  beforeAll(async () => {
    [a, b] = await Promise.all([startBackend({ NAME: 'a' }), startBackend({ NAME: 'b', NOT_READY: '1' })])
    dead = await deadPort()
    baton = await startBaton(config({
      web: {
        servers: [a.address, b.address, `127.0.0.1:${dead}`],
        balance: 'round-robin',
        readiness: { path: '/ready', interval: '100ms', timeout: '500ms', successThreshold: 2, failureThreshold: 2 }
      },
      // Its check answers 200 at once but takes 3 s to finish: past the timeout, so a failure.
      trickle: { servers: [a.address], readiness: { path: '/trickle?ms=3000', interval: '100ms', timeout: '500ms', failureThreshold: 1 } }
    }, { routes: [{ match: { host: 'trickle.test' }, pool: 'trickle' }, { match: { pathPrefix: '/' }, pool: 'web' }] }))
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await Promise.all([a.kill(), b.kill()])
  })

  const stateOf = async (address: string): Promise<string | undefined> =>
    (await instances(baton.adminUrl, 'web')).find(i => i.address === address)?.state

  it('sends nothing to a server whose readiness fails, or that is down', async () => {
    expect(await stateOf(a.address)).toBe('serving')
    expect(await stateOf(b.address)).not.toBe('serving')
    expect(await whoami(baton.url, 20)).toEqual({ a: 20 })
    expect((await stats(b)).total).toBe(0)
    expect(await metric(baton.adminUrl, 'baton_upstream_errors_total', { pool: 'web' })).toBe(0)
  })

  it('fails a check that does not finish within its timeout, even if bytes keep coming; an empty pool answers 503', async () => {
    expect((await instances(baton.adminUrl, 'trickle'))[0].state).toBe('failed')
    // A pool with no healthy server answers 503 at once, with Retry-After.
    const r = await send(`${baton.url}/whoami`, { headers: { host: 'trickle.test' } })
    expect(r.status).toBe(503)
    expect(r.headers['retry-after']).toBe('1')
    expect(r.text).toBe('baton: no instance of pool trickle is available\n')
  })

  it('puts a server in once it becomes ready', async () => {
    await fetch(`http://${b.address}/admin/ready`)
    await waitFor(async () => await stateOf(b.address) === 'serving', 5_000)
    // On one client connection: one proxy worker's round-robin, whatever the worker count.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    expect(await whoami(baton.url, 20, agent)).toEqual({ a: 10, b: 10 })
    agent.destroy()
  })

  it('takes a server out once it turns unready, with no failed request meanwhile', async () => {
    await fetch(`http://${a.address}/admin/unready`)
    const seen: Record<string, number> = {}
    // Requests keep flowing while the check notices.
    await waitFor(async () => {
      const batch = await whoami(baton.url, 4)
      for (const [k, v] of Object.entries(batch)) seen[k] = (seen[k] ?? 0) + v
      return await stateOf(a.address) !== 'serving'
    }, 5_000, 0)
    expect(Object.keys(seen).every(k => k === 'a' || k === 'b'), JSON.stringify(seen)).toBe(true)
    const before = (await stats(a)).paths['/whoami']
    expect(await whoami(baton.url, 20)).toEqual({ b: 20 })
    expect((await stats(a)).paths['/whoami']).toBe(before)
  })
})

describe('passive ejection', () => {
  let failing: Backend
  let good: Backend
  let baton: RunningBaton
  beforeAll(async () => {
    [failing, good] = await Promise.all([startBackend({ NAME: 'failing', STATUS: '500' }), startBackend({ NAME: 'good' })])
    baton = await startBaton(config({ web: { servers: [failing.address, good.address], balance: 'round-robin' } }))
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await Promise.all([failing.kill(), good.kill()])
  })

  it('ejects a server after 5 consecutive 5xx answers', async () => {
    // Ejection is each worker's own (SPEC §6): one connection, one worker.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const statuses: Record<number, number> = {}
    for (let i = 0; i < 30; i++) {
      const r = await send(`${baton.url}/echo`, { agent })
      statuses[r.status] = (statuses[r.status] ?? 0) + 1
    }
    agent.destroy()
    // 5xx answers are passed on (the request was answered), then the server is out.
    expect(statuses).toEqual({ 200: 25, 500: 5 })
    const ejected = baton.lines.filter(l => l.includes('"upstream ejected"'))
    expect(ejected).toHaveLength(1)
    expect(ejected[0]).toContain(failing.address)
  })
})

describe('passive ejection never takes out more than half of a pool', () => {
  let live: Backend
  let baton: RunningBaton
  let deads: string[]
  beforeAll(async () => {
    live = await startBackend({ NAME: 'live' })
    deads = []
    for (let i = 0; i < 3; i++) deads.push(`127.0.0.1:${await deadPort()}`)
    baton = await startBaton(config({ web: { servers: [...deads, live.address], balance: 'round-robin' } }, { proxy: { retries: 3 } }))
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await live.kill()
  })

  it('ejects two of three refusing servers in a pool of four, and no request fails', async () => {
    // Ejection is each worker's own (SPEC §6): one connection, one worker.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    expect(await whoami(baton.url, 40, agent)).toEqual({ live: 40 })
    const ejected = baton.lines.filter(l => l.includes('"upstream ejected"'))
    expect(ejected).toHaveLength(2)
    // The third refusing server is still tried (and retried past) after the two ejections.
    const refusedBefore = await metric(baton.adminUrl, 'baton_upstream_errors_total', { pool: 'web', kind: 'refused' })
    expect(await whoami(baton.url, 10, agent)).toEqual({ live: 10 })
    agent.destroy()
    expect(await metric(baton.adminUrl, 'baton_upstream_errors_total', { pool: 'web', kind: 'refused' })).toBeGreaterThan(refusedBefore)
    expect(baton.lines.filter(l => l.includes('"upstream ejected"'))).toHaveLength(2)
  })

  it('keeps an ejected server out of the balancer while ejected', async () => {
    const ejected = baton.lines.filter(l => l.includes('"upstream ejected"')).map(l => JSON.parse(l).upstream as string)
    expect(ejected.every(u => deads.includes(u))).toBe(true)
    const pool = await instances(baton.adminUrl, 'web')
    expect(pool).toHaveLength(4)
    expect(pool.every(i => i.inflight === 0)).toBe(true)
  })
})

describe('reloading a static pool with health checks', () => {
  let a: Backend
  let b: Backend
  let baton: RunningBaton
  const cfg = (upstream: string, interval: string): Record<string, unknown> => config({
    web: { servers: [a.address, b.address], readiness: { path: '/ready', interval, successThreshold: 3 } }
  }, { proxy: { timeouts: { upstream } } })
  beforeAll(async () => {
    [a, b] = await Promise.all([startBackend({ NAME: 'a' }), startBackend({ NAME: 'b' })])
    baton = await startBaton(cfg('30s', '500ms'))
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await Promise.all([a.kill(), b.kill()])
  })

  it('keeps healthy servers serving when the upstream timeout and the check change', async () => {
    const load = startLoad(baton.url, { keepAlive: 2, close: 1, path: '/whoami', maxMs: 20_000 })
    await waitFor(() => load.result.ok >= 20, 5_000)
    writeConfig(cfg('20s', '1s'), baton.dir)
    const res = await fetch(`${baton.adminUrl}/v1/reload`, { method: 'POST' })
    expect(res.status).toBe(200)
    const sentAtReload = load.result.sent
    // With successThreshold 3 at 1 s, re-probing from scratch would leave the pool empty for 2 s.
    await waitFor(() => load.result.sent >= sentAtReload + 50, 10_000)
    await sleep(2_500)
    const result = await load.stop()
    expect(result.failed, result.samples.join('\n')).toBe(0)
    expect((await instances(baton.adminUrl, 'web')).map(i => i.state)).toEqual(['serving', 'serving'])
  })
})
