/**
 * The messages baton's processes exchange (docs/architecture.md
 * "Processes"): the supervisor with the controller, and with each proxy
 * worker. The controller has no channel of its own to the workers: the
 * supervisor relays its tables and commands to every worker and the
 * workers' reports to every controller, and caches the last table so a
 * worker it starts serves at once, even while no controller runs.
 *
 * Channels use Node's 'advanced' serialization (structured clone), so the
 * typed arrays of the traffic reports travel as they are. A new generation
 * started by an upgrade speaks this protocol with a supervisor started from
 * older code: change it only by adding.
 */
import type { ListenConfig, UpgradeConfig } from '../config/types.js'
import type { MemberCounts, TableSnapshot } from '../controller/data-plane-link.js'
import type { Revision } from '../driver/types.js'
import type { ProcessLaunch } from '../driver/process.js'
import type { MetricsJson } from '../metrics/registry.js'
import type { TrafficSecond } from '../metrics/traffic.js'
import type { Endpoint } from './channel.js'

// ── app instances, which the supervisor runs for the controller ──────────

/** What the controller asks the supervisor to run: exactly the process driver's launch (specKey tells a later controller what it runs). */
export type SpawnRequest = ProcessLaunch

/** A running instance as the supervisor knows it. */
export interface InstanceRecord extends Omit<SpawnRequest, 'argv' | 'cwd' | 'env'> {
  pid: number | null
}

/** An instance's process exited; its output pipes were read to the end (or for a moment). */
export interface InstanceExit {
  id: string
  code: number | null
  signal: string | null
  /** It never ran: spawn itself failed (no such command, ...). */
  spawnFailed: boolean
  /** Its last lines of output, to tell a lost port race from a crash. */
  tail: string[]
}

// ── the controller's state, handed to the next controller ───────────────

export interface PoolState {
  name: string
  revisions: Revision[]
  /** The revision the pool converges on. */
  target: number
  /** The live instances and the revision each runs. */
  instances: Array<{ id: string, revision: number }>
}

/** What a controller that takes over (an upgrade, a restart) needs to know to adopt, not restart. */
export interface ControllerState {
  pools: PoolState[]
  /** The last counters of workers that drained and exited, so that /metrics totals never go down with an upgrade. */
  retiredMetrics?: MetricsJson[]
  /** The TLS session ticket key: sessions made before an upgrade of baton resume after it. */
  ticketKey?: string
}

/** Settings of the running config the supervisor acts on (read with the controller's code, which may be newer). */
export interface ControllerSettings {
  /** Resolved: `auto` is the CPU count. */
  workers: number
  upgrade: UpgradeConfig
  /** How long the workers' in-flight requests get when baton stops (G6): the longest drainTimeout. */
  stopGraceMs: number
}

// ── upgrades (README "Upgrading baton") ────────────────────────────────────────────────────

export type UpgradePhase = 'checking' | 'controller' | 'workers' | 'serving' | 'done' | 'failed'

/** One step of an upgrade, as GET /v1/events sends it (`event: upgrade`). */
export interface UpgradeEvent {
  type: 'upgrade'
  /** 1, 2, ... per supervisor. */
  id: number
  phase: UpgradePhase
  message: string
  /** The generation serving when it began, and the one it starts. */
  from: number
  to: number
  at: string
  /** Set when phase is failed. */
  reason?: string
}

export interface UpgradeStatus {
  generation: number
  /** The upgrade under way, if any: its latest event. */
  running: UpgradeEvent | null
  /** The latest upgrade that ended (done or failed). */
  last: UpgradeEvent | null
}

/** The answer to an accepted upgrade (202). */
export interface UpgradeStarted {
  id: number
  from: number
  to: number
  /** upgrade.timeout and upgrade.drainTimeout in ms: how long the client may wait. */
  timeoutMs: number
  drainTimeoutMs: number
}

// ── proxy workers ─────────────────────────────────────────────────────────

/** A proxy worker as the controller's link sees it. */
export interface WorkerInfo {
  wid: number
  pid: number
  generation: number
  /** draining: an older generation finishing what it has. */
  state: 'serving' | 'draining'
  /** The last table version it applied. */
  applied: number
}

/** What the controller sends the workers (relayed to every live one). */
export type WorkerCommand =
  | { type: 'table', table: TableSnapshot }
  | { type: 'command', rid: string, op: 'closeIdle' | 'endRemaining' | 'forget', id: string }
  | { type: 'query', rid: string, what: 'counts' | 'metrics' }
  /** A reload happened: reopen the access log file (logrotate may have moved it). */
  | { type: 'reopenLogs' }

/** What a worker reports (relayed to every controller). */
export type WorkerReport =
  | { type: 'applied', version: number }
  /** Nothing in flight on a member that left its table; `version`: the table it had applied then. */
  | { type: 'idle', id: string, version: number }
  /** No HTTP request in flight on a member that left its table, only upgraded connections (rollout.maxDraining). */
  | { type: 'quiet', id: string, version: number }
  | { type: 'traffic', second: number, seconds: TrafficSecond[] }
  | { type: 'done', rid: string }
  | { type: 'counts', rid: string, counts: MemberCounts[] }
  | { type: 'metrics', rid: string, metrics: MetricsJson }
  /** A drained worker's last counters, just before it exits. */
  | { type: 'final', metrics: MetricsJson }

/** A listening socket handed to a worker or the controller; the handle travels with the message. */
export interface ListenerAddress { key: string, host: string, port: number }

export type ToWorker =
  | WorkerCommand
  | { type: 'listener', listener: ListenerAddress }
  | { type: 'listen', keys: string[] }
  /** An upgrade replaced this generation: stop accepting, finish, then exit. */
  | { type: 'drain', drainTimeoutMs: number }
  /** baton stops (G6): stop accepting, finish in-flight requests within graceMs. */
  | { type: 'stop', graceMs: number }
  | { type: 'exit' }

export type FromWorker =
  | WorkerReport
  | { type: 'listening', listeners: ListenerAddress[] }
  | { type: 'stopped' }
  | { type: 'drained' }

// ── the controller ────────────────────────────────────────────────────────

export interface ControllerInit {
  generation: number
  configFile: string
  /** The previous controller's state: adopt its instances rather than start new ones. */
  state: ControllerState | null
  /**
   * Publish nothing to the workers until released: they keep the last
   * controller's table while this one adopts and probes (restart, upgrade).
   */
  hold: boolean
  /** Table versions this controller publishes start above this one. */
  tableVersionFrom: number
  upgrade: UpgradeStatus
}

export type ToController =
  | { type: 'init', init: ControllerInit }
  /** The admin listener (handle attached): accept on it from now on. */
  | { type: 'admin', listener: ListenerAddress }
  | { type: 'workers', workers: WorkerInfo[] }
  | { type: 'worker', wid: number, report: WorkerReport }
  | { type: 'instance-exit', exit: InstanceExit }
  /** Become the serving controller: publish to the workers, reconcile. */
  | { type: 'release', tableVersionFrom: number }
  | { type: 'reload' }
  | { type: 'upgrade-event', event: UpgradeEvent }
  /** An upgrade replaced this controller: stop accepting admin requests, exit without touching instances. */
  | { type: 'retire' }
  /** baton stops (G6): stop every instance in order, then say `stopped`. */
  | { type: 'stop' }

export type FromController =
  /** Pools started or adopted; the settings of the config it runs. */
  | { type: 'ready', settings: ControllerSettings }
  /** A reload changed what the supervisor acts on. */
  | { type: 'settings', settings: ControllerSettings }
  | { type: 'table', table: TableSnapshot }
  | { type: 'to-workers', command: WorkerCommand }
  | { type: 'signal', id: string, signal: NodeJS.Signals }
  | { type: 'state', state: ControllerState }
  | { type: 'stopped' }
  /** It cannot run (a bad config, a listener it cannot use): why, before it exits. */
  | { type: 'fatal', error: string }

/** What the controller asks the supervisor. */
export interface SupervisorCalls extends Record<string, { args: unknown, result: unknown }> {
  spawn: { args: SpawnRequest, result: { pid: number | null } }
  instances: { args: { pool: string }, result: InstanceRecord[] }
  listeners: { args: { listen: ListenConfig[] }, result: Array<{ host: string, port: number }> }
  upgrade: { args: Record<string, never>, result: UpgradeStarted }
  upgradeStatus: { args: Record<string, never>, result: UpgradeStatus }
  processes: { args: Record<string, never>, result: ProcessesView }
}

/** What the supervisor asks the controller. */
export interface ControllerCalls extends Record<string, { args: unknown, result: unknown }> {
  /** An upgrade begins: refuse (409) while a rollout runs, else stop changing anything and hand the state over. */
  freeze: { args: Record<string, never>, result: ControllerState }
  /** The upgrade failed: carry on. */
  thaw: { args: Record<string, never>, result: Record<string, never> }
  /** Is a rollout running? (an upgrade is refused while one is: README "Upgrading baton"). */
  rollouts: { args: Record<string, never>, result: string[] }
}

/** GET /v1/processes: baton's own processes. */
export interface ProcessesView {
  supervisor: { pid: number }
  generation: number
  controllers: Array<{ pid: number, generation: number, serving: boolean }>
  workers: Array<{ wid: number, pid: number, generation: number, state: 'starting' | 'serving' | 'draining' }>
}

// ── the endpoints, as each side types them ───────────────────────────────

/** The controller's end of its channel to the supervisor. */
export type SupervisorLink = Endpoint<FromController, ToController, SupervisorCalls, ControllerCalls>
/** The supervisor's end of its channel to a controller. */
export type ControllerLink = Endpoint<ToController, FromController, ControllerCalls, SupervisorCalls>
/** A worker's end of its channel to the supervisor. */
export type WorkerSupervisorLink = Endpoint<FromWorker, ToWorker>
/** The supervisor's end of its channel to a worker. */
export type WorkerLink = Endpoint<ToWorker, FromWorker>
