import { createHash } from 'node:crypto'
import type { DockerSpec, ManagedPoolConfig, ProcessSpec } from '../config/types.js'
import { BatonError } from '../errors.js'

/**
 * The boundary between the orchestrator and whatever runs instances. The
 * rollout engine only sees this: start something that will listen on an
 * address, learn when it exits, and stop it with a signal and a deadline.
 */
export interface Revision {
  /** 1, 2, 3, ... per pool. */
  number: number
  version: string
  process?: ProcessSpec
  docker?: DockerSpec
  createdAt: string
  /** It served the pool at full size once (a rollback goes only to such revisions). */
  good?: boolean
}

export interface StartRequest {
  pool: string
  /** Stable instance id, shown by the admin API and put in the instance's env/labels. */
  id: string
  revision: Revision
}

export interface ExitInfo { code: number | null, signal: string | null }

export interface RunningInstance {
  host: string
  port: number
  pid: number | null
  /** Resolves once when the process or container is gone, for any reason. */
  readonly exited: Promise<ExitInfo>
  /** Sends `signal`, waits up to `timeoutMs` for the exit, then kills. Resolves when gone. */
  stop (signal: NodeJS.Signals, timeoutMs: number): Promise<void>
}

/** An instance a previous baton left running, found by its labels (containers). */
export interface DiscoveredInstance {
  id: string
  /** The `specKey` it was started with. */
  specKey: string
  handle: RunningInstance
}

/**
 * A short fingerprint of what a revision runs (version and spec). Revision
 * numbers start again at 1 in a new baton process; this does not, so a new
 * baton can tell which leftover instances run what its config says.
 */
export function specKey (r: Pick<Revision, 'version' | 'process' | 'docker'>): string {
  return createHash('sha256').update(JSON.stringify([r.version, r.process ?? null, r.docker ?? null])).digest('hex').slice(0, 16)
}

/** How a pool stops an instance: its rollout's stopSignal, then SIGKILL after stopTimeout. */
export interface StopSpec { signal: NodeJS.Signals, timeoutMs: number }

export interface Driver {
  start (req: StartRequest): Promise<RunningInstance>
  /**
   * Instances of this pool left by an earlier run (optional: process pools
   * use the state file instead). Those whose specKey matches the current
   * revision are adopted, the others stopped.
   */
  discover? (): Promise<DiscoveredInstance[]>
  /**
   * Asked when an instance exited before it ever passed a readiness probe:
   * true if it lost its port, i.e. another process bound the port between
   * the driver's free-port check and the app's own bind. Such a start is
   * retried on another port instead of counting as a failed one. Optional:
   * a driver that cannot tell leaves it out.
   */
  lostPortRace? (handle: RunningInstance): Promise<boolean>
  /** A reloaded pool config: what the driver itself holds of it (port range, engines). */
  reconfigure? (config: ManagedPoolConfig): void
  /** The pool stopped: stops whatever it still holds the pool's way, and lets go of its resources. */
  close? (stop: StopSpec): Promise<void>
}

export type DriverErrorCode =
  | 'BATON_ERR_COMMAND' // a command with shell operators
  | 'BATON_ERR_PROCESS_SPEC' // a revision without a process spec given to the process driver
  | 'BATON_ERR_NO_FREE_PORT' // every port of the range is taken
  | 'BATON_ERR_DOCKER_SPEC' // a revision without a (usable) docker spec
  | 'BATON_ERR_DOCKER_NO_ENGINE' // no engine of the pool answers
  | 'BATON_ERR_DOCKER_PORT' // a container without a published port
  | 'BATON_ERR_DOCKER_UNREACHABLE' // no connection to an engine, or it broke
  | 'BATON_ERR_DOCKER_TIMEOUT' // no answer in time
  | 'BATON_ERR_DOCKER_IMAGE' // the image is not there and could not be pulled
  | 'BATON_ERR_DOCKER_NOT_FOUND' // no such container
  | 'BATON_ERR_DOCKER_CONFLICT' // a name in use, a container not running, ...
  | 'BATON_ERR_DOCKER_TLS' // a TLS file could not be read
  | 'BATON_ERR_DOCKER_API' // any other answer an engine refused with

/** Something that runs instances failed, or was asked what it cannot do. */
export class DriverError<Code extends DriverErrorCode = DriverErrorCode> extends BatonError<Code> {}
