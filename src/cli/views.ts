/**
 * The admin API's answers as the CLI reads them (README "Admin API"): the
 * server's own types, loosened where an older baton answers less; extra
 * fields are ignored. Type-only imports: the CLI loads none of the server.
 */
import type { InstanceView as ServedInstance, PoolView as ServedPool } from '../controller/controller.js'
import type { RolloutView as ServedRollout } from '../rollout/rollout.js'

/** An instance as the CLI reads it: an older baton may not say why one failed. */
export type InstanceView = Omit<ServedInstance, 'state' | 'failure'> & { state: string, failure?: string | null }

/** A pool as the CLI reads it: what an older baton lacks is optional. */
export type PoolView = Omit<ServedPool, 'kind' | 'instances' | 'revisions'> & { kind?: string, instances: InstanceView[] }

/** A rollout as the CLI reads it; the report carries the batches the engine counted (newer batons). */
export type RolloutView = Omit<ServedRollout, 'fromVersion' | 'toVersion' | 'direction' | 'status' | 'strategy' | 'step' | 'weight' | 'analysis'> & {
  fromVersion?: string
  toVersion?: string
  direction?: string
  status: string
  report?: { batches?: Array<{ batch: number }> } | null
  strategy?: string
  step?: number
  weight?: number
  analysis?: ServedRollout['analysis']
}

const FINISHED = new Set(['succeeded', 'failed', 'rolled_back', 'aborted'])

/** Finished, or paused by a failure (onFailure: pause): nothing moves without the operator. */
export function isOver (v: RolloutView): boolean {
  return FINISHED.has(v.status) || (v.status === 'paused' && v.error !== null)
}

/** `revision 2 (v2)` */
export function revisionLabel (n: number, version: string | undefined): string {
  return version === undefined ? `revision ${n}` : `revision ${n} (${version})`
}

/** What a rollout's status means, in a few words. */
export function statusWords (v: RolloutView): string {
  switch (v.status) {
    case 'running': return v.direction === 'back' ? 'rolling back' : 'running'
    case 'paused': return v.error === null ? 'paused' : 'paused after a failure'
    case 'rolled_back': return 'rolled back'
    case 'aborted': return 'aborted'
    default: return v.status
  }
}

/** Where a canary or blue-green stands: `step 2/3, 25% to v2`; empty for a rolling update (or an older baton). */
export function stepWords (v: RolloutView): string {
  if (v.strategy === undefined || v.strategy === 'rolling') return ''
  const to = v.toVersion ?? `revision ${v.toRevision}`
  const step = v.strategy === 'canary' ? `step ${v.step ?? 0}, ` : v.step === 1 ? 'switched, ' : 'not switched yet, '
  return `${step}${v.weight ?? 0}% to ${to}`
}

export const enc = encodeURIComponent
