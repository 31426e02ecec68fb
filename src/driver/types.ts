import { createHash } from 'node:crypto'
import type { DockerSpec, ProcessSpec } from '../config/types.js'

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
  /** Forgets what it holds for a pool and stops anything still running (used at shutdown). */
  close? (): Promise<void>
}

export class DriverError extends Error {
  constructor (readonly code: string, message: string) {
    super(message)
    this.name = 'DriverError'
  }
}
