/**
 * The controller process (README "Processes"): pools, rollouts, probes,
 * reload and the admin API, started by the supervisor. It runs no app
 * instance itself (the supervisor does, on its request) and no proxy (the
 * workers do, from the tables it publishes), so it can exit — an upgrade of
 * baton, a crash — without a request or an instance lost: the next
 * controller adopts what runs.
 */
import { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import { registerRoutes, type Health } from '../admin/routes.js'
import { AdminServer } from '../admin/server.js'
import { diffConfig } from '../config/diff.js'
import { ConfigError, formatProblem, formatWarning } from '../config/errors.js'
import { loadConfigFile } from '../config/load.js'
import type { Config } from '../config/types.js'
import { workerCount } from '../config/workers.js'
import { log, setLogFields } from '../log.js'
import { parentEndpoint, RemoteError } from '../supervisor/channel.js'
import type { ControllerCalls, ControllerInit, ControllerSettings, FromController, SupervisorCalls, SupervisorLink, ToController, UpgradeEvent, UpgradeStarted } from '../supervisor/protocol.js'
import { Controller, type ReloadOutcome } from './controller.js'
import { ControllerError, type ControllerErrorCode } from './errors.js'
import { IpcDataPlaneLink } from './ipc-link.js'
import { IpcSpawner } from './ipc-spawner.js'

/** A retired controller waits this long at most for its admin connections to end: past the admin keep-alive timeout (5 s), so that idle ones were closed by it, never under a client reusing them. */
const RETIRE_GRACE_MS = 6_000
/** POST /v1/upgrade waits this long for the supervisor (it runs `baton check` first). */
const UPGRADE_CALL_MS = 60_000

/** The refusals of an upgrade the supervisor can make, as the admin API answers them. */
const UPGRADE_CODES = new Set<string>(['BATON_ERR_UPGRADE_RUNNING', 'BATON_ERR_UPGRADE_ROLLOUT', 'BATON_ERR_UPGRADE_CONFIG', 'BATON_ERR_UPGRADE_BROKEN', 'BATON_ERR_UPGRADE_NO_CONTROLLER'])

/** Asks the supervisor to upgrade baton; its refusals become the admin API's (409, 400 with problems, 500). */
async function askUpgrade (): Promise<UpgradeStarted> {
  try {
    return await supervisor.call('upgrade', {}, UPGRADE_CALL_MS)
  } catch (err) {
    if (!(err instanceof RemoteError)) throw err
    const e = new ControllerError(UPGRADE_CODES.has(err.code) ? err.code as ControllerErrorCode : 'BATON_ERR_SUPERVISOR', err.message)
    e.problems = err.details
    throw e
  }
}

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

/** Even with every drainTimeout at 0, in-flight requests get this long at stop. */
const MIN_STOP_GRACE_MS = 1_000

function settingsOf (config: Config): ControllerSettings {
  const pools = Object.values(config.pools)
  return {
    workers: workerCount(config),
    upgrade: config.upgrade,
    stopGraceMs: Math.max(MIN_STOP_GRACE_MS, ...pools.map(p => p.rollout.drainTimeout))
  }
}

const supervisor: SupervisorLink = parentEndpoint<FromController, ToController, SupervisorCalls, ControllerCalls>()

/** Everything of this process once init came. */
class ControllerProcess {
  readonly controller: Controller
  readonly admin: AdminServer
  readonly link: IpcDataPlaneLink
  readonly spawner: IpcSpawner
  private config: Config
  private leaving = false
  /** Upgrade progress and this controller's retirement, for the event streams. */
  readonly news = new EventEmitter()

  constructor (config: Config, private readonly init: ControllerInit) {
    this.config = config
    this.link = new IpcDataPlaneLink(supervisor, { hold: init.hold, tableVersionFrom: init.tableVersionFrom })
    this.spawner = new IpcSpawner(supervisor)
    this.link.addRetired(init.state?.retiredMetrics ?? [])
    this.link.onRetired = () => this.depositState()
    this.controller = new Controller(config, {
      link: this.link,
      spawner: this.spawner,
      handover: init.state ?? (init.hold ? { pools: [] } : undefined),
      onState: () => this.depositState()
    })
    this.news.setMaxListeners(0)
    this.admin = new AdminServer(config.admin.token)
    registerRoutes(this.admin, this.controller, {
      reload: async () => await this.reload(),
      health: () => this.health(),
      processes: async () => await supervisor.call('processes', {}),
      upgrade: askUpgrade,
      upgradeStatus: async () => await supervisor.call('upgradeStatus', {}),
      followUpgrades: fn => { this.news.on('upgrade', fn); return () => { this.news.off('upgrade', fn) } },
      onRetire: fn => { this.news.on('retire', fn); return () => { this.news.off('retire', fn) } }
    })
  }

  /** What a next controller adopts from, with the counters of workers that are gone. */
  depositState (): void {
    supervisor.send({ type: 'state', state: { ...this.controller.snapshot(), retiredMetrics: this.link.retired() } })
  }

  health (): Health {
    return { status: 'ok', version: VERSION, generation: this.init.generation, pid: process.pid }
  }

  async start (): Promise<void> {
    await this.controller.start()
    this.depositState()
    supervisor.send({ type: 'ready', settings: settingsOf(this.config) })
  }

  /** Serve: tables go to the workers from now on, and the pools move again. */
  release (tableVersionFrom: number): void {
    this.link.release(tableVersionFrom)
    this.controller.thaw()
  }

  /**
   * Re-reads the config file and applies it as a diff, in place: a bad file
   * is refused whole (ConfigError) and the running config stays.
   */
  async reload (): Promise<ReloadOutcome> {
    const next = loadConfigFile(this.config.file)
    const d = diffConfig(this.config, next)
    const { changes, rollouts } = await this.controller.apply(next)
    this.config = next
    this.admin.token = next.admin.token
    if (d.adminListen) changes.push('admin.listen changed: it applies at the next start')
    if (d.workers) changes.push('workers changed: it applies at the next upgrade of baton or start')
    if (d.listeners) {
      await supervisor.call('listeners', { listen: next.listen })
      changes.push('listeners applied')
    }
    supervisor.send({ type: 'settings', settings: settingsOf(next) })
    const warnings = next.warnings.map(formatWarning)
    for (const warning of warnings) log('warn', 'config warning', { warning })
    log('info', 'config reloaded', { changes, rollouts })
    return warnings.length === 0 ? { changes, rollouts } : { changes, rollouts, warnings }
  }

  /** G6: every instance stopped in order, then this process goes. */
  async stop (): Promise<void> {
    if (this.leaving) return
    this.leaving = true
    await this.controller.stop()
    supervisor.send({ type: 'stopped' })
    await this.admin.close()
    this.link.close()
  }

  /** Another controller serves now: finish the admin requests under way and exit, touching no instance. */
  async retire (): Promise<void> {
    if (this.leaving) return
    this.leaving = true
    this.admin.stopAccepting()
    this.news.emit('retire')
    const until = Date.now() + RETIRE_GRACE_MS
    while (await this.admin.connections() > 0 && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 50))
    log('info', 'controller retired')
    process.exit(0)
  }
}

let running: ControllerProcess | undefined

/** Says why to the supervisor, then exits 1. */
function fatal (message: string): void {
  log('error', 'controller cannot run', { error: message })
  supervisor.send({ type: 'fatal', error: message })
  // Let the message out before the channel closes.
  setTimeout(() => process.exit(1), 100)
}

supervisor.on('init', ({ init }) => {
  setLogFields({ proc: 'controller', generation: init.generation })
  let config: Config
  try {
    config = loadConfigFile(init.configFile)
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems.map(formatProblem) : []
    fatal(`the config file cannot be used: ${[(err as Error).message.split('\n')[0], ...problems].join('; ')}`)
    return
  }
  const p = new ControllerProcess(config, init)
  running = p
  p.start().catch((err: Error) => fatal(`could not start: ${err.message}`))
})

supervisor.on('admin', ({ listener }, handle) => {
  const p = running
  if (p === undefined || handle === null || typeof handle !== 'object') return
  p.admin.listen(listener.host, listener.port, handle).catch((err: Error) => fatal(`cannot serve the admin API: ${err.message}`))
})

supervisor.on('workers', ({ workers }) => running?.link.setWorkers(workers))
supervisor.on('worker', ({ wid, report }) => running?.link.report(wid, report))
supervisor.on('instance-exit', ({ exit }) => running?.spawner.exited(exit))
supervisor.on('release', ({ tableVersionFrom }) => running?.release(tableVersionFrom))
supervisor.on('reload', () => {
  running?.reload().catch((err: Error) => {
    const problems = err instanceof ConfigError ? err.problems.map(formatProblem) : undefined
    log('error', 'reload refused; the running config is unchanged', { error: err.message.split('\n')[0], problems })
  })
})
supervisor.on('retire', () => { void running?.retire() })
supervisor.on('upgrade-event', ({ event }) => { running?.news.emit('upgrade', event satisfies UpgradeEvent) })
supervisor.on('stop', () => {
  running?.stop().then(() => process.exit(0), (err: Error) => {
    log('error', 'stop failed', { error: err.message })
    process.exit(1)
  })
})

supervisor.answer('freeze', () => {
  if (running === undefined) throw new Error('not started')
  return running.controller.freeze('an upgrade of baton is under way')
})
supervisor.answer('thaw', () => { running?.controller.thaw(); return {} })
supervisor.answer('rollouts', () => running?.controller.runningRollouts() ?? [])

// The supervisor is gone (SIGKILLed): the instances are its business, and
// whoever starts baton next finds them through its state file.
supervisor.onClose(() => process.exit(0))

// Signals are the supervisor's to handle (a Ctrl-C reaches the whole foreground group).
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR2'] as const) process.on(signal, () => undefined)
