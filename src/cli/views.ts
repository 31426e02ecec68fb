/** The admin API's answers as the CLI reads them (SPEC §3); extra fields are ignored. */

export interface InstanceView {
  id: string
  version: string
  revision: number
  address: string | null
  state: string
  inflight: number
  requests: number
  pid: number | null
  startedAt: string
  failure?: string | null
}

export interface PoolView {
  name: string
  kind?: string
  revision: number
  version: string
  size: number
  instances: InstanceView[]
  rollout: string | null
  restarts?: number
  crashLoop?: boolean
}

export interface RolloutView {
  id: string
  pool: string
  fromRevision: number
  toRevision: number
  fromVersion?: string
  toVersion?: string
  status: string
  direction?: string
  updated: number
  total: number
  startedAt: string
  finishedAt: string | null
  error: string | null
  events: Array<{ at: string, message: string }>
  /** What the users saw, with the batches the engine counted (newer batons). */
  report?: { batches?: Array<{ batch: number }> } | null
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

export const enc = encodeURIComponent
