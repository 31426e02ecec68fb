import type { ServerResponse } from 'node:http'
import type { Baton } from '../baton.js'
import { ConfigError, formatProblem } from '../config/errors.js'
import type { Instance } from '../controller/instance.js'
import type { PoolEvent } from '../controller/managed-pool.js'
import type { Upstream } from '../upstream/upstream.js'
import { buildReport } from '../rollout/report.js'
import { renderSvg } from '../rollout/svg.js'
import { checkMovable, parseBody, rolloutBody } from './bodies.js'
import { registerLivePage } from './live-page.js'
import { AdminError, readJson, sendJson } from './server.js'
import { followTraffic, recentTraffic, type TrafficEvent } from './traffic-stream.js'

function upstreamView (u: Upstream, pid: number | null = null): Record<string, unknown> {
  return {
    id: u.id,
    version: u.version,
    revision: u.revision,
    address: u.address,
    state: u.state,
    inflight: u.inflight,
    requests: u.requests,
    pid,
    startedAt: u.startedAt.toISOString()
  }
}

function instanceView (i: Instance): Record<string, unknown> {
  if (i.upstream !== undefined) return { ...upstreamView(i.upstream, i.pid), state: i.state, failure: i.failure ?? null }
  return {
    id: i.id,
    version: i.version,
    revision: i.revision.number,
    address: null,
    state: i.state,
    inflight: 0,
    requests: 0,
    pid: i.pid,
    startedAt: new Date(i.createdAt).toISOString(),
    failure: i.failure ?? null
  }
}

function poolView (baton: Baton, name: string): Record<string, unknown> {
  const pool = baton.pools.get(name)
  const runtime = baton.runtimes.get(name)
  if (pool === undefined || runtime === undefined) throw new AdminError(404, `no pool named "${name}"`)
  const m = baton.managed.get(name)
  if (m === undefined) {
    return { name, kind: pool.config.kind, revision: 1, version: pool.config.version, size: pool.config.size, instances: runtime.upstreams.map(u => upstreamView(u)), rollout: null }
  }
  return {
    name,
    kind: pool.config.kind,
    revision: m.target.number,
    version: m.target.version,
    size: pool.config.size,
    instances: [...m.instances, ...m.failed].map(instanceView),
    rollout: m.rollout?.active === true ? m.rollout.id : null,
    restarts: m.restarts,
    crashLoop: m.crashLooping,
    revisions: m.revisions.map(r => ({ number: r.number, version: r.version, createdAt: r.createdAt }))
  }
}

function managedPool (baton: Baton, name: string) {
  const m = baton.managed.get(name)
  if (m === undefined) {
    throw new AdminError(baton.pools.has(name) ? 400 : 404, baton.pools.has(name) ? `pool "${name}" has static servers: there is nothing to roll out` : `no pool named "${name}"`)
  }
  return m
}

function rolloutById (baton: Baton, id: string) {
  const r = baton.rollouts.get(id)
  if (r === undefined) throw new AdminError(404, `no rollout with id "${id}"`)
  return r
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

  admin.on('POST', '/v1/pools/:name/rollouts', async (req, res, [name]) => {
    const m = managedPool(baton, name)
    const body = parseBody(rolloutBody, await readJson(req))
    checkMovable(m.pool.config.rollout, m.pool.config.size, body.strategy)
    if (m.rollout?.active === true) throw new AdminError(409, `a rollout (${m.rollout.id}) is already running in pool "${name}"`)
    const r = m.startRollout({ version: body.version, env: body.env, command: body.command, image: body.image }, body.strategy ?? {})
    baton.rollouts.set(r.id, r)
    res.statusCode = 202
    return r.view()
  })
  admin.on('POST', '/v1/pools/:name/rollback', (_req, res, [name]) => {
    const m = managedPool(baton, name)
    if (m.rollout?.active === true) throw new AdminError(409, `a rollout (${m.rollout.id}) is already running in pool "${name}"`)
    const r = m.rollbackToPrevious()
    if (r === undefined) throw new AdminError(409, `pool "${name}" has no previous revision to roll back to`)
    baton.rollouts.set(r.id, r)
    res.statusCode = 202
    return r.view()
  })
  admin.on('GET', '/v1/rollouts/:id', (_req, _res, [id]) => {
    const r = rolloutById(baton, id)
    const pool = baton.pools.get(r.pool)
    return { ...r.view(), report: pool === undefined ? null : buildReport(r, pool.traffic, r.strategy.minReady) }
  })
  admin.on('GET', '/v1/rollouts/:id/report.svg', (_req, res, [id]) => {
    const r = rolloutById(baton, id)
    const pool = baton.pools.get(r.pool)
    if (pool === undefined) throw new AdminError(404, `pool "${r.pool}" of rollout ${id} is gone`)
    const svg = renderSvg(buildReport(r, pool.traffic, r.strategy.minReady), `${r.pool}: ${r.from.version} → ${r.to.version} (${r.status})`)
    res.writeHead(200, { 'content-type': 'image/svg+xml', 'content-length': Buffer.byteLength(svg) })
    res.end(svg)
  }, true)
  for (const action of ['pause', 'resume', 'abort'] as const) {
    admin.on('POST', `/v1/rollouts/:id/${action}`, (_req, _res, [id]) => {
      const r = rolloutById(baton, id)
      if (!r.active) throw new AdminError(409, `rollout ${id} has finished (${r.status})`)
      const m = managedPool(baton, r.pool)
      if (action === 'pause') m.pauseRollout()
      else if (action === 'resume') m.resumeRollout()
      else m.abortRollout()
      return r.view()
    })
  }
  admin.on('POST', '/v1/reload', async (_req, res) => {
    try {
      sendJson(res, 200, await baton.reload())
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      sendJson(res, 400, {
        error: `the new config is invalid (${err.problems.length} error(s)); nothing was changed`,
        problems: err.problems.map(formatProblem)
      })
    }
  }, true)
  admin.on('GET', '/v1/events', (req, res) => streamEvents(baton, req.socket.setTimeout.bind(req.socket), res), true)
  admin.on('GET', '/v1/pools/:name/rollouts', (_req, _res, [name]) => ({ rollouts: poolRollouts(baton, name) }))
  admin.on('GET', '/v1/pools/:name/traffic', (_req, _res, [name]) => {
    const pool = baton.pools.get(name)
    if (pool === undefined) throw new AdminError(404, `no pool named "${name}"`)
    return { traffic: recentTraffic(pool) }
  })
  registerLivePage(admin, () => baton.admin.token !== undefined)
}

/** The pool's rollouts, newest first, without their event logs (GET /v1/rollouts/ID has them). */
function poolRollouts (baton: Baton, name: string): Array<Record<string, unknown>> {
  if (!baton.pools.has(name)) throw new AdminError(404, `no pool named "${name}"`)
  return [...baton.rollouts.values()]
    .filter(r => r.pool === name)
    .sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime())
    .slice(0, POOL_ROLLOUTS)
    .map(r => { const { events: _events, ...rest } = r.view(); return rest })
}

/** How many past rollouts GET /v1/pools/NAME/rollouts lists. */
const POOL_ROLLOUTS = 50

/** Server-sent events: one `data:` line of JSON per instance or rollout change, and each pool's traffic once a second. */
function streamEvents (baton: Baton, setTimeout: (ms: number) => void, res: ServerResponse): void {
  setTimeout(0)
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
  res.write(': baton events\n\n')
  const send = (e: PoolEvent | TrafficEvent): void => { res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`) }
  const ping = setInterval(() => res.write(': ping\n\n'), 15_000)
  baton.events.on('event', send)
  const unfollow = followTraffic(baton.events, () => baton.pools.values(), send)
  res.on('close', () => {
    clearInterval(ping)
    baton.events.off('event', send)
    unfollow()
  })
}
