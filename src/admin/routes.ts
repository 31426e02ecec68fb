import type { Baton } from '../baton.js'
import type { Upstream } from '../pool/upstream.js'
import { AdminError } from './server.js'

export function instanceView (u: Upstream): Record<string, unknown> {
  return {
    id: u.id,
    version: u.version,
    revision: u.revision,
    address: u.address,
    state: u.state,
    inflight: u.inflight,
    requests: u.requests,
    pid: null,
    startedAt: u.startedAt.toISOString()
  }
}

function poolView (baton: Baton, name: string): Record<string, unknown> {
  const runtime = baton.runtimes.get(name)
  const pool = baton.pools.get(name)
  if (runtime === undefined || pool === undefined) throw new AdminError(404, `no pool named "${name}"`)
  return {
    name,
    kind: pool.config.kind,
    revision: 1,
    version: pool.config.version,
    size: pool.config.size,
    instances: runtime.upstreams.map(instanceView),
    rollout: null
  }
}

/** The admin API's routes (SPEC §3). */
export function registerRoutes (baton: Baton): void {
  const admin = baton.admin
  admin.on('GET', '/healthz', () => ({ status: 'ok' }))
  admin.on('GET', '/metrics', async (_req, res) => {
    const text = await baton.metrics.text()
    res.writeHead(200, { 'content-type': baton.metrics.registry.contentType })
    res.end(text)
  }, true)
  admin.on('GET', '/v1/pools', () => ({ pools: [...baton.pools.keys()].map(n => poolView(baton, n)) }))
  admin.on('GET', '/v1/pools/:name', (_req, _res, [name]) => poolView(baton, name))
}
