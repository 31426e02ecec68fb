import { allCounts, type PoolTraffic } from '../metrics/timeline.js'
import { BUCKETS, quantile, Slot, type RevisionCounts } from '../metrics/traffic.js'
import type { StepVerdict } from './analysis.js'
import type { StrategyName } from './planner.js'
import type { Rollout } from './rollout.js'

/** Seconds of traffic shown before the rollout and after it. */
const CONTEXT_SECONDS = 20

export interface PhaseStats {
  name: string
  from: number
  to: number
  requests: number
  failed: number
  p50: number | null
  p99: number | null
  max: number | null
}

export interface BatchTiming {
  batch: number
  instances: string[]
  /** ms epoch; null where the step did not happen. */
  started: number
  ready: number | null
  soaked: number | null
  drainStarted: number | null
  stopped: number | null
}

export interface SecondPoint {
  t: number
  /** Requests by version (by `VERSION (revision N)` when both sides of the rollout share a version label). */
  byVersion: Record<string, number>
  failed: number
  p99: number | null
}

/** A canary's or blue-green's turn of the traffic (a step began, the switch, a promote or rollback). */
export interface TrafficTurn { at: number, label: string, weight: number }

/** A step's verdict, at the end of the window it judged. */
export interface VerdictMark { at: number, step: number, verdict: StepVerdict, reason: string }

export interface RolloutReport {
  from: number
  to: number
  requests: number
  failed: { total: number, baton5xx: number, upstreamFailed: number, app5xx: number }
  clientAborts: number
  retries: number
  attemptErrors: number
  phases: PhaseStats[]
  batches: BatchTiming[]
  seconds: SecondPoint[]
  strategy: StrategyName
  /** Canary and blue-green: when the traffic turned, and each step's verdicts. */
  turns: TrafficTurn[]
  verdicts: VerdictMark[]
}

function sumInto (counts: Uint32Array, into: Uint32Array): void {
  for (let i = 0; i < counts.length; i++) into[i] += counts[i]
}

const failedOf = (c: Uint32Array): number => c[Slot.Baton5xx] + c[Slot.UpstreamFailed] + c[Slot.App5xx]

/**
 * What the users saw during one rollout, from the per-second traffic of its
 * pool: totals during the rollout, latency per phase (before, each batch,
 * after), each batch's timings and the traffic share per version.
 */
export function buildReport (r: Rollout, traffic: PoolTraffic, minReadyMs: number): RolloutReport {
  const start = r.startedAt.getTime()
  const end = r.finishedAt?.getTime() ?? Date.now()
  const startS = Math.floor(start / 1000)
  const endS = Math.floor(end / 1000)
  const seconds = traffic.range(startS - CONTEXT_SECONDS, Math.min(endS + CONTEXT_SECONDS, Math.floor(Date.now() / 1000)))

  const batches = batchTimings(r, minReadyMs)
  // Phase boundaries in epoch seconds: before | batch 1 | batch 2 | ... | after.
  const bounds: Array<{ name: string, from: number, to: number }> = [{ name: 'before', from: startS - CONTEXT_SECONDS, to: startS - 1 }]
  const batchStarts = batches.map(b => Math.floor(b.started / 1000))
  let cursor = startS
  batches.forEach((b, i) => {
    const next = i + 1 < batches.length ? Math.max(cursor, batchStarts[i + 1] - 1) : endS
    bounds.push({ name: `batch ${b.batch}`, from: cursor, to: next })
    cursor = next + 1
  })
  if (batches.length === 0) bounds.push({ name: 'rollout', from: startS, to: endS })
  else if (cursor <= endS) bounds[bounds.length - 1].to = endS
  bounds.push({ name: 'after', from: endS + 1, to: endS + CONTEXT_SECONDS })

  const phases: PhaseStats[] = bounds.map(b => {
    const counts = new Uint32Array(Slot.Size)
    const hist = new Uint32Array(BUCKETS)
    let max = 0
    for (const s of seconds) {
      if (s.t < b.from || s.t > b.to) continue
      for (const c of allCounts(s)) {
        sumInto(c.counts, counts)
        sumInto(c.hist, hist)
        if (c.max > max) max = c.max
      }
    }
    return {
      name: b.name,
      from: b.from * 1000,
      to: (b.to + 1) * 1000,
      requests: counts[Slot.Requests],
      failed: failedOf(counts),
      p50: quantile(hist, 0.5),
      p99: quantile(hist, 0.99),
      max: counts[Slot.Requests] === 0 ? null : max / 1e6
    }
  })

  // An env-only change keeps the version label: then the two sides are told apart by revision.
  const sameLabel = r.from.version === r.to.version
  const seriesOf = (c: RevisionCounts): string => sameLabel && c.revision !== 0 ? `${c.version} (revision ${c.revision})` : c.version
  const during = new Uint32Array(Slot.Size)
  const points: SecondPoint[] = []
  for (const s of seconds) {
    const counts = new Uint32Array(Slot.Size)
    const hist = new Uint32Array(BUCKETS)
    for (const c of allCounts(s)) {
      sumInto(c.counts, counts)
      sumInto(c.hist, hist)
    }
    if (s.t >= startS && s.t <= endS) sumInto(counts, during)
    const versions: Record<string, number> = {}
    for (const c of s.revisions) versions[seriesOf(c)] = (versions[seriesOf(c)] ?? 0) + c.counts[Slot.Requests]
    points.push({ t: s.t * 1000, byVersion: versions, failed: failedOf(counts), p99: quantile(hist, 0.99) })
  }

  return {
    from: start,
    to: end,
    requests: during[Slot.Requests],
    failed: {
      total: failedOf(during),
      baton5xx: during[Slot.Baton5xx],
      upstreamFailed: during[Slot.UpstreamFailed],
      app5xx: during[Slot.App5xx]
    },
    clientAborts: during[Slot.ClientAborts],
    retries: during[Slot.Retries],
    attemptErrors: during[Slot.AttemptErrors],
    phases,
    batches,
    seconds: points,
    strategy: r.strategyName,
    turns: r.trafficMarks.map(m => ({ ...m })),
    verdicts: r.analysis.map(a => ({ at: a.to, step: a.step, verdict: a.verdict, reason: a.reason }))
  }
}

/**
 * Each batch: when its new instances started, were all ready, had all soaked
 * for minReady, and when the old instances it replaced began draining and
 * were all stopped (the drains that began before the next batch started).
 */
function batchTimings (r: Rollout, minReadyMs: number): BatchTiming[] {
  const out: BatchTiming[] = []
  const byBatch = new Map<number, BatchTiming>()
  const newRevision = r.to.number
  for (const m of r.marks) {
    if (m.state !== 'starting' || m.revision !== newRevision || m.batch === 0) continue
    let b = byBatch.get(m.batch)
    if (b === undefined) {
      b = { batch: m.batch, instances: [], started: m.at, ready: null, soaked: null, drainStarted: null, stopped: null }
      byBatch.set(m.batch, b)
      out.push(b)
    }
    if (!b.instances.includes(m.instance)) b.instances.push(m.instance)
  }
  for (const b of out) {
    // Ready when its probe passed: the minReady soak counts from there (the planner's readyAt).
    const readyAt = b.instances.map(id => r.marks.find(m => m.instance === id && m.state === 'ready')?.at)
    if (readyAt.every(t => t !== undefined)) {
      b.ready = Math.max(...(readyAt as number[]))
      b.soaked = b.ready + minReadyMs
    }
    // Old instances whose drain began while this batch was the newest.
    const drains = r.marks.filter(m => m.revision !== newRevision && m.state === 'draining' && m.batch === b.batch)
    if (drains.length > 0) {
      b.drainStarted = Math.min(...drains.map(d => d.at))
      const stops = drains.map(d => r.marks.find(m => m.instance === d.instance && m.state === 'stopped')?.at)
      if (stops.every(t => t !== undefined)) b.stopped = Math.max(...(stops as number[]))
    }
  }
  return out
}
