/**
 * The rollout engine's decisions, as pure functions of the pool's state: no
 * clock, no timer, no I/O. The managed pool (src/controller/managed-pool.ts)
 * gathers its instances and its rollout into a PlanInput after every event,
 * asks for a Plan and executes it. A strategy is a plan function, chosen by
 * `plannerFor`: `rolling` converges by instance counts; `canary` and
 * `blueGreen` also say how the pool's requests divide between the two
 * revisions (the table's `split`) and when a step begins, is judged or
 * switches (`Plan.step`).
 */

/** An instance's life: starting → ready → serving → draining → stopped, or failed. */
export type InstanceState = 'starting' | 'ready' | 'serving' | 'draining' | 'stopped' | 'failed'

/** What the planner knows of one instance that is not stopped or failed. */
export interface PlanInstance {
  id: string
  /** Revision number it runs. */
  revision: number
  state: InstanceState
  /** When it last became ready (ms epoch), 0 if it never was: the start of its minReady soak. */
  readyAt: number
  /** Draining with no HTTP request left, only upgraded connections (they drain on, up to drainTimeout). */
  upgradesOnly?: boolean
}

/** The rollout knobs, counts resolved against the pool's size. */
export interface Bounds {
  /** Instances allowed above size (draining ones count, but see `draining`). */
  surge: number
  /** Draining instances that hold only upgraded connections and no longer count against `surge`, at most. */
  draining: number
  /** Instances allowed below size among those available. */
  unavailable: number
  /** ms a new instance must serve before it counts as available (forward only). */
  minReady: number
  /** ms without progress after which a running rollout is stuck. */
  progressDeadline: number
  /** Canary: the steps, each a weight (percent of requests to the new revision) and a pause (ms, or manual). */
  canary?: { steps: readonly CanaryStep[] }
  /** Blue-green: how long the old set stays ready after the switch. */
  blueGreen?: { scaleDownDelay: number }
}

export interface CanaryStep { weight: number, pause: number | 'manual' }

/** How far a canary or blue-green rollout has gone through its steps. */
export interface StepState {
  /** Canary: the current step, 1-based, 0 before the first step's traffic. Blue-green: 1 once switched. */
  step: number
  /** When the current step's traffic began, or the switch (ms epoch); 0 before. */
  stepAt: number
  /** The current step's analysis passed: the next step begins once its instances serve. */
  passed: boolean
  /** The step is waiting one more pause for traffic (analysis.minRequests). */
  extended: boolean
  /** No step is left (all passed, or promote skipped them): the rest is a rolling update. */
  promoted: boolean
  /** The weight the split last had: the rolling rest of a canary never sends the new revision less. */
  weight: number
}

/** The state of the active rollout, as far as planning goes. */
export interface RolloutState {
  status: 'running' | 'paused'
  /** forward: towards `to`; back: restoring `from`. */
  direction: 'forward' | 'back'
  from: number
  to: number
  /** What the rollout reported last time (see RolloutStep.updated). */
  updated: number
  /** The distance to convergence last time (see RolloutStep.remaining); Infinity before the first plan. */
  remaining: number
  /** When it last made progress, changed direction or resumed (ms epoch). */
  progressAt: number
  /** Canary and blue-green only. */
  steps?: StepState
}

export interface PlanInput {
  now: number
  /** Instances wanted once converged. */
  size: number
  /** The revision the pool serves when no rollout is active. */
  current: number
  bounds: Bounds
  rollout?: RolloutState
  /** No instance is started before this (crash-loop backoff; see failures.ts). */
  backoffUntil: number
  /** Every instance not stopped or failed, in the order they were started. */
  instances: readonly PlanInstance[]
}

export interface RolloutStep {
  /** forward: new instances available; back: new instances still serving. */
  updated: number
  /**
   * The distance to convergence: instances of other revisions still running
   * (draining ones too) plus target instances missing or not available yet.
   */
  remaining: number
  /** `remaining` went down, whatever the direction: the progressDeadline clock restarts. */
  progressed: boolean
  /** Instances start in this step: they make a new batch of the rollout. */
  newBatch: boolean
  /** The pool serves the target revision at full size, nothing else runs. */
  converged: boolean
  /** progressDeadline passed without progress: the rollout fails (forward) or gives up (back). */
  stalled: boolean
}

export interface Plan {
  /** The revision the pool converges on now. */
  target: number
  /** Instances of `target` to start now. */
  start: number
  /** Instances to drain and stop, by id, in this order. */
  stop: string[]
  /** Plan again then at the latest, if nothing happens before (a soak ends, a backoff ends, a deadline). */
  wakeAt?: number
  /** What the active rollout should record; absent without one, or while it is paused. */
  rollout?: RolloutStep
  /** The share of requests (percent) the table sends to the rollout's new revision; absent: no split, by instances. */
  split?: number
  /** Instances of the rollout's old revision to start: the stable set kept whole during a canary's steps or before a blue-green's scale-down. */
  startFrom?: number
  /** A canary or blue-green step to record now. */
  step?: StepAction
}

export type StepAction =
  /** The step's instances serve: its traffic begins now, at `weight`. */
  | { kind: 'begin', step: number, weight: number }
  /** The step's pause is over: judge it (see analysis.ts). */
  | { kind: 'analyze', step: number }
  /** The step pauses until `resume` (pause: manual); it is judged then. */
  | { kind: 'manual', step: number }
  /** Blue-green: the new set is ready and soaked; every new request goes to it from now on. */
  | { kind: 'switch' }

export type Planner = (input: PlanInput) => Plan

/** New instances a canary step of `weight` percent runs: its share of the pool, at least one, at most the size. */
export function canaryInstances (size: number, weight: number): number {
  return Math.min(size, Math.max(1, Math.ceil((size * weight) / 100)))
}

const isServing = (i: PlanInstance): boolean => i.state === 'serving'
const isDraining = (i: PlanInstance): boolean => i.state === 'draining'
/** Starting or ready: running, but no traffic yet. */
const isComing = (i: PlanInstance): boolean => i.state === 'starting' || i.state === 'ready'

/**
 * A rolling update, as a Kubernetes Deployment does it: the pool converges on
 * one target revision, `size` instances of it, never more than
 * size + surge running (draining ones count) nor fewer than
 * size - unavailable available. The same function replaces crashed
 * instances outside a rollout and applies size changes.
 */
export const planRolling: Planner = (input) => {
  const { now, size, bounds, instances } = input
  const r = input.rollout
  const target = r === undefined ? input.current : r.direction === 'forward' ? r.to : r.from
  const mine = instances.filter(i => i.revision === target)
  const others = instances.filter(i => i.revision !== target)
  const stop: string[] = []
  let wakeAt: number | undefined
  const wake = (at: number): void => { if (wakeAt === undefined || at < wakeAt) wakeAt = at }

  // Instances of other revisions that carry no traffic go at once, even while paused.
  for (const o of others) if (isComing(o)) stop.push(o.id)
  if (r?.status === 'paused') return { target, start: 0, stop }

  // Available: serving, and for the new instances of a rollout going forward, soaked for minReady.
  const soak = r?.direction === 'forward' ? bounds.minReady : 0
  const isAvailable = (i: PlanInstance): boolean => isServing(i) && now - i.readyAt >= soak
  const mineAvailable = mine.filter(isAvailable).length
  const othersServing = others.filter(isServing)
  const updated = r === undefined ? 0 : r.direction === 'forward' ? mineAvailable : othersServing.length

  // Scale down other revisions while enough stay available.
  const canStop = mineAvailable + othersServing.length - (size - bounds.unavailable)
  for (const o of othersServing.slice(0, Math.max(0, canStop))) stop.push(o.id)

  // Surplus of the target (size was lowered): those without traffic first, then the newest.
  const mineActive = mine.filter(i => !isDraining(i))
  const surplus = mineActive.length - size
  if (surplus > 0) {
    const victims = [...mineActive.filter(i => !isServing(i)).reverse(), ...mineActive.filter(isServing).reverse()]
    for (const v of victims.slice(0, surplus)) stop.push(v.id)
  }

  // Scale up the target within the surge. Draining instances still run and
  // count, but those left with only upgraded connections (WebSockets that
  // may stay until drainTimeout) do not, up to `draining` of them.
  const running = instances.length - Math.min(bounds.draining, instances.filter(i => isDraining(i) && i.upgradesOnly === true).length)
  let start = Math.max(0, Math.min(size - mineActive.length, size + bounds.surge - running))
  if (start > 0 && now < input.backoffUntil) {
    wake(input.backoffUntil)
    start = 0
  }

  // Plan again when the next soak ends.
  if (soak > 0) for (const i of mine) if (isServing(i) && now - i.readyAt < soak) wake(i.readyAt + soak)

  if (r === undefined) return { target, start, stop, wakeAt }
  const converged = mine.length === size && mineAvailable === size && others.length === 0
  if (converged) return { target, start, stop, rollout: { updated: size, remaining: 0, progressed: true, newBatch: false, converged, stalled: false } }
  const remaining = others.length + Math.max(0, size - mineAvailable)
  const progressed = remaining < r.remaining
  const deadline = (progressed ? now : r.progressAt) + bounds.progressDeadline
  if (now >= deadline) {
    // Nothing more moves until the rollout turned (failed, paused or gave up).
    return { target, start: 0, stop: [], rollout: { updated, remaining, progressed: false, newBatch: false, converged: false, stalled: true } }
  }
  wake(deadline)
  return { target, start, stop, wakeAt, rollout: { updated, remaining, progressed, newBatch: start > 0, converged: false, stalled: false } }
}

/** The knobs of a step-wise plan, out of a PlanInput. */
function stepsContext (input: PlanInput, r: RolloutState) {
  const { now, size, instances } = input
  const mine = instances.filter(i => i.revision === r.to)
  const old = instances.filter(i => i.revision === r.from)
  // Instances of any other revision (an earlier rollout's leftovers) have no place here.
  const stop = instances.filter(i => i.revision !== r.to && i.revision !== r.from && !isDraining(i)).map(i => i.id)
  let wakeAt: number | undefined
  const wake = (at: number): void => { if (wakeAt === undefined || at < wakeAt) wakeAt = at }
  // The old set stays whole while it may get all the traffic back at once: crashed ones are replaced.
  let startFrom = Math.max(0, size - old.filter(i => !isDraining(i)).length)
  if (startFrom > 0 && now < input.backoffUntil) {
    wake(input.backoffUntil)
    startFrom = 0
  }
  return { now, size, mine, old, stop, startFrom, wake, wakeAt: () => wakeAt }
}

/** The record of a step-wise rollout's plan: progress by new instances serving (or `available`), no deadline during a pause. */
function stepRecord (input: PlanInput, r: RolloutState, available: number, others: number, waiting: boolean, began: boolean, start: number): RolloutStep & { deadline?: number } {
  const remaining = others + Math.max(0, input.size - available)
  const progressed = remaining < r.remaining || began
  const record = { updated: available, remaining, progressed, newBatch: start > 0, converged: false, stalled: false }
  // Only waiting for instances is timed: a pause is not a lack of progress.
  if (!waiting) return record
  const deadline = (progressed ? input.now : r.progressAt) + input.bounds.progressDeadline
  return { ...record, stalled: input.now >= deadline, deadline }
}

/**
 * The rest of a canary (or a blue-green going back): a rolling update, and
 * the split that goes with it. Forward, the new revision's share never drops
 * below the last step's weight and grows with its instances; back, all the
 * traffic returns at once while the old set can carry it, else by instances.
 */
function planRest (input: PlanInput): Plan {
  const p = planRolling(input)
  const r = input.rollout
  if (r === undefined || p.rollout?.converged === true) return p
  const serving = (rev: number): number => input.instances.filter(i => i.revision === rev && isServing(i)).length
  const [fresh, old] = [serving(r.to), serving(r.from)]
  if (r.direction === 'back') {
    return old >= Math.max(1, input.size - input.bounds.unavailable) ? { ...p, split: 0 } : p
  }
  const share = fresh + old === 0 ? 0 : (100 * fresh) / (fresh + old)
  return { ...p, split: Math.max(r.steps?.weight ?? 0, share) }
}

/**
 * A canary (README "Progressive delivery"): for each step, enough new instances for its weight
 * (at least one) beside the whole old set; once they serve, the step's
 * weight of requests goes to the new revision, whatever the instance
 * counts; its pause ends in an analysis (or waits for resume). After the
 * last step, or a promote, the rest of the pool is replaced as a rolling
 * update would.
 */
export const planCanary: Planner = (input) => {
  const r = input.rollout
  const steps = input.bounds.canary?.steps ?? []
  const st = r?.steps
  if (r === undefined || st === undefined || r.direction === 'back' || st.promoted || steps.length === 0) return planRest(input)
  const c = stepsContext(input, r)
  const weightNow = st.step === 0 ? 0 : steps[st.step - 1].weight
  if (r.status === 'paused') return { target: r.to, start: 0, stop: c.stop, split: weightNow }

  // The step whose instances are needed: the current one, or the next once it passed.
  const want = Math.min(steps.length, st.step === 0 || st.passed ? st.step + 1 : st.step)
  const need = canaryInstances(c.size, steps[want - 1].weight)
  const mineActive = c.mine.filter(i => !isDraining(i)).length
  const mineServing = c.mine.filter(isServing).length
  const start = Math.max(0, need - mineActive)
  let step: StepAction | undefined
  if (want !== st.step) {
    if (mineServing >= need) step = { kind: 'begin', step: want, weight: steps[want - 1].weight }
  } else {
    const pause = steps[st.step - 1].pause
    if (pause === 'manual') step = { kind: 'manual', step: st.step }
    else {
      const due = st.stepAt + pause * (st.extended ? 2 : 1)
      if (input.now >= due) step = { kind: 'analyze', step: st.step }
      else c.wake(due)
    }
  }
  const record = stepRecord(input, r, mineServing, c.old.length, want !== st.step && step === undefined, step?.kind === 'begin', start)
  if (record.stalled) return { target: r.to, start: 0, stop: [], split: weightNow, rollout: record }
  if (record.deadline !== undefined) c.wake(record.deadline)
  const { deadline: _deadline, ...rollout } = record
  return { target: r.to, start, startFrom: c.startFrom, stop: c.stop, wakeAt: c.wakeAt(), rollout, split: step?.kind === 'begin' ? step.weight : weightNow, step }
}

/**
 * Blue-green (README "Progressive delivery"): a whole new set beside the old one, ready and soaked
 * for minReady (the preview window), then every new request switches to it
 * at once; the old set stays ready for scaleDownDelay (a rollback within it
 * switches back at once), then drains and stops.
 */
export const planBlueGreen: Planner = (input) => {
  const r = input.rollout
  const st = r?.steps
  if (r === undefined || st === undefined || r.direction === 'back') return planRest(input)
  const c = stepsContext(input, r)
  const switched = st.step > 0
  if (r.status === 'paused') return { target: r.to, start: 0, stop: c.stop, split: switched ? 100 : 0 }
  const mineActive = c.mine.filter(i => !isDraining(i)).length
  const isAvailable = (i: PlanInstance): boolean => isServing(i) && c.now - i.readyAt >= input.bounds.minReady
  const available = c.mine.filter(isAvailable).length
  if (!switched) {
    const start = Math.max(0, c.size - mineActive)
    for (const i of c.mine) if (isServing(i) && !isAvailable(i)) c.wake(i.readyAt + input.bounds.minReady)
    const step: StepAction | undefined = available >= c.size ? { kind: 'switch' } : undefined
    const record = stepRecord(input, r, available, c.old.length, step === undefined, step !== undefined, start)
    if (record.stalled) return { target: r.to, start: 0, stop: [], split: 0, rollout: record }
    if (record.deadline !== undefined) c.wake(record.deadline)
    const { deadline: _deadline, ...rollout } = record
    return { target: r.to, start, startFrom: c.startFrom, stop: c.stop, wakeAt: c.wakeAt(), rollout, split: step === undefined ? 0 : 100, step }
  }
  const scaleDown = st.stepAt + (input.bounds.blueGreen?.scaleDownDelay ?? 0)
  if (c.now < scaleDown) {
    // Within scaleDownDelay the old set stays whole, for an instant rollback.
    c.wake(scaleDown)
    const rollout = stepRecord(input, r, available, c.old.length, false, false, 0)
    return { target: r.to, start: 0, startFrom: c.startFrom, stop: c.stop, wakeAt: c.wakeAt(), rollout, split: 100 }
  }
  const stop = [...c.stop, ...c.old.filter(i => !isDraining(i)).map(i => i.id)]
  const converged = c.old.length === 0 && c.stop.length === 0 && available === c.size && c.mine.length === c.size
  const rollout = { ...stepRecord(input, r, available, c.old.length, false, false, 0), converged }
  return { target: r.to, start: 0, stop, rollout, split: converged ? undefined : 100 }
}

export type StrategyName = 'rolling' | 'canary' | 'blueGreen'

/** The plan function of a strategy. */
export function plannerFor (strategy: StrategyName): Planner {
  switch (strategy) {
    case 'rolling': return planRolling
    case 'canary': return planCanary
    case 'blueGreen': return planBlueGreen
  }
}
