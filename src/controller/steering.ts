import type { PoolTraffic } from '../metrics/timeline.js'
import { analyseStep } from '../rollout/analysis.js'
import type { Plan, PlanInstance, StepAction } from '../rollout/planner.js'
import type { Rollout } from '../rollout/rollout.js'
import type { TableRoute, TrafficSplit } from './data-plane-link.js'
import type { PoolMembers } from './table.js'

const SECOND_MS = 1_000

/** The pool's per-second traffic as the controller keeps it, and the last second every data plane has reported. */
export interface TimelineSource {
  traffic: PoolTraffic | undefined
  lastSecond: number | undefined
}

/**
 * The traffic side of a managed pool's rollout: it publishes the split a
 * plan asks for (and a blue-green's preview route) when it changes, and
 * carries out a plan's step action on the rollout record, the analysis of a
 * canary step included. The managed pool calls it from its control loop.
 */
export class Steering {
  /** What was published last, to publish only changes. */
  private published = JSON.stringify([undefined, undefined])
  /** Settles when every data plane applied what was published last. */
  private applied: Promise<void> = Promise.resolve()

  constructor (
    private readonly pool: string,
    private readonly members: PoolMembers,
    private readonly timeline: () => TimelineSource
  ) {}

  /**
   * Publishes the plan's split between the rollout's revisions, before the
   * plan's stops (so that moving all the traffic back is one table), and
   * records the rollout's weight: the split's, else the new revision's share
   * of the serving instances.
   */
  apply (plan: Plan, r: Rollout | undefined, instances: readonly PlanInstance[]): void {
    let split: TrafficSplit | undefined
    let preview: TableRoute | undefined
    if (r !== undefined && plan.split !== undefined) {
      split = { stable: r.from.number, canary: r.to.number, weight: plan.split }
      const header = r.strategy.canary?.header
      if (r.strategyName === 'canary' && header !== undefined) split.header = header
    }
    const route = r?.strategy.blueGreen.previewRoute
    if (r !== undefined && r.strategyName === 'blueGreen' && r.direction === 'forward' && route !== undefined) {
      preview = { host: route.host?.toLowerCase(), pathPrefix: route.pathPrefix, pool: this.pool, revision: r.to.number }
    }
    const key = JSON.stringify([split, preview])
    if (key !== this.published) {
      this.published = key
      this.applied = this.members.steer(split, preview)
    }
    if (r === undefined) return
    if (plan.split !== undefined) {
      r.setWeight(plan.split)
    } else {
      const serving = instances.filter(i => i.state === 'serving')
      const fresh = serving.filter(i => i.revision === r.to.number).length
      r.setWeight(serving.length === 0 ? 0 : (100 * fresh) / serving.length)
    }
  }

  /** Carries out a step action; true when the rollout turned (failed) and the pool must take note. */
  act (step: StepAction, r: Rollout, now: number): boolean {
    switch (step.kind) {
      case 'begin': r.beginStep(step.step, step.weight, now); return false
      case 'manual': r.awaitManual(step.step); return false
      case 'switch':
        r.switchTraffic(now)
        void this.applied.then(() => { r.switchApplied(Date.now()) })
        return false
      case 'analyze': return this.judge(r, now)
    }
  }

  /**
   * Judges the rollout's current canary step over its window: the whole
   * seconds from its traffic's start to now that every data plane has
   * reported. True when it failed the rollout.
   */
  judge (r: Rollout, now: number): boolean {
    const st = r.steps
    if (st === undefined || st.step === 0) return false
    const { traffic, lastSecond } = this.timeline()
    const from = Math.ceil(st.stepAt / SECOND_MS)
    const to = Math.min(lastSecond ?? Infinity, Math.floor(now / SECOND_MS) - 1)
    const analysis = analyseStep({
      step: st.step,
      seconds: traffic?.range(from, to) ?? [],
      stable: { revision: r.from.number, version: r.from.version },
      canary: { revision: r.to.number, version: r.to.version },
      limits: r.strategy.canary?.analysis ?? { minRequests: 0 },
      lastChance: st.extended,
      from: from * SECOND_MS,
      to: Math.max(from, to + 1) * SECOND_MS
    })
    r.judged(analysis, now)
    return analysis.verdict === 'fail'
  }
}
