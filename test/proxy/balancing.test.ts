import { Agent } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, TEST_WORKERS, type RunningBaton } from '../helpers/baton.js'
import { config, instances, send, waitFor, type Reply } from '../helpers/http.js'

// Balancing over a static pool: round-robin takes turns; least-request
// (power of two choices) keeps new requests away from a busy instance.
// Each proxy worker balances on its own (SPEC §6, like Envoy's per-thread
// balancers): requests on one connection meet one worker's balancer.

/** `n` requests one after the other; `agent`: on one keep-alive connection (one worker). */
async function whoami (url: string, n: number, agent: Agent | false = false): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  for (let i = 0; i < n; i++) {
    const r = await send(`${url}/whoami`, { agent })
    expect(r.status).toBe(200)
    counts[r.text] = (counts[r.text] ?? 0) + 1
  }
  return counts
}

describe('round-robin', () => {
  let backends: Backend[]
  let baton: RunningBaton
  beforeAll(async () => {
    backends = await Promise.all(['a', 'b', 'c'].map(async n => await startBackend({ NAME: n })))
    baton = await startBaton(config({ web: { servers: backends.map(b => b.address), balance: 'round-robin' } }))
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await Promise.all(backends.map(async b => await b.kill()))
  })

  it('spreads sequential requests evenly', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    expect(await whoami(baton.url, 30, agent)).toEqual({ a: 10, b: 10, c: 10 })
    agent.destroy()
  })

  it('spreads concurrent requests evenly', async () => {
    const replies = await Promise.all(Array.from({ length: 60 }, async () => await send(`${baton.url}/whoami`)))
    const counts: Record<string, number> = {}
    for (const r of replies) counts[r.text] = (counts[r.text] ?? 0) + 1
    // One turn-taker per worker: each server is at most one request per worker off an even share.
    expect(Object.keys(counts).sort()).toEqual(['a', 'b', 'c'])
    for (const n of Object.values(counts)) expect(Math.abs(n - 20)).toBeLessThan(TEST_WORKERS ?? 1)
  })
})

describe('least-request', () => {
  let backends: Backend[]
  let baton: RunningBaton
  beforeAll(async () => {
    backends = await Promise.all(['a', 'b'].map(async n => await startBackend({ NAME: n })))
    // One worker: least-request balances on each worker's own in-flight counts
    // (SPEC §6), and this checks that balancer against the counts the admin API sums.
    baton = await startBaton({ ...config({ web: { servers: backends.map(b => b.address), balance: 'least-request' } }), workers: 1 })
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await Promise.all(backends.map(async b => await b.kill()))
  })

  async function inflightOf (name: 'a' | 'b'): Promise<number> {
    const address = backends[name === 'a' ? 0 : 1].address
    return (await instances(baton.adminUrl, 'web')).find(i => i.address === address)?.inflight ?? -1
  }

  it('sends new requests away from an instance that holds many slow requests', async () => {
    // `/slow?only=a` is slow on a and instant on b, so bursts of it leave a
    // holding requests (b's answer at once) until a holds at least 4.
    const held: Array<Promise<Reply>> = []
    for (let burst = 0; burst < 8 && await inflightOf('a') < 4; burst++) {
      for (let i = 0; i < 8; i++) held.push(send(`${baton.url}/slow?ms=4000&only=a`))
      await waitFor(async () => await inflightOf('b') === 0, 5_000)
    }
    const busy = await inflightOf('a')
    expect(busy).toBeGreaterThanOrEqual(4)
    expect(await inflightOf('b')).toBe(0)

    // With a busy and b idle, every new request goes to b.
    expect(await whoami(baton.url, 20)).toEqual({ b: 20 })

    // A concurrent burst fills b up to a's load first; a ends with at most one more than b.
    const busyNow = await inflightOf('a')
    const burst = await Promise.all(Array.from({ length: 12 }, async () => await send(`${baton.url}/slow?ms=500`)))
    const toA = burst.filter(r => r.text === 'slow a').length
    expect(busyNow + toA).toBeLessThanOrEqual(12 - toA + 1)

    // Once a's slow requests end, it takes its share again.
    const settled = await Promise.all(held)
    expect(settled.every(r => r.status === 200)).toBe(true)
    await waitFor(async () => await inflightOf('a') === 0, 5_000)
    const after = await whoami(baton.url, 30)
    expect(after.a).toBeGreaterThan(0)
    expect(after.b).toBeGreaterThan(0)
  }, 30_000)
})
