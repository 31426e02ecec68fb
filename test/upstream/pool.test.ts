import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { DEFAULTS } from '../../src/config/defaults.js'
import { Pool } from '../../src/upstream/pool.js'
import { Upstream } from '../../src/upstream/upstream.js'

// A pool's membership, slow start and passive ejection, without sockets.

const made: Upstream[] = []
function upstreams (pool: Pool, n: number): Upstream[] {
  const list = Array.from({ length: n }, (_, i) => new Upstream({
    id: `u${made.length + i}`, pool: pool.name, host: '127.0.0.1', port: 1 + i, version: 'v1', revision: 1,
    connectTimeout: 1_000, upstreamTimeout: 1_000, keepAlive: 1_000, traffic: pool.traffic.of(1, 'v1')
  }))
  made.push(...list)
  return list
}
afterAll(async () => { await Promise.all(made.map(async u => await u.destroy())) })
afterEach(() => { vi.useRealTimers() })

describe('pool', () => {
  it('picks only among the members the table gives it', () => {
    const pool = new Pool('web', 'round-robin')
    const [a, b, c] = upstreams(pool, 3)
    expect(pool.pick()).toBeUndefined()
    pool.setMembers([a, b].map(upstream => ({ upstream, servingSince: 0 })), 0)
    const picked = new Set(Array.from({ length: 10 }, () => pool.pick()))
    expect(picked).toEqual(new Set([a, b]))
    pool.setMembers([{ upstream: c, servingSince: 0 }], 0)
    expect(pool.pick()).toBe(c)
    expect(pool.has(a)).toBe(false)
    pool.close()
  })

  it('slow start: the weight is the share of slowStart served since servingSince, from 5%, the same for any data plane', () => {
    vi.useFakeTimers({ now: 100_000 })
    const pool = new Pool('web', 'least-request')
    const [old, fresh, joined] = upstreams(pool, 3)
    pool.setMembers([{ upstream: old, servingSince: 0 }, { upstream: fresh, servingSince: 100_000 }, { upstream: joined, servingSince: 98_000 }], 4_000)
    expect(old.weight).toBe(1)
    expect(fresh.weight).toBe(0.05)
    expect(joined.weight).toBe(0.5)
    vi.advanceTimersByTime(1_000)
    expect(fresh.weight).toBeCloseTo(0.25, 1)
    expect(joined.weight).toBeCloseTo(0.75, 1)
    vi.advanceTimersByTime(3_000)
    expect(fresh.weight).toBe(1)
    expect(joined.weight).toBe(1)
    pool.close()
  })

  it('ejects a member after consecutive failures, never more than half the pool, and takes it back after a while', () => {
    vi.useFakeTimers({ now: 0 })
    const pool = new Pool('web', 'round-robin')
    const list = upstreams(pool, 4)
    pool.setMembers(list.map(upstream => ({ upstream, servingSince: 0 })), 0)
    const failN = (u: Upstream): void => { for (let k = 0; k < DEFAULTS.ejection.consecutiveFailures; k++) pool.recordFailure(u) }
    failN(list[0])
    failN(list[1])
    failN(list[2])
    expect(list.map(u => u.ejectedUntil > 0)).toEqual([true, true, false, false])
    const picked = new Set(Array.from({ length: 20 }, () => pool.pick()))
    expect(picked).toEqual(new Set([list[2], list[3]]))
    // A success resets the count; the ejection ends on its own.
    pool.recordSuccess(list[2])
    expect(list[2].failures).toBe(0)
    vi.advanceTimersByTime(DEFAULTS.ejection.duration)
    expect(list[0].ejectedUntil).toBe(0)
    expect(new Set(Array.from({ length: 20 }, () => pool.pick()))).toEqual(new Set(list))
    pool.close()
  })

  it('never ejects its last half; and when only ejected members are left, picks among them: a guess beats a 503', () => {
    vi.useFakeTimers({ now: 0 })
    const pool = new Pool('web', 'round-robin')
    const [a, b] = upstreams(pool, 2)
    pool.setMembers([a, b].map(upstream => ({ upstream, servingSince: 0 })), 0)
    for (let k = 0; k < DEFAULTS.ejection.consecutiveFailures * 2; k++) { pool.recordFailure(a); pool.recordFailure(b) }
    expect([a.ejectedUntil > 0, b.ejectedUntil > 0]).toEqual([true, false])
    // The healthy one leaves the table: the ejected one is all there is.
    pool.setMembers([{ upstream: a, servingSince: 0 }], 0)
    expect(pool.pick()).toBe(a)
    pool.close()
  })
})
