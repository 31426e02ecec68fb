import { addInto, emptyCounts, type PoolSecond } from '../metrics/timeline.js'
import { quantile, Slot, type SecondCounts } from '../metrics/traffic.js'

/**
 * A canary step's analysis (README "Progressive delivery"), as a pure function of the pool's
 * per-second traffic over the step: baton's own numbers of each revision,
 * judged against the config's limits. No clock, no I/O: the managed pool
 * hands it the seconds of the step's window and records what it says.
 */

export interface AnalysisLimits {
  /** Fewer new-revision requests than this: not enough traffic to judge (yet). */
  minRequests: number
  /** Most errors per attempt of the new revision, as a fraction (0.01 is 1%); unset: not checked. */
  maxErrorRate?: number
  /** Most new p99 / old p99 over the same window; unset: not checked. */
  maxP99Ratio?: number
}

/** One revision's numbers over a step. */
export interface RevisionNumbers {
  /** Requests it answered (any status). */
  requests: number
  /** (5xx answers + failed attempts) / attempts, where attempts are its requests plus those retried elsewhere after failing on it. */
  errorRate: number
  /** Seconds (a latency bucket's upper bound, ≤ 19% wide); null without a request. */
  p99: number | null
}

/** `wait`: not enough traffic yet, the step waits one more pause. */
export type StepVerdict = 'pass' | 'fail' | 'wait'

export interface StepAnalysis {
  step: number
  verdict: StepVerdict
  reason: string
  /** By the revision's version label, or `VERSION (revision N)` when both share one. */
  revisions: Record<string, RevisionNumbers>
  /** The window judged: whole seconds, epoch ms, end exclusive. */
  from: number
  to: number
}

export interface RevisionRef { revision: number, version: string }

export interface AnalysisInput {
  step: number
  /** The seconds of the step's window (whole seconds within it, as the timeline has them). */
  seconds: readonly PoolSecond[]
  /** The revision the pool is leaving, and the new one. */
  stable: RevisionRef
  canary: RevisionRef
  limits: AnalysisLimits
  /** The step already waited one more pause for traffic: not enough now fails it. */
  lastChance: boolean
  /** The window, epoch ms (recorded as given). */
  from: number
  to: number
}

const pct = (f: number): string => `${(f * 100).toFixed(2).replace(/\.?0+$/, '')}%`
const ms = (s: number): string => `${(s * 1000).toFixed(s < 0.01 ? 1 : 0)} ms`

function sumRevision (seconds: readonly PoolSecond[], revision: number): SecondCounts {
  const sum = emptyCounts()
  for (const s of seconds) for (const r of s.revisions) if (r.revision === revision) addInto(sum, r)
  return sum
}

function numbersOf (c: SecondCounts): RevisionNumbers & { errors: number, attempts: number } {
  const k = c.counts
  // A failed attempt is counted on the instance it failed on, whether it was retried or answered 502/504 there.
  const errors = k[Slot.App5xx] + k[Slot.AttemptErrors]
  const attempts = k[Slot.Requests] + k[Slot.Retries]
  return { requests: k[Slot.Requests], errorRate: attempts === 0 ? 0 : errors / attempts, p99: quantile(c.hist, 0.99), errors, attempts }
}

/** Judges one step: enough traffic, then the error rate, then the p99 ratio; the first limit broken is the reason. */
export function analyseStep (input: AnalysisInput): StepAnalysis {
  const { limits, stable, canary } = input
  const fresh = numbersOf(sumRevision(input.seconds, canary.revision))
  const old = numbersOf(sumRevision(input.seconds, stable.revision))
  const same = stable.version === canary.version
  const name = (r: RevisionRef): string => same ? `${r.version} (revision ${r.revision})` : r.version
  const revisions = {
    [name(stable)]: { requests: old.requests, errorRate: old.errorRate, p99: old.p99 },
    [name(canary)]: { requests: fresh.requests, errorRate: fresh.errorRate, p99: fresh.p99 }
  }
  const verdict = (v: StepVerdict, reason: string): StepAnalysis => ({ step: input.step, verdict: v, reason, revisions, from: input.from, to: input.to })

  if (fresh.requests < limits.minRequests) {
    const counted = `${fresh.requests} of the ${limits.minRequests} requests needed reached ${name(canary)}`
    return input.lastChance
      ? verdict('fail', `not enough traffic: ${counted} in two pauses`)
      : verdict('wait', `not enough traffic yet: ${counted}; waiting one more pause`)
  }
  const checks: string[] = []
  if (limits.maxErrorRate !== undefined) {
    if (fresh.errorRate > limits.maxErrorRate) {
      return verdict('fail', `error rate ${pct(fresh.errorRate)} of ${name(canary)} (${fresh.errors} of ${fresh.attempts} attempts) over maxErrorRate ${pct(limits.maxErrorRate)}`)
    }
    checks.push(`error rate ${pct(fresh.errorRate)} ≤ ${pct(limits.maxErrorRate)}`)
  }
  if (limits.maxP99Ratio !== undefined) {
    if (fresh.p99 !== null && old.p99 !== null) {
      const ratio = fresh.p99 / old.p99
      if (ratio > limits.maxP99Ratio) {
        return verdict('fail', `p99 ${ms(fresh.p99)} of ${name(canary)} is ${ratio.toFixed(2)}× the ${ms(old.p99)} of ${name(stable)}, over maxP99Ratio ${limits.maxP99Ratio}`)
      }
      checks.push(`p99 ratio ${ratio.toFixed(2)} ≤ ${limits.maxP99Ratio}`)
    } else {
      checks.push(`p99 ratio not judged (${fresh.p99 === null ? name(canary) : name(stable)} had no request)`)
    }
  }
  return verdict('pass', checks.length === 0 ? `${fresh.requests} requests to ${name(canary)}; no limit set` : `${fresh.requests} requests to ${name(canary)}: ${checks.join(', ')}`)
}
