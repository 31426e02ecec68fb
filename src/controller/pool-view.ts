import type { PoolConfig } from '../config/types.js'
import type { MemberCounts } from './data-plane-link.js'
import type { MemberInfo, PoolRuntime } from './runtimes.js'

/** An instance or server as GET /v1/pools shows it. */
export interface InstanceView extends Omit<MemberInfo, 'startedAt'> {
  /** Requests and upgraded connections in flight. */
  inflight: number
  /** Of those, upgraded connections (WebSockets). */
  upgrades: number
  requests: number
  startedAt: string
}

export interface PoolView {
  name: string
  kind: PoolConfig['kind']
  revision: number
  version: string
  size: number
  instances: InstanceView[]
  rollout: string | null
  restarts?: number
  crashLoop?: boolean
  revisions?: Array<{ number: number, version: string, createdAt: string }>
}

/** A pool as GET /v1/pools shows it: its runtime's members with what the data planes count for each. */
export function poolView (name: string, runtime: PoolRuntime, counts: Map<string, MemberCounts>): PoolView {
  const pc = runtime.config
  const instances = runtime.members().map(i => ({
    ...i,
    inflight: counts.get(i.id)?.inflight ?? 0,
    upgrades: counts.get(i.id)?.upgrades ?? 0,
    requests: counts.get(i.id)?.requests ?? 0,
    startedAt: new Date(i.startedAt).toISOString()
  }))
  const m = runtime.managed
  if (m === undefined) return { name, kind: pc.kind, revision: 1, version: pc.version, size: pc.size, instances, rollout: null }
  return {
    name,
    kind: pc.kind,
    revision: m.target.number,
    version: m.target.version,
    size: pc.size,
    instances,
    rollout: m.rollout?.active === true ? m.rollout.id : null,
    restarts: m.restarts,
    crashLoop: m.crashLooping,
    revisions: m.revisions.map(r => ({ number: r.number, version: r.version, createdAt: r.createdAt }))
  }
}
