import type { ServerResponse } from 'node:http'
import { ConfigError, formatProblem } from '../config/errors.js'
import type { Controller, ReloadOutcome } from '../controller/controller.js'
import { ControllerError } from '../controller/errors.js'
import type { ProcessesView, UpgradeEvent, UpgradeStarted, UpgradeStatus } from '../supervisor/protocol.js'
import type { PoolEvent } from '../controller/managed-pool.js'
import { parseBody, rolloutBody } from './bodies.js'
import { registerLivePage } from './live-page.js'
import { readJson, sendJson, type AdminServer } from './server.js'
import type { TrafficEvent } from './traffic-stream.js'

/** A comment line on the event stream this often keeps proxies and clients from timing it out. */
const EVENTS_PING_MS = 15_000

/** GET /healthz: which baton answers (README "Upgrading baton"). */
export interface Health {
  status: 'ok'
  /** baton's package version (of the code this controller runs). */
  version: string
  /** 1 at start, +1 with each successful upgrade of baton. */
  generation: number
  /** The serving controller's pid. */
  pid: number
}

/** What the admin API does beyond the controller: the process it runs in, and the supervisor behind it. */
export interface BatonOps {
  reload: () => Promise<ReloadOutcome>
  health: () => Health
  processes: () => Promise<ProcessesView>
  /** Starts an upgrade of baton; throws ControllerError (409, 400 with problems, 500) when it cannot begin. */
  upgrade: () => Promise<UpgradeStarted>
  upgradeStatus: () => Promise<UpgradeStatus>
  /** Upgrade progress as it happens; returns the unsubscribe. */
  followUpgrades: (fn: (e: UpgradeEvent) => void) => () => void
  /** Called once this process no longer serves the admin API (an upgrade replaced it): event streams end. */
  onRetire: (fn: () => void) => () => void
}

/**
 * The admin API's routes (README "Admin API"): each one reads a request,
 * calls one method of the controller (or of `ops`), and answers.
 */
export function registerRoutes (admin: AdminServer, controller: Controller, ops: BatonOps): void {
  const reload = ops.reload
  admin.onOpen('GET', '/healthz', () => ops.health(), false)
  admin.on('GET', '/v1/processes', async () => await ops.processes())
  admin.on('GET', '/metrics', async (_req, res) => {
    const { contentType, text } = await controller.metricsText()
    res.writeHead(200, { 'content-type': contentType })
    res.end(text)
  }, true)
  admin.on('GET', '/v1/pools', async () => ({ pools: await controller.pools() }))
  admin.on('GET', '/v1/pools/:name', async (_req, _res, [name]) => await controller.pool(name))
  admin.on('GET', '/v1/pools/:name/rollouts', (_req, _res, [name]) => ({ rollouts: controller.poolRollouts(name) }))
  admin.on('GET', '/v1/pools/:name/traffic', (_req, _res, [name]) => ({ traffic: controller.recentTraffic(name) }))

  admin.on('POST', '/v1/pools/:name/rollouts', async (req, res, [name]) => {
    // The pool first: an unknown pool is a 404 whatever the body says.
    controller.requirePool(name)
    const body = parseBody(rolloutBody, await readJson(req))
    const view = controller.startRollout(name, body)
    res.statusCode = 202
    return view
  })
  admin.on('POST', '/v1/pools/:name/rollback', (_req, res, [name]) => {
    const view = controller.rollback(name)
    res.statusCode = 202
    return view
  })
  admin.on('GET', '/v1/rollouts/:id', (_req, _res, [id]) => controller.rollout(id))
  admin.on('GET', '/v1/rollouts/:id/report.svg', (_req, res, [id]) => {
    const svg = controller.rolloutSvg(id)
    res.writeHead(200, { 'content-type': 'image/svg+xml', 'content-length': Buffer.byteLength(svg) })
    res.end(svg)
  }, true)
  for (const action of ['pause', 'resume', 'abort', 'promote'] as const) {
    admin.on('POST', `/v1/rollouts/:id/${action}`, (_req, _res, [id]) => controller.control(id, action))
  }
  admin.on('POST', '/v1/reload', async (_req, res) => {
    try {
      sendJson(res, 200, await reload())
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      sendJson(res, 400, {
        error: `the new config is invalid (${err.problems.length} error(s)); nothing was changed`,
        code: err.code,
        problems: err.problems.map(formatProblem)
      })
    }
  }, true)
  admin.on('POST', '/v1/upgrade', async (_req, res) => {
    try {
      sendJson(res, 202, await ops.upgrade())
    } catch (err) {
      if (!(err instanceof ControllerError) || err.code !== 'BATON_ERR_UPGRADE_CONFIG') throw err
      sendJson(res, 400, { error: err.message, code: err.code, problems: err.problems })
    }
  }, true)
  admin.on('GET', '/v1/upgrade', async () => await ops.upgradeStatus())
  admin.on('GET', '/v1/events', (req, res) => {
    // An event stream is long-lived: no idle timeout on its socket.
    req.socket.setTimeout(0)
    streamEvents(controller, ops, res)
  }, true)
  registerLivePage(admin, () => admin.token !== undefined)
}

/**
 * Server-sent events: one `data:` line of JSON per instance or rollout
 * change, each pool's traffic once a second, and an upgrade of baton's
 * progress. The stream ends when an upgrade retires this controller (the
 * client reconnects to the next one).
 */
function streamEvents (controller: Controller, ops: BatonOps, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
  res.write(': baton events\n\n')
  const send = (e: PoolEvent | TrafficEvent | UpgradeEvent): void => { res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`) }
  const unsubscribe = controller.subscribe(send)
  const unfollow = controller.followTraffic(send)
  const unupgrade = ops.followUpgrades(send)
  const unretire = ops.onRetire(() => res.end())
  const ping = setInterval(() => res.write(': ping\n\n'), EVENTS_PING_MS)
  res.on('close', () => {
    clearInterval(ping)
    unsubscribe()
    unfollow()
    unupgrade()
    unretire()
  })
}
