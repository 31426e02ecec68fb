import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { log } from '../log.js'

/** Output lines kept per instance (each cut at 1000 characters) to read why it exited: a stack trace fits. */
const TAIL_LINES = 50
/**
 * How long to wait, after the exit, for the last output (a child the app
 * left behind may hold its pipes open; then we read what came).
 */
const OUTPUT_WAIT_MS = 300

export interface SpawnSpec {
  pool: string
  id: string
  version: string
  argv: string[]
  cwd: string
  /** Added to this process's environment. */
  env: Record<string, string>
  /** Only logged: the port it was given. */
  port: number
}

/** How an instance's process ended, once its output was read. */
export interface ProcessExit {
  code: number | null
  signal: string | null
  /** spawn itself failed (no such command, ...): the process never ran. */
  spawnFailed: boolean
  /** Its last lines of output. */
  tail: string[]
}

export interface SpawnedProcess {
  pid: number | null
  /** Resolves once, after the exit and the end of its output (or OUTPUT_WAIT_MS past the exit). */
  readonly ended: Promise<ProcessExit>
  /** True once the process is gone (its output may still be read). */
  readonly exited: boolean
}

/**
 * Starts an app instance in its own process group (so that a stop signal
 * reaches the app behind any wrapper such as npm or sh) with its output in
 * baton's log, line by line. The pipes are read by this process: it must
 * outlive the instance (an app writing to a pipe nobody reads dies of
 * SIGPIPE), which is why the supervisor, not a controller, runs them.
 */
export function spawnInstance (s: SpawnSpec): SpawnedProcess {
  const fields = { pool: s.pool, instance: s.id, version: s.version }
  const child = spawn(s.argv[0], s.argv.slice(1), { cwd: s.cwd, env: { ...process.env, ...s.env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const tail: string[] = []
  let spawnFailed = false
  let gone = false
  const closed = new Promise<void>(resolve => child.once('close', () => resolve()))
  const exit = new Promise<{ code: number | null, signal: string | null }>(resolve => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    child.once('error', err => {
      spawnFailed = true
      log('error', 'instance could not be started', { ...fields, error: err.message })
      resolve({ code: null, signal: null })
    })
  })
  for (const [stream, input] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
    createInterface({ input }).on('line', line => {
      log('info', line, { ...fields, stream })
      tail.push(line.slice(0, 1_000))
      if (tail.length > TAIL_LINES) tail.shift()
    })
  }
  const ended = exit.then(async info => {
    gone = true
    await Promise.race([closed, new Promise(resolve => setTimeout(resolve, OUTPUT_WAIT_MS).unref())])
    return { ...info, spawnFailed, tail: [...tail] }
  })
  const pid = child.pid ?? null
  log('info', 'instance spawned', { ...fields, pid, port: s.port, command: s.argv })
  return { pid, ended, get exited () { return gone } }
}

/** Signals a whole process group; ignores a group that is already gone. */
export function signalGroup (pid: number, signal: NodeJS.Signals): void {
  try { process.kill(-pid, signal) } catch { /* already gone */ }
}
