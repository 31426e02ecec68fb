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

export interface Driver {
  start (req: StartRequest): Promise<RunningInstance>
  /** Forgets what it holds for a pool and stops anything still running (used at shutdown). */
  close? (): Promise<void>
}

export class DriverError extends Error {
  constructor (readonly code: string, message: string) {
    super(message)
    this.name = 'DriverError'
  }
}
