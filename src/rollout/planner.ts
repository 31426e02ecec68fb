/**
 * The rollout engine's decisions, as pure functions of the pool's state: no
 * clock, no timer, no I/O. The managed pool (src/controller/managed-pool.ts)
 * gathers its instances and its rollout into a PlanInput after every event,
 * asks for a Plan and executes it. A strategy is a plan function; `rolling`
 * is the only one today. Canary or blue-green would be another function of
 * the same PlanInput returning the same Plan (plus the traffic split they
 * need, for the table's `split`), chosen by `plannerFor`.
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
}

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

export type StrategyName = 'rolling'

/** The plan function of a strategy. */
export function plannerFor (strategy: StrategyName): Planner {
  switch (strategy) {
    case 'rolling': return planRolling
  }
}
