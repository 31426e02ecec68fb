import { describe, expect, it } from 'vitest'
import { PoolTraffic, type PoolSecond } from '../../src/metrics/timeline.js'
import { Outcome, VersionTraffic } from '../../src/metrics/traffic.js'
import { analyseStep, type AnalysisInput, type AnalysisLimits } from '../../src/rollout/analysis.js'

// The analysis alone, over a timeline built the way the controller builds it
// (a data plane's counters, taken second by second): no process, no clock.

interface SideLoad { requests: number, micros: number, app5xx?: number, failedAttempts?: number, retried?: number }

/** `seconds` seconds of traffic: each side's requests per second at a latency, some 5xx, some failed attempts. */
function timeline (seconds: number, sides: Array<{ revision: number, version: string } & SideLoad>): PoolSecond[] {
  const t = new PoolTraffic()
  for (let s = 0; s < seconds; s++) {
    const versions = sides.map(side => {
      const c = new VersionTraffic(side.version, side.revision)
      for (let k = 0; k < side.requests; k++) c.record(k < (side.app5xx ?? 0) ? 500 : 200, side.micros, Outcome.App)
      for (let k = 0; k < (side.failedAttempts ?? 0); k++) c.attemptError()
      for (let k = 0; k < (side.retried ?? 0); k++) c.retry()
      return { version: side.version, revision: side.revision, ...c.takeSecond() }
    })
    t.add({ pool: 'web', t: 1000 + s, versions })
  }
  return t.range(1000, 1000 + seconds - 1)
}

const stable = { revision: 1, version: 'v1' }
const canary = { revision: 2, version: 'v2' }
const judge = (seconds: PoolSecond[], limits: Partial<AnalysisLimits>, o: Partial<AnalysisInput> = {}) =>
  analyseStep({ step: 1, seconds, stable, canary, limits: { minRequests: 0, ...limits }, lastChance: false, from: 1_000_000, to: 1_005_000, ...o })

describe('canary analysis', () => {
  it('passes a canary within the limits, with each revision\'s numbers', () => {
    const a = judge(timeline(5, [{ ...stable, requests: 95, micros: 4_000 }, { ...canary, requests: 5, micros: 4_200 }]), { minRequests: 20, maxErrorRate: 0.01, maxP99Ratio: 1.5 })
    expect(a.verdict).toBe('pass')
    expect(a.reason).toMatch(/^25 requests to v2: error rate 0% ≤ 1%, p99 ratio 1\.\d\d ≤ 1\.5$/)
    expect(a.revisions.v1).toMatchObject({ requests: 475, errorRate: 0 })
    expect(a.revisions.v2).toMatchObject({ requests: 25, errorRate: 0 })
    expect(a.revisions.v2.p99).toBeGreaterThan(0.004)
    expect(a).toMatchObject({ step: 1, from: 1_000_000, to: 1_005_000 })
  })

  it('fails on the error rate: 5xx answers and failed attempts of the new revision, retried ones included', () => {
    const fivexx = judge(timeline(4, [{ ...stable, requests: 80, micros: 3_000 }, { ...canary, requests: 20, micros: 3_000, app5xx: 4 }]), { maxErrorRate: 0.01 })
    expect(fivexx.verdict).toBe('fail')
    expect(fivexx.reason).toBe('error rate 20% of v2 (16 of 80 attempts) over maxErrorRate 1%')
    // Refused connections retried on the old revision: the client saw nothing, the canary is still to blame.
    const refused = judge(timeline(4, [{ ...stable, requests: 100, micros: 3_000 }, { ...canary, requests: 18, micros: 3_000, failedAttempts: 2, retried: 2 }]), { maxErrorRate: 0.05 })
    expect(refused.verdict).toBe('fail')
    expect(refused.revisions.v2.errorRate).toBeCloseTo(8 / 80)
    // The old revision's errors are not the canary's.
    expect(judge(timeline(4, [{ ...stable, requests: 80, micros: 3_000, app5xx: 40 }, { ...canary, requests: 20, micros: 3_000 }]), { maxErrorRate: 0.01 }).verdict).toBe('pass')
  })

  it('fails on the p99 ratio of the new revision over the old one, in the same window', () => {
    const slow = judge(timeline(5, [{ ...stable, requests: 90, micros: 5_000 }, { ...canary, requests: 10, micros: 45_000 }]), { maxP99Ratio: 1.5 })
    expect(slow.verdict).toBe('fail')
    expect(slow.reason).toMatch(/^p99 \d+ ms of v2 is \d+\.\d\d× the \d+\.?\d* ms of v1, over maxP99Ratio 1\.5$/)
    // Without old traffic (a weight of 100) the ratio cannot be judged: it is said, not failed.
    const alone = judge(timeline(5, [{ ...canary, requests: 10, micros: 45_000 }]), { maxP99Ratio: 1.5 })
    expect(alone.verdict).toBe('pass')
    expect(alone.reason).toContain('p99 ratio not judged (v1 had no request)')
  })

  it('not enough traffic: waits one more pause, then fails', () => {
    const few = timeline(5, [{ ...stable, requests: 100, micros: 3_000 }, { ...canary, requests: 2, micros: 3_000 }])
    const first = judge(few, { minRequests: 100, maxErrorRate: 0.01 })
    expect(first.verdict).toBe('wait')
    expect(first.reason).toBe('not enough traffic yet: 10 of the 100 requests needed reached v2; waiting one more pause')
    const last = judge(few, { minRequests: 100 }, { lastChance: true })
    expect(last.verdict).toBe('fail')
    expect(last.reason).toBe('not enough traffic: 10 of the 100 requests needed reached v2 in two pauses')
  })

  it('tells the two sides apart when they share a version label (an env-only canary)', () => {
    const a = judge(timeline(3, [{ revision: 1, version: 'v1', requests: 50, micros: 3_000 }, { revision: 2, version: 'v1', requests: 50, micros: 3_000, app5xx: 50 }]),
      { maxErrorRate: 0.5 }, { stable: { revision: 1, version: 'v1' }, canary: { revision: 2, version: 'v1' } })
    expect(Object.keys(a.revisions)).toEqual(['v1 (revision 1)', 'v1 (revision 2)'])
    expect(a.revisions['v1 (revision 2)'].errorRate).toBe(1)
    expect(a.revisions['v1 (revision 1)'].errorRate).toBe(0)
    expect(a.verdict).toBe('fail')
  })

  it('no limit set: a pass that says so', () => {
    const a = judge(timeline(2, [{ ...canary, requests: 3, micros: 1_000 }]), {})
    expect(a).toMatchObject({ verdict: 'pass', reason: '6 requests to v2; no limit set' })
  })
})
