import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { DEFAULTS } from '../../src/config/defaults.js'
import { Pool } from '../../src/upstream/pool.js'
import { Upstream } from '../../src/upstream/upstream.js'

// A pool's membership, slow start and passive ejection, without sockets.

const made: Upstream[] = []
function upstreams (pool: Pool, n: number, revision = 1): Upstream[] {
  const list = Array.from({ length: n }, (_, i) => new Upstream({
    id: `u${made.length + i}`, pool: pool.name, host: '127.0.0.1', port: 1 + i, version: `v${revision}`, revision,
    connectTimeout: 1_000, upstreamTimeout: 1_000, keepAlive: 1_000, traffic: pool.traffic.of(revision, `v${revision}`)
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

  describe('split between two revisions (canary, blue-green)', () => {
    const serving = (list: Upstream[]): Array<{ upstream: Upstream, servingSince: number }> => list.map(upstream => ({ upstream, servingSince: 0 }))
    const count = (pool: Pool, n: number, pickOne: () => Upstream | undefined): Map<number, number> => {
      const by = new Map<number, number>()
      for (let k = 0; k < n; k++) {
        const u = pickOne()
        if (u !== undefined) by.set(u.revision, (by.get(u.revision) ?? 0) + 1)
      }
      return by
    }

    for (const [weight, canaries, stables] of [[5, 1, 10], [25, 1, 4], [50, 2, 4], [1, 3, 3], [99.5, 1, 1]]) {
      it(`${weight}% to the canary with ${canaries} canary and ${stables} stable instance(s): exact over every 200 picks, whatever the counts`, () => {
        const pool = new Pool('web', 'least-request')
        const stable = upstreams(pool, stables, 1)
        const canary = upstreams(pool, canaries, 2)
        pool.setMembers(serving([...stable, ...canary]), 0)
        pool.setSplit({ stable: 1, canary: 2, weight })
        for (let round = 0; round < 3; round++) {
          const by = count(pool, 200, () => pool.pick())
          expect(by.get(2) ?? 0).toBe(2 * weight)
          expect(by.get(1) ?? 0).toBe(200 - 2 * weight)
        }
        pool.close()
      })
    }

    it('spreads the canary\'s turns evenly: 5% is one request in twenty, not five in a row', () => {
      const pool = new Pool('web', 'round-robin')
      pool.setMembers(serving([...upstreams(pool, 4, 1), ...upstreams(pool, 1, 2)]), 0)
      pool.setSplit({ stable: 1, canary: 2, weight: 5 })
      const turns = Array.from({ length: 100 }, () => pool.pick()?.revision)
      const at = turns.flatMap((r, i) => r === 2 ? [i] : [])
      expect(at).toHaveLength(5)
      for (let k = 1; k < at.length; k++) expect(at[k] - at[k - 1]).toBe(20)
      pool.close()
    })

    it('weight 0 and 100 send everything to one side; a side with no member gives its share to the other', () => {
      const pool = new Pool('web', 'least-request')
      const stable = upstreams(pool, 2, 1)
      const canary = upstreams(pool, 2, 2)
      pool.setMembers(serving([...stable, ...canary]), 0)
      pool.setSplit({ stable: 1, canary: 2, weight: 0 })
      expect(count(pool, 100, () => pool.pick()).get(2)).toBeUndefined()
      pool.setSplit({ stable: 1, canary: 2, weight: 100 })
      expect(count(pool, 100, () => pool.pick()).get(1)).toBeUndefined()
      pool.setMembers(serving(stable), 0)
      expect(count(pool, 100, () => pool.pick()).get(1)).toBe(100)
      pool.setSplit(undefined)
      pool.setMembers(serving([...stable, ...canary]), 0)
      expect(count(pool, 400, () => pool.pick()).get(2)).toBeGreaterThan(100)
      pool.close()
    })

    it('pins by header (always / never, any case) and by a route\'s revision; a pinned side with no member gets nothing', () => {
      const pool = new Pool('web', 'least-request')
      const stable = upstreams(pool, 3, 1)
      const canary = upstreams(pool, 1, 2)
      pool.setMembers(serving([...stable, ...canary]), 0)
      pool.setSplit({ stable: 1, canary: 2, weight: 10, header: 'x-canary' })
      expect(count(pool, 50, () => pool.choose(['Host', 'a', 'X-Canary', 'Always'], 0)).get(2)).toBe(50)
      expect(count(pool, 50, () => pool.choose(['x-canary', 'never'], 0)).get(1)).toBe(50)
      // Any other value, or no header: the weighted turn.
      expect(count(pool, 100, () => pool.choose(['x-canary', 'maybe'], 0)).get(2)).toBe(10)
      expect(count(pool, 50, () => pool.choose([], 2)).get(2)).toBe(50)
      expect(count(pool, 50, () => pool.choose([], 1)).get(1)).toBe(50)
      pool.setMembers(serving(stable), 0)
      expect(pool.choose(['x-canary', 'always'], 0)).toBeUndefined()
      expect(pool.choose([], 2)).toBeUndefined()
      pool.close()
    })

    it('a retry stays on the revision that failed while it has an untried member, else goes to the other', () => {
      const pool = new Pool('web', 'round-robin')
      const stable = upstreams(pool, 2, 1)
      const [c1, c2] = upstreams(pool, 2, 2)
      pool.setMembers(serving([...stable, c1, c2]), 0)
      pool.setSplit({ stable: 1, canary: 2, weight: 50 })
      expect(pool.pick(c1, [c1])).toBe(c2)
      const other = pool.pick(c2, [c1, c2])
      expect(other?.revision).toBe(1)
      pool.close()
    })
  })
})
