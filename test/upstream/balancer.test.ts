import { afterAll, describe, expect, it } from 'vitest'
import { LeastRequest, RoundRobin, createBalancer } from '../../src/upstream/balancer.js'
import { Upstream } from '../../src/upstream/upstream.js'
import { VersionTraffic } from '../../src/metrics/traffic.js'

// The balancers alone, over Upstream objects that never connect anywhere.

const made: Upstream[] = []
function upstreams (n: number): Upstream[] {
  const list = Array.from({ length: n }, (_, i) => new Upstream({
    id: `u${i}`, pool: 'p', host: '127.0.0.1', port: 1 + i, version: 'v1', revision: 1,
    connectTimeout: 1_000, upstreamTimeout: 1_000, keepAlive: 1_000, traffic: new VersionTraffic()
  }))
  made.push(...list)
  return list
}
afterAll(async () => { await Promise.all(made.map(async u => await u.destroy())) })

const counts = (picks: Array<Upstream | undefined>): Map<string, number> => {
  const m = new Map<string, number>()
  for (const u of picks) if (u !== undefined) m.set(u.id, (m.get(u.id) ?? 0) + 1)
  return m
}

describe('least-request (power of two choices)', () => {
  const b = new LeastRequest()

  it('picks nothing from nothing, the one from one', () => {
    expect(b.pick([], undefined)).toBeUndefined()
    const [a] = upstreams(1)
    expect(b.pick([a], undefined)).toBe(a)
    // A retry in a pool of one goes to it again: there is nowhere else.
    expect(b.pick([a], a, [a])).toBe(a)
  })

  it('of two, always the one with fewer requests in flight', () => {
    const [x, y] = upstreams(2)
    x.inflight = 3
    for (let k = 0; k < 100; k++) expect(b.pick([x, y], undefined)).toBe(y)
    x.inflight = 0
    y.inflight = 1
    for (let k = 0; k < 100; k++) expect(b.pick([x, y], undefined)).toBe(x)
  })

  it('divides by weight: a slow-starting instance at half weight counts double', () => {
    const [x, y] = upstreams(2)
    x.weight = 0.5
    for (let k = 0; k < 100; k++) expect(b.pick([x, y], undefined)).toBe(y)
    // Three in flight on the full one outweigh none on the half one: (3+1)/1 > (0+1)/0.5.
    y.inflight = 3
    for (let k = 0; k < 100; k++) expect(b.pick([x, y], undefined)).toBe(x)
  })

  it('spreads evenly over equal instances', () => {
    const list = upstreams(4)
    const c = counts(Array.from({ length: 4_000 }, () => b.pick(list, undefined)))
    for (const u of list) expect(c.get(u.id)).toBeGreaterThan(800)
  })

  it('a retry goes to an instance not tried yet, else to any but the one that failed', () => {
    const list = upstreams(3)
    const [a, bb, c] = list
    for (let k = 0; k < 100; k++) expect(b.pick(list, a, [a, bb])).toBe(c)
    for (let k = 0; k < 100; k++) expect(b.pick(list, c, [a, bb, c])).not.toBe(c)
  })
})

describe('round-robin', () => {
  it('takes each in turn', () => {
    const b = new RoundRobin()
    const list = upstreams(3)
    expect(Array.from({ length: 6 }, () => b.pick(list, undefined))).toEqual([0, 1, 2, 0, 1, 2].map(i => list[i]))
  })

  it('a retry takes the next instance in turn without moving the turn on', () => {
    const b = new RoundRobin()
    const list = upstreams(3)
    const first = b.pick(list, undefined)
    expect(first).toBe(list[0])
    expect(b.pick(list, list[0], [list[0]])).toBe(list[1])
    // The turn did not move: the next first try is list[1].
    expect(b.pick(list, undefined)).toBe(list[1])
    // Every other instance tried: any but the one that just failed.
    expect(b.pick(list, list[2], list)).not.toBe(list[2])
  })

  it('skips a slow-starting instance in proportion to its weight', () => {
    const b = new RoundRobin()
    const list = upstreams(2)
    list[0].weight = 0.2
    const c = counts(Array.from({ length: 10_000 }, () => b.pick(list, undefined)))
    const share = (c.get(list[0].id) ?? 0) / 10_000
    // Its turns are taken with probability 0.2: a share of 0.2 / 1.2 of the picks.
    expect(share).toBeGreaterThan(0.1)
    expect(share).toBeLessThan(0.25)
  })

  it('createBalancer makes the kind the config names', () => {
    expect(createBalancer('round-robin')).toBeInstanceOf(RoundRobin)
    expect(createBalancer('least-request')).toBeInstanceOf(LeastRequest)
  })
})
