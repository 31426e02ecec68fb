import type { InstanceView, PoolView } from '../../src/controller/controller.js'
import type { PoolEvent } from '../../src/controller/managed-pool.js'
import type { TrafficEvent } from '../../src/admin/traffic-stream.js'
import type { RolloutReport } from '../../src/rollout/report.js'
import type { RolloutView } from '../../src/rollout/rollout.js'

export type { InstanceView, PoolView, RolloutReport, RolloutView }

/** GET /v1/rollouts/ID: the rollout with its report. */
export interface RolloutAnswer extends RolloutView { report: RolloutReport }

/** An admin API refusal. */
export interface ApiError { error: string, code: string, problems?: string[] }

/**
 * An admin API answer as a test reads it: the fields of every answer (the
 * pools, one pool, a rollout, an error), for the test to assert on the ones
 * the route it called gives.
 */
export type AnyAnswer = PoolView & RolloutAnswer & ApiError & { pools: PoolView[], changes: string[], rollouts: string[], traffic: TrafficEvent[] }

/** GET /v1/pools/NAME/rollouts (its `rollouts` are records, where a reload's are ids). */
export interface PoolRolloutsAnswer { rollouts: Array<Omit<RolloutView, 'events'>> }

type Without<T, K extends keyof T> = Omit<T, K>
/** A GET /v1/events message's data: the fields of instance and rollout events. */
export type EventData = Without<Extract<PoolEvent, { type: 'instance' }>, 'type'> & Without<Extract<PoolEvent, { type: 'rollout' }>, 'type' | 'pool'> &
  Without<TrafficEvent, 'type' | 'pool'> & { type: string }

/** The value, which the test needs present: fails the test when it is null or undefined. */
export function present<T> (v: T | null | undefined, what = 'a value'): T {
  if (v === null || v === undefined) throw new Error(`expected ${what}, got ${String(v)}`)
  return v
}
