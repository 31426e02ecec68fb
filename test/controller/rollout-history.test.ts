import { describe, expect, it } from 'vitest'
import { RolloutHistory } from '../../src/controller/rollout-history.js'
import type { Revision } from '../../src/driver/types.js'
import { Rollout, type Strategy } from '../../src/rollout/rollout.js'

// The controller's rollout records: the last `limit` of each pool, never an active one.

const rev = (number: number): Revision => ({ number, version: `v${number}`, createdAt: '' })
const strategy: Strategy = {
  maxSurge: 1, maxUnavailable: 0, minReady: 0, slowStart: 0, drainTimeout: 0, stopSignal: 'SIGTERM', stopTimeout: 0,
  progressDeadline: 60_000, onFailure: 'rollback', historyLimit: 50, maxDraining: '100%', strategy: 'rolling', blueGreen: { scaleDownDelay: 0 }, surge: 1, unavailable: 0, draining: 1
}
function finished (pool: string, n: number): Rollout {
  const r = new Rollout(pool, rev(n), rev(n + 1), strategy, 1)
  r.converged()
  return r
}

describe('rollout history', () => {
  it('keeps the last `limit` rollouts of each pool, oldest dropped first, other pools untouched', () => {
    const h = new RolloutHistory()
    const web = Array.from({ length: 60 }, (_, i) => finished('web', i + 1))
    const api = Array.from({ length: 3 }, (_, i) => finished('api', i + 1))
    for (const r of api) h.add(r, 50)
    for (const r of web) h.add(r, 50)
    expect(web.filter(r => h.get(r.id) !== undefined)).toEqual(web.slice(10))
    expect(api.every(r => h.get(r.id) === r)).toBe(true)
    // A lower limit for the pool applies at its next rollout.
    const next = finished('web', 61)
    h.add(next, 5)
    expect([...web, next].filter(r => h.get(r.id) !== undefined)).toEqual([...web.slice(56), next])
  })

  it('never drops a rollout that is still running or paused', () => {
    const h = new RolloutHistory()
    const running = new Rollout('web', rev(1), rev(2), strategy, 1)
    h.add(running, 2)
    for (let n = 2; n < 6; n++) h.add(finished('web', n), 2)
    expect(running.active).toBe(true)
    expect(h.get(running.id)).toBe(running)
  })
})
