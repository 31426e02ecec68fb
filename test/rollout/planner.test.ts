import { describe, expect, it } from 'vitest'
import { afterCrash, BACKOFF, GIVE_UP_AFTER, judgeFailure, judgeUnready, NO_CRASHES } from '../../src/rollout/failures.js'
import { canaryInstances, planBlueGreen, planCanary, planRolling, plannerFor, type Bounds, type CanaryStep, type InstanceState, type Plan, type PlanInput, type PlanInstance, type RolloutState, type StepState } from '../../src/rollout/planner.js'

// The planner alone: pure functions over tables of states, no process, no
// clock. test/rollout/bounds.test.ts checks the same bounds end to end.

const HOUR = 3_600_000
const bounds = (surge: number, unavailable: number, minReady = 0, progressDeadline = HOUR): Bounds => ({ surge, unavailable, minReady, progressDeadline, draining: 4 })

let seq = 0
function inst (revision: number, state: InstanceState, readyAt = 0): PlanInstance {
  return { id: `i${++seq}-r${revision}-${state}`, revision, state, readyAt }
}
const many = (n: number, revision: number, state: InstanceState, readyAt = 0): PlanInstance[] =>
  Array.from({ length: n }, () => inst(revision, state, readyAt))

const forward = (o: Partial<RolloutState> = {}): RolloutState =>
  ({ status: 'running', direction: 'forward', from: 1, to: 2, updated: 0, remaining: Infinity, progressAt: 0, ...o })

function plan (o: Partial<PlanInput> & { instances: PlanInstance[] }): Plan {
  return planRolling({ now: 10_000, size: 4, current: 1, bounds: bounds(1, 0), backoffUntil: 0, ...o })
}

describe('planRolling: one step', () => {
  it('outside a rollout, a full pool of the current revision is left alone', () => {
    const p = plan({ instances: many(4, 1, 'serving') })
    expect(p).toEqual({ target: 1, start: 0, stop: [], wakeAt: undefined })
  })

  it('replaces a missing instance, within the surge', () => {
    expect(plan({ instances: many(3, 1, 'serving') }).start).toBe(1)
    expect(plan({ size: 4, instances: many(1, 1, 'serving'), bounds: bounds(1, 0) }).start).toBe(3)
    // Draining instances still run: with 4 + 1 running, no room.
    expect(plan({ instances: [...many(3, 1, 'serving'), ...many(2, 1, 'draining')] }).start).toBe(0)
  })

  it('size raised: starts the difference within maxSurge; size lowered: stops the surplus, instances without traffic first', () => {
    expect(plan({ size: 6, bounds: bounds(1, 0), instances: many(4, 1, 'serving') }).start).toBe(2)
    const serving = many(3, 1, 'serving')
    const starting = inst(1, 'starting')
    const lowered = plan({ size: 2, instances: [...serving, starting] })
    expect(lowered.stop).toEqual([starting.id, serving[2].id])
    expect(lowered.start).toBe(0)
    // What already drains is not stopped again, nor counted as serving.
    const drained = plan({ size: 2, instances: [...serving.slice(0, 2), inst(1, 'draining')] })
    expect(drained.stop).toEqual([])
    expect(drained.start).toBe(0)
  })

  it('a rollout starts its first batch: surge new instances, nothing stopped with unavailable 0', () => {
    for (const surge of [1, 2, 4]) {
      const p = plan({ bounds: bounds(surge, 0), rollout: forward(), instances: many(4, 1, 'serving') })
      expect(p.target).toBe(2)
      expect(p.start).toBe(surge)
      expect(p.stop).toEqual([])
      expect(p.rollout).toMatchObject({ newBatch: true, updated: 0, converged: false, stalled: false })
    }
  })

  it('maxUnavailable lets old instances go before new ones are up; maxSurge 0 then waits for their drain', () => {
    const old = many(4, 1, 'serving')
    const p = plan({ bounds: bounds(0, 1), rollout: forward(), instances: old })
    expect(p.stop).toEqual([old[0].id])
    expect(p.start).toBe(0)
    const next = plan({ bounds: bounds(0, 1), rollout: forward(), instances: [{ ...old[0], state: 'draining' }, ...old.slice(1)] })
    expect(next.stop).toEqual([])
    expect(next.start).toBe(0)
    const drained = plan({ bounds: bounds(0, 1), rollout: forward(), instances: old.slice(1) })
    expect(drained.start).toBe(1)
  })

  it('minReady: a new instance that serves but has not soaked keeps the old ones, and the plan wakes when the soak ends', () => {
    const now = 10_000
    const fresh = inst(2, 'serving', now - 200)
    const p = plan({ now, bounds: bounds(1, 0, 500), rollout: forward(), instances: [...many(4, 1, 'serving'), fresh] })
    expect(p.stop).toEqual([])
    expect(p.start).toBe(0)
    expect(p.wakeAt).toBe(fresh.readyAt + 500)
    expect(p.rollout?.updated).toBe(0)
    // Soaked: one old instance goes, and the next new one starts once it has drained.
    const soaked = plan({ now: now + 300, bounds: bounds(1, 0, 500), rollout: forward(), instances: [...many(4, 1, 'serving'), fresh] })
    expect(soaked.stop).toHaveLength(1)
    expect(soaked.rollout).toMatchObject({ updated: 1, progressed: true })
  })

  it('minReady counts only going forward: rolling back, a serving old instance is available at once', () => {
    const p = plan({ now: 10_000, bounds: bounds(1, 0, 60_000), rollout: forward({ direction: 'back', updated: 1 }), instances: [...many(4, 1, 'serving', 9_999), inst(2, 'serving', 9_000)] })
    expect(p.target).toBe(1)
    expect(p.stop).toHaveLength(1)
    // One new instance left to go: 1 from convergence; it is as far while it drains, and converged once it is gone.
    expect(p.rollout).toMatchObject({ updated: 1, remaining: 1 })
    const back = forward({ direction: 'back', updated: 1, remaining: 1 })
    const draining = plan({ now: 10_000, bounds: bounds(1, 0, 60_000), rollout: back, instances: [...many(4, 1, 'serving', 9_999), inst(2, 'draining', 9_000)] })
    expect(draining.rollout).toMatchObject({ updated: 0, remaining: 1, progressed: false, converged: false })
    expect(plan({ now: 10_000, bounds: bounds(1, 0, 60_000), rollout: back, instances: many(4, 1, 'serving', 9_999) }).rollout).toMatchObject({ converged: true })
  })

  it('converges when the target serves at full size and nothing else runs', () => {
    const p = plan({ rollout: forward({ updated: 3 }), bounds: bounds(1, 0, 100), instances: many(4, 2, 'serving', 1) })
    expect(p.rollout).toMatchObject({ converged: true, updated: 4 })
    expect(p.wakeAt).toBeUndefined()
    // Not while an old one drains, nor while a new one soaks.
    expect(plan({ rollout: forward({ updated: 3 }), instances: [...many(4, 2, 'serving', 1), inst(1, 'draining')] }).rollout?.converged).toBe(false)
    expect(plan({ now: 10_000, bounds: bounds(1, 0, 100), rollout: forward({ updated: 3 }), instances: [...many(3, 2, 'serving', 1), inst(2, 'serving', 9_950)] }).rollout?.converged).toBe(false)
  })

  it('pause: instances of other revisions without traffic go, nothing else moves, no progress is recorded', () => {
    const coming = inst(1, 'starting')
    const ready = inst(1, 'ready')
    const p = plan({ rollout: forward({ status: 'paused' }), instances: [...many(3, 1, 'serving'), coming, ready, inst(2, 'serving', 1)] })
    expect(p.stop).toEqual([coming.id, ready.id])
    expect(p.start).toBe(0)
    expect(p.rollout).toBeUndefined()
    expect(p.wakeAt).toBeUndefined()
  })

  it('abort / rollback (direction back): the old revision is the target, new instances without traffic go at once', () => {
    const newStarting = inst(2, 'starting')
    const newServing = inst(2, 'serving', 1)
    const old = many(3, 1, 'serving')
    const p = plan({ rollout: forward({ direction: 'back', updated: 1 }), instances: [...old, newServing, newStarting] })
    expect(p.target).toBe(1)
    expect(p.stop).toContain(newStarting.id)
    // 3 old serving + 1 new serving, size 4, unavailable 0: the new one stays until an old one is back.
    expect(p.stop).not.toContain(newServing.id)
    expect(p.start).toBe(0) // 5 running with the one being stopped: no room under size + surge
    const after = plan({ rollout: forward({ direction: 'back', updated: 1 }), instances: [...old, newServing] })
    expect(after.start).toBe(1)
  })

  it('a draining instance left with only upgraded connections no longer counts against maxSurge, up to maxDraining', () => {
    const quiet = (revision: number): PlanInstance => ({ ...inst(revision, 'draining'), upgradesOnly: true })
    // 3 old serving + 1 new serving, and 1 old draining with only WebSockets: with maxSurge 1 the next new one starts.
    const old = many(3, 1, 'serving')
    const fresh = inst(2, 'serving', 1)
    expect(plan({ rollout: forward(), instances: [...old, fresh, inst(1, 'draining')] }).start).toBe(0)
    expect(plan({ rollout: forward(), instances: [...old, fresh, quiet(1)] }).start).toBe(1)
    // maxDraining bounds how many may pile up: beyond it, they count again.
    const b = { ...bounds(1, 0), draining: 1 }
    expect(plan({ bounds: b, rollout: forward(), instances: [...many(2, 1, 'serving'), ...many(2, 2, 'serving', 1), quiet(1), quiet(1)] }).start).toBe(0)
    expect(plan({ bounds: { ...b, draining: 2 }, rollout: forward(), instances: [...many(2, 1, 'serving'), ...many(2, 2, 'serving', 1), quiet(1), quiet(1)] }).start).toBe(1)
    // They still run: the rollout converges only once they are gone.
    const done = plan({ rollout: forward({ updated: 4 }), instances: [...many(4, 2, 'serving', 1), quiet(1)] })
    expect(done.rollout).toMatchObject({ converged: false, remaining: 1 })
  })

  it('a crash-loop backoff holds starts back and wakes the plan when it ends', () => {
    const p = plan({ now: 10_000, backoffUntil: 12_000, instances: many(3, 1, 'serving') })
    expect(p.start).toBe(0)
    expect(p.wakeAt).toBe(12_000)
    expect(plan({ now: 12_000, backoffUntil: 12_000, instances: many(3, 1, 'serving') }).start).toBe(1)
  })

  it('progressDeadline: stalls a rollout without progress, counts from the last progress, and wakes in time', () => {
    const b = bounds(1, 0, 0, 1_000)
    const old = many(4, 1, 'serving')
    const waiting = [...old, inst(2, 'starting')]
    // 4 old instances to go and 4 new ones missing.
    const r = forward({ progressAt: 10_000, remaining: 8 })
    const before = plan({ now: 10_500, bounds: b, rollout: r, instances: waiting })
    expect(before.rollout).toMatchObject({ stalled: false, progressed: false, remaining: 8 })
    expect(before.wakeAt).toBe(11_000)
    const after = plan({ now: 11_000, bounds: b, rollout: r, instances: waiting })
    expect(after.rollout?.stalled).toBe(true)
    expect(after).toMatchObject({ start: 0, stop: [] })
    // Progress in this very step restarts the clock: a new instance available, or an old one gone.
    expect(plan({ now: 11_000, bounds: b, rollout: r, instances: [...old.slice(1), inst(2, 'starting')] }).rollout).toMatchObject({ stalled: false, progressed: true, remaining: 7 })
    const progressing = plan({ now: 11_000, bounds: b, rollout: r, instances: [...old, inst(2, 'serving', 1)] })
    expect(progressing.rollout).toMatchObject({ stalled: false, progressed: true })
    expect(progressing.wakeAt).toBe(12_000)
    // A paused rollout never stalls.
    expect(plan({ now: 99_999, bounds: b, rollout: forward({ status: 'paused', progressAt: 0 }), instances: waiting }).rollout).toBeUndefined()
  })

  it('plannerFor names each strategy\'s plan function', () => {
    expect(plannerFor('rolling')).toBe(planRolling)
    expect(plannerFor('canary')).toBe(planCanary)
    expect(plannerFor('blueGreen')).toBe(planBlueGreen)
  })
})

const STEPS: CanaryStep[] = [{ weight: 5, pause: 1_000 }, { weight: 25, pause: 'manual' }, { weight: 50, pause: 2_000 }]
const steps = (o: Partial<StepState> = {}): StepState => ({ step: 0, stepAt: 0, passed: false, extended: false, promoted: false, weight: 0, ...o })
const canaryBounds = (o: Partial<Bounds> = {}): Bounds => ({ ...bounds(1, 0, 0), canary: { steps: STEPS }, ...o })
function canary (o: Partial<PlanInput> & { instances: PlanInstance[], st?: Partial<StepState>, r?: Partial<RolloutState> }): Plan {
  const { st, r, ...rest } = o
  return planCanary({ now: 10_000, size: 4, current: 1, bounds: canaryBounds(), backoffUntil: 0, rollout: forward({ steps: steps(st), ...r }), ...rest })
}

describe('planCanary: one step', () => {
  it('a step needs its share of the pool in new instances, at least one, at most the size', () => {
    expect([canaryInstances(10, 5), canaryInstances(4, 5), canaryInstances(4, 25), canaryInstances(4, 50), canaryInstances(4, 0), canaryInstances(4, 100)]).toEqual([1, 1, 1, 2, 1, 4])
  })

  it('before the first step: its new instances start beside the whole old set, no traffic to them yet', () => {
    const p = canary({ instances: many(4, 1, 'serving') })
    expect(p).toMatchObject({ target: 2, start: 1, startFrom: 0, stop: [], split: 0, step: undefined })
    expect(p.rollout).toMatchObject({ newBatch: true, stalled: false })
    // Starting, then serving: the step's traffic begins at its weight, whatever the instance counts (1 of 5 here, 5%).
    expect(canary({ instances: [...many(4, 1, 'serving'), inst(2, 'starting')] })).toMatchObject({ start: 0, split: 0, step: undefined })
    const begin = canary({ instances: [...many(4, 1, 'serving'), inst(2, 'serving', 9_000)] })
    expect(begin).toMatchObject({ start: 0, split: 5, step: { kind: 'begin', step: 1, weight: 5 } })
    expect(begin.rollout).toMatchObject({ progressed: true })
  })

  it('a timed pause ends in an analysis (two pauses when it waits for traffic); the plan wakes at its end', () => {
    const live = [...many(4, 1, 'serving'), inst(2, 'serving', 1)]
    const during = canary({ now: 10_500, st: { step: 1, stepAt: 10_000 }, instances: live })
    expect(during).toMatchObject({ start: 0, split: 5, step: undefined, wakeAt: 11_000 })
    expect(canary({ now: 11_000, st: { step: 1, stepAt: 10_000 }, instances: live }).step).toEqual({ kind: 'analyze', step: 1 })
    const waiting = canary({ now: 11_000, st: { step: 1, stepAt: 10_000, extended: true }, instances: live })
    expect(waiting).toMatchObject({ step: undefined, wakeAt: 12_000 })
    expect(canary({ now: 12_000, st: { step: 1, stepAt: 10_000, extended: true }, instances: live }).step).toEqual({ kind: 'analyze', step: 1 })
  })

  it('a passed step: the next one\'s instances start, its weight applies once they serve; a manual pause waits for resume', () => {
    // Step 2 (25%) of 4 needs 1 instance: there already is one, so it begins at once.
    const live = [...many(4, 1, 'serving'), inst(2, 'serving', 1)]
    expect(canary({ st: { step: 1, stepAt: 1, passed: true }, instances: live })).toMatchObject({ start: 0, split: 25, step: { kind: 'begin', step: 2, weight: 25 } })
    expect(canary({ st: { step: 2, stepAt: 1 }, instances: live })).toMatchObject({ split: 25, step: { kind: 'manual', step: 2 } })
    // Step 3 (50%) needs 2: one more starts, and until it serves the traffic stays at 25%.
    const next = canary({ st: { step: 2, stepAt: 1, passed: true }, instances: live })
    expect(next).toMatchObject({ start: 1, split: 25, step: undefined })
    expect(canary({ st: { step: 2, stepAt: 1, passed: true }, instances: [...live, inst(2, 'serving', 9_000)] }).step).toEqual({ kind: 'begin', step: 3, weight: 50 })
  })

  it('1 new instance among 10 old takes exactly the step\'s weight, not a tenth', () => {
    const p = canary({ size: 10, st: { step: 1, stepAt: 10_000 }, instances: [...many(10, 1, 'serving'), inst(2, 'serving', 1)] })
    expect(p.split).toBe(5)
  })

  it('paused (by the operator, or a manual step): nothing starts, the split stays', () => {
    const p = canary({ r: { status: 'paused' }, st: { step: 2, stepAt: 1 }, instances: [...many(4, 1, 'serving'), inst(2, 'serving', 1)] })
    expect(p).toEqual({ target: 2, start: 0, stop: [], split: 25 })
  })

  it('the old set is kept whole during the steps: a crashed old instance is replaced (after the backoff)', () => {
    const live = [...many(3, 1, 'serving'), inst(2, 'serving', 1)]
    expect(canary({ st: { step: 1, stepAt: 10_000 }, instances: live }).startFrom).toBe(1)
    const held = canary({ st: { step: 1, stepAt: 10_000 }, backoffUntil: 10_400, instances: live })
    expect(held).toMatchObject({ startFrom: 0, wakeAt: 10_400 })
    // A leftover of some third revision goes.
    const stray = inst(7, 'serving', 1)
    expect(canary({ st: { step: 1, stepAt: 10_000 }, instances: [...live, stray] }).stop).toEqual([stray.id])
  })

  it('progressDeadline counts only while a step waits for its instances, never during a pause', () => {
    const b = canaryBounds({ progressDeadline: 1_000 })
    const waitingForInstances = canary({ now: 20_000, bounds: b, r: { progressAt: 10_000, remaining: 8 }, instances: [...many(4, 1, 'serving'), inst(2, 'starting')] })
    expect(waitingForInstances.rollout).toMatchObject({ stalled: true })
    const longPause = canary({ now: 20_000, bounds: { ...b, canary: { steps: [{ weight: 5, pause: 3_600_000 }] } }, r: { progressAt: 10_000, remaining: 4 }, st: { step: 1, stepAt: 10_000 }, instances: [...many(4, 1, 'serving'), inst(2, 'serving', 1)] })
    expect(longPause.rollout).toMatchObject({ stalled: false })
    expect(longPause.wakeAt).toBe(10_000 + 3_600_000)
  })

  it('after the last step (or a promote): a rolling update of the rest, the new share never below the last weight', () => {
    const live = [...many(4, 1, 'serving'), ...many(2, 2, 'serving', 1)]
    const rest = canary({ st: { step: 3, stepAt: 1, passed: true, promoted: true, weight: 50 }, instances: live })
    // Rolling: 2 new available, so 2 old go at once; maxSurge 1 holds the next start until they have.
    expect(rest.stop).toHaveLength(2)
    expect(rest.start).toBe(0)
    expect(rest.split).toBe(50)
    // Further on, the share by instances is higher than the floor: it wins.
    expect(canary({ st: { promoted: true, weight: 50 }, instances: [inst(1, 'serving'), ...many(3, 2, 'serving', 1)] }).split).toBe(75)
    // Converged: no split any more.
    const done = canary({ st: { promoted: true, weight: 50 }, instances: many(4, 2, 'serving', 1) })
    expect(done.rollout?.converged).toBe(true)
    expect(done.split).toBeUndefined()
  })

  it('going back (failed analysis, abort): all traffic to the old set at once, and the new instances go', () => {
    const fresh = many(2, 2, 'serving', 1)
    const p = canary({ r: { direction: 'back' }, st: { step: 3, stepAt: 1 }, instances: [...many(4, 1, 'serving'), ...fresh] })
    expect(p.target).toBe(1)
    expect(p.split).toBe(0)
    expect(p.stop).toEqual(fresh.map(i => i.id))
    // With the old set short (the rest had begun), traffic follows the instances instead.
    expect(canary({ r: { direction: 'back' }, st: { promoted: true }, instances: [...many(2, 1, 'serving'), ...many(4, 2, 'serving', 1)] }).split).toBeUndefined()
  })
})

const bgBounds = (o: Partial<Bounds> = {}): Bounds => ({ ...bounds(1, 0, 500), blueGreen: { scaleDownDelay: 3_000 }, ...o })
function blueGreen (o: Partial<PlanInput> & { instances: PlanInstance[], st?: Partial<StepState>, r?: Partial<RolloutState> }): Plan {
  const { st, r, ...rest } = o
  return planBlueGreen({ now: 10_000, size: 4, current: 1, bounds: bgBounds(), backoffUntil: 0, rollout: forward({ steps: steps(st), ...r }), ...rest })
}

describe('planBlueGreen: one step', () => {
  it('starts a whole new set at once, beyond maxSurge, with no traffic to it', () => {
    expect(blueGreen({ instances: many(4, 1, 'serving') })).toMatchObject({ target: 2, start: 4, stop: [], split: 0, step: undefined })
  })

  it('switches once every new instance serves and has soaked for minReady (the preview window)', () => {
    const soaking = [...many(4, 1, 'serving'), ...many(3, 2, 'serving', 9_000), inst(2, 'serving', 9_800)]
    expect(blueGreen({ instances: soaking })).toMatchObject({ split: 0, step: undefined, wakeAt: 10_300 })
    const ready = blueGreen({ now: 10_300, instances: soaking })
    expect(ready).toMatchObject({ split: 100, step: { kind: 'switch' }, stop: [] })
  })

  it('keeps the old set whole for scaleDownDelay after the switch, then stops it and converges', () => {
    const fresh = many(4, 2, 'serving', 1)
    const old = many(4, 1, 'serving')
    const within = blueGreen({ now: 12_000, st: { step: 1, stepAt: 10_000 }, instances: [...old, ...fresh] })
    expect(within).toMatchObject({ split: 100, stop: [], start: 0, wakeAt: 13_000 })
    const after = blueGreen({ now: 13_000, st: { step: 1, stepAt: 10_000 }, instances: [...old, ...fresh] })
    expect(after.stop).toEqual(old.map(i => i.id))
    expect(after.split).toBe(100)
    const done = blueGreen({ now: 14_000, st: { step: 1, stepAt: 10_000 }, instances: fresh })
    expect(done.rollout?.converged).toBe(true)
    expect(done.split).toBeUndefined()
  })

  it('a rollback within scaleDownDelay switches back at once and stops the new set', () => {
    const fresh = many(4, 2, 'serving', 1)
    const p = blueGreen({ now: 12_000, r: { direction: 'back' }, st: { step: 1, stepAt: 10_000 }, instances: [...many(4, 1, 'serving'), ...fresh] })
    expect(p).toMatchObject({ target: 1, split: 0 })
    expect(p.stop).toEqual(fresh.map(i => i.id))
  })
})

/**
 * A deterministic world for the planner: an instance serves READY_MS after
 * it starts and is gone DRAIN_MS after it starts draining, except those the
 * table makes fail. Every plan is executed as the managed pool does, and the
 * bounds are checked after every single change.
 */
const READY_MS = 300
const DRAIN_MS = 200

interface SimResult { maxRunning: number, minAvailable: number, steps: number, started: number, status: string, end: number, batches: number }

function simulate (o: { size: number, surge: number, unavailable: number, minReady: number, failNew?: number, onFailure?: 'rollback' | 'pause', progressDeadline?: number }): SimResult {
  type Sim = PlanInstance & { at: number }
  let t = 0
  let n = 0
  const live: Sim[] = Array.from({ length: o.size }, () => ({ id: `old${n++}`, revision: 1, state: 'serving', readyAt: -HOUR, at: -HOUR }))
  const rollout: RolloutState = { status: 'running', direction: 'forward', from: 1, to: 2, updated: 0, remaining: Infinity, progressAt: 0 }
  let status = 'running'
  let started = 0
  let batches = 0
  let newFailures = 0
  let maxRunning = 0
  let minAvailable = Infinity
  let wakeAt: number | undefined
  const b = bounds(o.surge, o.unavailable, o.minReady, o.progressDeadline ?? HOUR)
  const check = (): void => {
    const running = live.filter(i => i.state !== 'stopped' && i.state !== 'failed').length
    const available = live.filter(i => i.state === 'serving' || i.state === 'ready').length
    maxRunning = Math.max(maxRunning, running)
    minAvailable = Math.min(minAvailable, available)
    expect(running, `t=${t}`).toBeLessThanOrEqual(o.size + o.surge)
    expect(available, `t=${t}`).toBeGreaterThanOrEqual(o.size - o.unavailable)
  }
  let steps = 0
  for (; steps < 10_000 && (status === 'running' || status === 'back'); steps++) {
    const p = planRolling({ now: t, size: o.size, current: 1, bounds: b, rollout, backoffUntil: 0, instances: live })
    for (const id of p.stop) {
      const i = live.find(x => x.id === id)
      if (i !== undefined && i.state !== 'draining') { i.state = 'draining'; i.at = t; check() }
    }
    const step = p.rollout
    if (step !== undefined) {
      rollout.updated = step.updated
      rollout.remaining = step.remaining
      if (step.progressed) rollout.progressAt = t
      if (step.newBatch) batches++
      if (step.converged) { status = rollout.direction === 'forward' ? 'succeeded' : 'rolled_back'; break }
      if (step.stalled) {
        if (rollout.direction === 'back') { status = 'failed'; break }
        rollout.direction = 'back'
        rollout.progressAt = t
        continue
      }
    }
    for (let k = 0; k < p.start; k++) {
      live.push({ id: `new${n++}`, revision: p.target, state: 'starting', readyAt: 0, at: t })
      started++
      check()
    }
    wakeAt = p.wakeAt
    // Next event: an instance's transition, or the plan's wake-up.
    const next = Math.min(...live.map(i => i.state === 'starting' ? i.at + READY_MS : i.state === 'draining' ? i.at + DRAIN_MS : Infinity), wakeAt ?? Infinity)
    if (next === Infinity) break
    t = Math.max(t, next)
    for (const i of [...live]) {
      if (i.state === 'starting' && i.at + READY_MS <= t) {
        if (i.revision === 2 && newFailures < (o.failNew ?? 0)) {
          newFailures++
          live.splice(live.indexOf(i), 1)
          const v = judgeFailure({ id: i.id, version: 'v2', revision: 2, readyAt: 0, reason: 'exited with code 1' }, { rollout, target: p.target, crash: NO_CRASHES, now: t })
          if (v.kind === 'fail-rollout') {
            if (o.onFailure === 'pause') { rollout.status = 'paused'; status = 'paused' } else { rollout.direction = 'back'; rollout.progressAt = t }
          }
        } else {
          i.state = 'serving'
          i.readyAt = t
        }
        check()
      } else if (i.state === 'draining' && i.at + DRAIN_MS <= t) {
        live.splice(live.indexOf(i), 1)
        check()
      }
    }
  }
  return { maxRunning, minAvailable, steps, started, status, end: t, batches }
}

describe('planRolling: whole rollouts, bounds checked after every change', () => {
  const table: Array<[number, number, number, number]> = [
    // size, maxSurge, maxUnavailable, minReady
    [1, 1, 0, 0], [1, 0, 1, 0], [2, 1, 0, 500], [3, 1, 1, 0], [4, 1, 0, 500], [4, 2, 1, 300],
    [4, 0, 1, 0], [4, 0, 2, 100], [5, 3, 0, 0], [6, 2, 2, 200], [10, 1, 0, 0], [10, 10, 0, 0], [10, 0, 10, 0], [7, 3, 5, 50]
  ]
  for (const [size, surge, unavailable, minReady] of table) {
    it(`size ${size}, maxSurge ${surge}, maxUnavailable ${unavailable}, minReady ${minReady}: succeeds within the bounds`, () => {
      const r = simulate({ size, surge, unavailable, minReady })
      expect(r.status).toBe('succeeded')
      // Nothing wasted: exactly `size` new instances, and the surge is used.
      expect(r.started).toBe(size)
      expect(r.maxRunning).toBe(size + surge)
      expect(r.minAvailable).toBeGreaterThanOrEqual(size - unavailable)
    })
  }

  it('wastes no time: maxSurge 1 / maxUnavailable 0 takes exactly the sum of its batches\' phases', () => {
    const r = simulate({ size: 4, surge: 1, unavailable: 0, minReady: 500 })
    expect(r.batches).toBe(4)
    // Each batch: the new instance gets ready and soaks, then the old one drains (it still counts against the surge).
    expect(r.end).toBe(4 * (READY_MS + 500 + DRAIN_MS))
    // With room for all at once, one batch: the time of one instance's phases.
    expect(simulate({ size: 4, surge: 4, unavailable: 0, minReady: 500 })).toMatchObject({ batches: 1, end: READY_MS + 500 + DRAIN_MS })
  })

  it('a new instance that fails rolls the pool back to the old revision at full size, within the bounds', () => {
    for (const [size, surge, unavailable] of [[4, 1, 0], [4, 2, 1], [3, 0, 1]]) {
      const r = simulate({ size, surge, unavailable, minReady: 0, failNew: 1 })
      expect(r.status, `${size}/${surge}/${unavailable}`).toBe('rolled_back')
    }
  })

  it('progressDeadline shorter than getting ready: forward stalls and rolls back; rolling back stalls only if a drain outlasts it', () => {
    // A new instance needs READY_MS (300) to be available: a 250 ms deadline stalls it; stopping it takes DRAIN_MS (200).
    expect(simulate({ size: 2, surge: 1, unavailable: 0, minReady: 0, progressDeadline: 250 }).status).toBe('rolled_back')
    expect(simulate({ size: 2, surge: 1, unavailable: 0, minReady: 0, progressDeadline: 150 }).status).toBe('failed')
    // Long enough for every step: it succeeds.
    expect(simulate({ size: 4, surge: 1, unavailable: 0, minReady: 0, progressDeadline: READY_MS + DRAIN_MS }).status).toBe('succeeded')
  })

  it('onFailure pause: the rollout stops moving where it failed', () => {
    const r = simulate({ size: 4, surge: 1, unavailable: 0, minReady: 0, failNew: 1, onFailure: 'pause' })
    expect(r.status).toBe('paused')
  })
})

describe('failures', () => {
  it('crash backoff doubles from 0.5 s up to 30 s, and is forgotten after 10 s of healthy serving', () => {
    let rec = NO_CRASHES
    const delays: number[] = []
    for (let k = 0; k < 9; k++) {
      const next = afterCrash(rec, 0, 1_000)
      delays.push(next.delayMs)
      expect(next.backoffUntil).toBe(1_000 + next.delayMs)
      rec = next
    }
    expect(delays).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000])
    // An instance that served healthily for longer than the reset crashes: back to the first step.
    expect(afterCrash(rec, 1_000, 1_000 + BACKOFF.healthyResetMs + 1)).toMatchObject({ crashes: 1, delayMs: 500 })
    expect(afterCrash(rec, 1_000, 1_000 + BACKOFF.healthyResetMs).crashes).toBe(10)
  })

  const base = { id: 'web-2-a', version: 'v2', readyAt: 0, reason: 'exited with code 1' }
  it('judges a failed instance by its revision and the rollout', () => {
    const fwd = forward()
    expect(judgeFailure({ ...base, revision: 2 }, { rollout: fwd, target: 2, crash: NO_CRASHES, now: 0 }))
      .toEqual({ kind: 'fail-rollout', reason: 'instance web-2-a of v2: exited with code 1' })
    // An old instance crashing while the rollout goes forward: not the target, nothing to do.
    expect(judgeFailure({ ...base, revision: 1 }, { rollout: fwd, target: 2, crash: NO_CRASHES, now: 0 })).toEqual({ kind: 'none' })
    // Outside a rollout: a crash of the current revision, replaced after the backoff.
    expect(judgeFailure({ ...base, revision: 1 }, { rollout: undefined, target: 1, crash: NO_CRASHES, now: 0 })).toMatchObject({ kind: 'crash', record: { crashes: 1, delayMs: 500 } })
    // Rolling back, the old revision crashing again and again: the rollout gives up.
    const back = forward({ direction: 'back' })
    const crash = { crashes: GIVE_UP_AFTER - 2, backoffUntil: 0 }
    expect(judgeFailure({ ...base, revision: 1 }, { rollout: back, target: 1, crash, now: 0 })).toMatchObject({ kind: 'crash', giveUp: undefined })
    expect(judgeFailure({ ...base, revision: 1 }, { rollout: back, target: 1, crash: { ...crash, crashes: GIVE_UP_AFTER - 1 }, now: 0 }))
      .toMatchObject({ kind: 'crash', giveUp: 'instances of v2 keep failing (exited with code 1)' })
  })

  it('a new instance that loses readiness while serving fails a rollout going forward, nothing else', () => {
    expect(judgeUnready({ id: 'x', version: 'v2', revision: 2 }, forward())).toMatchObject({ kind: 'fail-rollout' })
    expect(judgeUnready({ id: 'x', version: 'v2', revision: 2 }, forward({ direction: 'back' }))).toEqual({ kind: 'none' })
    expect(judgeUnready({ id: 'x', version: 'v1', revision: 1 }, forward())).toEqual({ kind: 'none' })
    expect(judgeUnready({ id: 'x', version: 'v1', revision: 1 }, undefined)).toEqual({ kind: 'none' })
  })
})
