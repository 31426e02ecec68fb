import type { Config, ListenConfig, PoolConfig } from './types.js'

/** What a reload changes, pool by pool; the caller applies it in place. */
export interface ConfigDiff {
  /** A listener added, removed, or changed in kind (plain, TLS, HTTP/2, redirect) or minVersion. */
  listeners: boolean
  /** The certificate files of a TLS listener changed (what they hold: reload re-reads them). */
  certificates: boolean
  routes: boolean
  /** Proxy settings changed. */
  proxy: boolean
  adminListen: boolean
  /** `workers:` changed: it applies at the next upgrade or start. */
  workers: boolean
  added: string[]
  removed: string[]
  /** Pools present before and after; `rollout` when their process/container spec or version changed. */
  changed: Array<{ name: string, rollout: boolean, replace: boolean }>
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/** What a pool runs: its process or container spec, or its servers. */
function runs (p: PoolConfig): unknown {
  return p.kind === 'process' ? p.process : p.kind === 'docker' ? p.docker : p.servers
}

/** Needs a rollout: what runs changed (README "Admin API": reload). */
function needsRollout (a: PoolConfig, b: PoolConfig): boolean {
  return a.version !== b.version || !same(runs(a), runs(b))
}

/** A listener without its certificates' contents. */
function listenerShape (l: ListenConfig): unknown {
  return { ...l, tls: l.tls === undefined ? undefined : { minVersion: l.tls.minVersion, certificates: l.tls.certificates.length } }
}

const certificatesOf = (c: Config): unknown => c.listen.map(l => l.tls?.certificates)

export function diffConfig (a: Config, b: Config): ConfigDiff {
  const changed: ConfigDiff['changed'] = []
  for (const [name, next] of Object.entries(b.pools)) {
    const prev = a.pools[name]
    if (prev === undefined || same(prev, next)) continue
    // A pool that changes kind (process → servers, ...) is a new pool under an old name.
    const replace = prev.kind !== next.kind
    changed.push({ name, rollout: !replace && next.kind !== 'static' && needsRollout(prev, next), replace })
  }
  return {
    listeners: !same(a.listen.map(listenerShape), b.listen.map(listenerShape)),
    certificates: !same(certificatesOf(a), certificatesOf(b)),
    routes: !same(a.routes, b.routes),
    proxy: !same(a.proxy, b.proxy),
    adminListen: a.admin.host !== b.admin.host || a.admin.port !== b.admin.port,
    workers: a.workers !== b.workers,
    added: Object.keys(b.pools).filter(n => a.pools[n] === undefined),
    removed: Object.keys(a.pools).filter(n => b.pools[n] === undefined),
    changed
  }
}
