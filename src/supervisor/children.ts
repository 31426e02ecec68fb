import { fork, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { childEndpoint } from './channel.js'
import type { ControllerCalls, ControllerLink, ControllerSettings, FromController, FromWorker, SupervisorCalls, ToController, ToWorker, WorkerLink } from './protocol.js'

/**
 * The code the supervisor starts, resolved once from where the supervisor's
 * own code was loaded: after `npm ci`, a build or a newer release unpacked in
 * place, the next generation runs what is on disk then.
 */
export const CONTROLLER_MAIN = fileURLToPath(new URL('../controller/main.js', import.meta.url))
export const WORKER_MAIN = fileURLToPath(new URL('../worker/main.js', import.meta.url))
export const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url))

/** How a child's exit reads in the log. */
export interface ChildExit { code: number | null, signal: string | null }

/** Lines of a child's stderr kept to say why it exited (a stack trace's first lines). */
const STDERR_KEPT = 20

/**
 * A forked baton process: its IPC channel (structured clone, so typed arrays
 * and listening handles travel), its log lines straight on the supervisor's
 * own stdout, and its stderr (where Node writes why it could not start: a
 * missing module, a syntax error) relayed to the supervisor's stderr with
 * the last lines kept, so that a failed upgrade can say why.
 */
function forkBaton (main: string, env: Record<string, string>): { child: ChildProcess, stderr: string[] } {
  const child = fork(main, [], {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    env: { ...process.env, ...env }
  })
  const stderr: string[] = []
  if (child.stderr !== null) {
    createInterface({ input: child.stderr }).on('line', line => {
      process.stderr.write(line + '\n')
      stderr.push(line.slice(0, 500))
      if (stderr.length > STDERR_KEPT) stderr.shift()
    })
  }
  return { child, stderr }
}

/** Why a child that wrote to stderr exited: the error line of its stack trace, if any. */
export function errorLine (stderr: string[]): string | undefined {
  return stderr.find(l => /^\w*Error\b|^Error \[|Error:/.test(l)) ?? stderr.find(l => l.trim() !== '')
}

export class ControllerProc {
  readonly child: ChildProcess
  readonly link: ControllerLink
  readonly pid: number
  readonly startedAt = Date.now()
  readonly exited: Promise<ChildExit>
  /** Set by its `ready` message. */
  settings: ControllerSettings | undefined
  /** Why it could not run, when it said so before exiting. */
  fatal: string | undefined
  /** Serving: its tables go to the workers, its spawns and signals are carried out. */
  serving = false
  retiring = false
  stopping = false
  readonly ready: Promise<ControllerSettings>
  private onReady: (s: ControllerSettings) => void = () => undefined

  readonly stderr: string[]

  constructor (readonly generation: number) {
    ;({ child: this.child, stderr: this.stderr } = forkBaton(CONTROLLER_MAIN, {}))
    this.pid = this.child.pid ?? 0
    this.link = childEndpoint<ToController, FromController, ControllerCalls, SupervisorCalls>(this.child)
    this.exited = new Promise(resolve => this.child.once('exit', (code, signal) => resolve({ code, signal })))
    this.ready = new Promise<ControllerSettings>((resolve, reject) => {
      this.onReady = resolve
      void this.exited.then(e => {
        const why = this.fatal ?? errorLine(this.stderr)
        reject(new Error(`the controller exited (${describeExit(e)}) before it was ready${why === undefined ? '' : `: ${why}`}`))
      })
    })
    // Nobody may be waiting on it (a restart that is abandoned): never an unhandled rejection.
    this.ready.catch(() => undefined)
    this.link.on('ready', ({ settings }) => { this.settings = settings; this.onReady(settings) })
    this.link.on('settings', ({ settings }) => { this.settings = settings })
    this.link.on('fatal', ({ error }) => { this.fatal = error })
  }

  get alive (): boolean { return this.child.exitCode === null && this.child.signalCode === null }
}

export type WorkerState = 'starting' | 'serving' | 'draining' | 'stopping'

export class WorkerProc {
  readonly child: ChildProcess
  readonly link: WorkerLink
  readonly pid: number
  readonly startedAt = Date.now()
  readonly exited: Promise<ChildExit>
  state: WorkerState = 'starting'
  applied = 0
  private listeningWaiters: Array<() => void> = []

  readonly stderr: string[]

  constructor (readonly wid: number, readonly generation: number, env: Record<string, string>) {
    ;({ child: this.child, stderr: this.stderr } = forkBaton(WORKER_MAIN, { ...env, BATON_WORKER: String(wid), BATON_GENERATION: String(generation) }))
    this.pid = this.child.pid ?? 0
    this.link = childEndpoint<ToWorker, FromWorker>(this.child)
    this.exited = new Promise(resolve => this.child.once('exit', (code, signal) => resolve({ code, signal })))
    this.link.on('listening', () => {
      if (this.state === 'starting') this.state = 'serving'
      for (const w of this.listeningWaiters.splice(0)) w()
    })
  }

  get alive (): boolean { return this.child.exitCode === null && this.child.signalCode === null }

  /** Resolves at its next `listening` (after a listen request), or when it exits. */
  async nextListening (): Promise<void> {
    await new Promise<void>(resolve => {
      this.listeningWaiters.push(resolve)
      void this.exited.then(() => resolve())
    })
  }

  /** A message of one type from it, or its exit; bounded by timeoutMs. */
  async waitFor (type: 'stopped' | 'drained', timeoutMs: number): Promise<void> {
    await new Promise<void>(resolve => {
      const t = setTimeout(resolve, timeoutMs)
      t.unref()
      this.link.on(type, () => { clearTimeout(t); resolve() })
      void this.exited.then(() => { clearTimeout(t); resolve() })
    })
  }
}

export function describeExit (e: ChildExit): string {
  return e.signal !== null ? `killed by ${e.signal}` : `exit code ${String(e.code)}`
}
