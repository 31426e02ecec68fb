import { registerRoutes } from './admin/routes.js'
import { AdminServer } from './admin/server.js'
import { diffConfig } from './config/diff.js'
import { formatWarning } from './config/errors.js'
import { loadConfigFile } from './config/load.js'
import type { Config } from './config/types.js'
import { Controller, type ReloadOutcome } from './controller/controller.js'
import { InProcessLink } from './controller/data-plane-link.js'
import { log } from './log.js'
import { DataPlane } from './worker/data-plane.js'

/** Even with every drainTimeout at 0, in-flight requests get this long at stop. */
const MIN_STOP_GRACE_MS = 1_000

export interface BatonAddresses {
  listeners: Array<{ host: string, port: number }>
  admin: { host: string, port: number }
}

/**
 * `baton start`: a Controller and a data plane in one process, joined by an
 * InProcessLink, and the admin API. Start-up order (README "Config
 * reference"): the admin API answers first, the listeners open once every
 * pool can serve.
 */
export class Baton {
  readonly dataPlane: DataPlane
  readonly controller: Controller
  readonly admin: AdminServer
  config: Config
  private stopping: Promise<void> | undefined

  constructor (config: Config) {
    this.config = config
    this.dataPlane = new DataPlane(config.proxy)
    this.controller = new Controller(config, new InProcessLink(this.dataPlane))
    this.admin = new AdminServer(config.admin.token)
    registerRoutes(this.admin, this.controller, async () => await this.reload())
  }

  async start (): Promise<BatonAddresses> {
    const admin = await this.admin.listen(this.config.admin.host, this.config.admin.port)
    await this.controller.start()
    const listeners = await this.dataPlane.listen(this.config.listen)
    log('info', 'baton started', { listeners, admin, pools: Object.keys(this.config.pools) })
    return { listeners, admin }
  }

  /** G6: stop accepting, let in-flight requests finish, stop the pools, close the admin API. */
  async stop (): Promise<void> {
    this.stopping ??= (async () => {
      log('info', 'baton stopping')
      const grace = Math.max(MIN_STOP_GRACE_MS, ...Object.values(this.config.pools).map(p => p.rollout.drainTimeout))
      await this.dataPlane.close(grace)
      await this.controller.stop()
      this.dataPlane.stop()
      await this.admin.close()
      log('info', 'baton stopped')
    })()
    await this.stopping
  }

  /**
   * Re-reads the config file and applies it as a diff, in place: a bad file
   * is refused whole (ConfigError) and the old config keeps running. No
   * listener, connection or instance is replaced but those the change is about.
   */
  async reload (): Promise<ReloadOutcome> {
    const next = loadConfigFile(this.config.file)
    const d = diffConfig(this.config, next)
    this.config = next
    this.admin.token = next.admin.token
    const { changes, rollouts } = await this.controller.apply(next)
    if (d.adminListen) changes.push('admin.listen changed: it applies at the next start')
    if (d.listeners) {
      await this.dataPlane.listen(next.listen)
      changes.push('listeners applied')
    }
    const warnings = next.warnings.map(formatWarning)
    for (const warning of warnings) log('warn', 'config warning', { warning })
    log('info', 'config reloaded', { changes, rollouts })
    return warnings.length === 0 ? { changes, rollouts } : { changes, rollouts, warnings }
  }
}
