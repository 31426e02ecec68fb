import type { RolloutState } from './planner.js'

/**
 * What an instance's failure means for its pool and rollout, as pure
 * functions (the managed pool applies the verdict). A failed instance of the
 * new revision fails a rollout going forward (G3); a failed instance of the
 * revision the pool converges on is a crash, replaced after a backoff that
 * doubles with each crash in a row, like a Kubernetes CrashLoopBackOff.
 */

/** Crash-loop backoff: 0.5 s, 1 s, 2 s, ... up to 30 s; forgotten after 10 s of healthy serving. */
export const BACKOFF = { baseMs: 500, maxMs: 30_000, healthyResetMs: 10_000 } as const
/** From this many crashes in a row, status says the pool is in a crash loop. */
export const CRASH_LOOP_AFTER = 3
/** Rolling back and the old revision crashed this many times in a row: the rollout gives up. */
export const GIVE_UP_AFTER = 5

export interface CrashRecord {
  /** Crashes in a row (reset by healthy serving, or by a new rollout). */
  crashes: number
  /** No instance is started before this (ms epoch). */
  backoffUntil: number
}

export const NO_CRASHES: CrashRecord = { crashes: 0, backoffUntil: 0 }

/** The record after one more crash of an instance that became ready at `readyAt` (0: never). */
export function afterCrash (prev: CrashRecord, readyAt: number, now: number): CrashRecord & { delayMs: number } {
  const healthy = readyAt > 0 && now - readyAt > BACKOFF.healthyResetMs
  const crashes = (healthy ? 0 : prev.crashes) + 1
  const delayMs = Math.min(BACKOFF.maxMs, BACKOFF.baseMs * 2 ** (crashes - 1))
  return { crashes, backoffUntil: now + delayMs, delayMs }
}

export interface FailedInstance {
  id: string
  version: string
  revision: number
  readyAt: number
  reason: string
}

export type Verdict =
  /** The rollout fails; its onFailure applies (rollback or pause). */
  | { kind: 'fail-rollout', reason: string }
  /** A crash of the revision the pool converges on: replace it after the backoff; `giveUp` when rolling back cannot succeed. */
  | { kind: 'crash', record: CrashRecord & { delayMs: number }, giveUp?: string }
  /** An instance of a revision the pool is leaving: nothing to do. */
  | { kind: 'none' }

export interface FailureContext {
  rollout: RolloutState | undefined
  /** The revision the pool converges on. */
  target: number
  /** A revision whose crashed instances are replaced too: a canary's or blue-green's old set, kept whole beside the new one. */
  stable?: number
  crash: CrashRecord
  now: number
}

/** An instance failed: it crashed, never got ready within startTimeout, or could not be started. */
export function judgeFailure (i: FailedInstance, ctx: FailureContext): Verdict {
  const r = ctx.rollout
  if (r?.direction === 'forward' && i.revision === r.to) return { kind: 'fail-rollout', reason: `instance ${i.id} of ${i.version}: ${i.reason}` }
  if (i.revision !== ctx.target && i.revision !== ctx.stable) return { kind: 'none' }
  const record = afterCrash(ctx.crash, i.readyAt, ctx.now)
  const giveUp = r?.direction === 'back' && i.revision === r.from && record.crashes >= GIVE_UP_AFTER
    ? `instances of ${i.version} keep failing (${i.reason})`
    : undefined
  return { kind: 'crash', record, giveUp }
}

/** A serving instance failed its readiness probe (it left the balancer but runs on). */
export function judgeUnready (i: { id: string, version: string, revision: number }, rollout: RolloutState | undefined): Verdict {
  if (rollout?.direction === 'forward' && i.revision === rollout.to) {
    return { kind: 'fail-rollout', reason: `instance ${i.id} of ${i.version} failed its readiness probe while serving` }
  }
  return { kind: 'none' }
}
