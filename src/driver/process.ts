import { resolve as resolvePath } from 'node:path'
import { parse as parseShell } from 'shell-quote'
import type { ManagedPoolConfig } from '../config/types.js'
import { log } from '../log.js'
import { isFree, PortAllocator } from './ports.js'
import { substitute } from './substitute.js'
import { DriverError, specKey, type DiscoveredInstance, type Driver, type ExitInfo, type RunningInstance, type StartRequest } from './types.js'

/** Splits a command string as a shell would (quotes, escapes), refusing shell operators. */
export function splitCommand (command: string | string[]): string[] {
  if (Array.isArray(command)) return command
  const parts = parseShell(command, key => `$${key}`)
  return parts.map(p => {
    if (typeof p !== 'string') {
      throw new DriverError('BATON_ERR_COMMAND', `the command uses a shell operator (${JSON.stringify(p)}); give a program and its arguments, or wrap it in sh -c`)
    }
    return p
  })
}

/** What the output of an app that could not bind its port says (Node, Go, Python, Java...). */
const PORT_IN_USE = /EADDRINUSE|address already in use/i

/** What to run for one instance: a program, its arguments, where and with what environment. */
export interface ProcessLaunch {
  pool: string
  id: string
  version: string
  revision: number
  specKey: string
  argv: string[]
  cwd: string
  env: Record<string, string>
  port: number
}

/** How an instance's process ended, once its output was read. */
export interface LaunchedExit extends ExitInfo {
  spawnFailed: boolean
  /** Its last lines of output. */
  tail: string[]
}

/** An instance process, wherever it runs. */
export interface Launched {
  pid: number | null
  port: number
  id: string
  specKey: string
  readonly exited: Promise<LaunchedExit>
  signal: (signal: NodeJS.Signals) => void
}

/**
 * Who actually runs the processes: under `baton start` the supervisor (over
 * IPC, src/controller/ipc-spawner.ts), so that instances outlive a
 * controller and their output pipes stay read across an upgrade.
 */
export interface Spawner {
  spawn: (launch: ProcessLaunch) => Promise<Launched>
  /** The pool's instances that run already (started by an earlier controller). */
  running: (pool: string) => Promise<Launched[]>
}

/**
 * Runs instances as processes: each gets a free port from the pool's range,
 * its own process group (a stop signal reaches the app behind any wrapper
 * such as npm or sh) and its output in baton's log.
 */
export class ProcessDriver implements Driver {
  private readonly ports: PortAllocator
  private readonly launched = new WeakMap<RunningInstance, Launched>()

  constructor (private readonly pool: string, private readonly baseDir: string, ports: { from: number, to: number }, private readonly spawner: Spawner) {
    this.ports = new PortAllocator(ports.from, ports.to)
  }

  reconfigure (config: ManagedPoolConfig): void {
    if (config.kind === 'process') this.ports.setRange(config.process.ports.from, config.process.ports.to)
  }

  async start (req: StartRequest): Promise<RunningInstance> {
    const spec = req.revision.process
    if (spec === undefined) throw new DriverError('BATON_ERR_PROCESS_SPEC', `pool ${this.pool}: revision ${req.revision.number} has no process spec`)
    const port = await this.ports.allocate()
    const vars = { port, version: req.revision.version }
    let launched: Launched
    try {
      const argv = splitCommand(Array.isArray(spec.command) ? spec.command.map(a => substitute(a, vars)) : substitute(spec.command, vars))
      const env: Record<string, string> = {}
      for (const [k, v] of Object.entries(spec.env)) env[k] = substitute(v, vars)
      const cwd = resolvePath(this.baseDir, substitute(spec.cwd, vars))
      launched = await this.spawner.spawn({ pool: this.pool, id: req.id, version: req.revision.version, revision: req.revision.number, specKey: specKey(req.revision), argv, cwd, env, port })
    } catch (err) {
      this.ports.release(port)
      throw err
    }
    return this.handleOf(launched)
  }

  /** The instances an earlier controller started (an upgrade, a restart): adopted, never restarted. */
  async discover (): Promise<DiscoveredInstance[]> {
    const found = await this.spawner.running(this.pool)
    return found.map(l => {
      this.ports.reserve(l.port)
      return { id: l.id, specKey: l.specKey, handle: this.handleOf(l) }
    })
  }

  /**
   * The app exited before its first good probe because its port was taken:
   * the port is bound by someone else right after the exit, or the app's
   * last output says EADDRINUSE. A crash for any other reason is neither.
   */
  async lostPortRace (handle: RunningInstance): Promise<boolean> {
    const l = this.launched.get(handle)
    if (l === undefined) return false
    const exit = await l.exited
    if (exit.spawnFailed) return false
    if (!await isFree(l.port)) return true
    return exit.tail.some(line => PORT_IN_USE.test(line))
  }

  private handleOf (l: Launched): RunningInstance {
    let gone = false
    const exited = l.exited.then(e => {
      gone = true
      this.ports.release(l.port)
      return { code: e.code, signal: e.signal }
    })
    const handle: RunningInstance = {
      host: '127.0.0.1',
      port: l.port,
      pid: l.pid,
      exited,
      stop: async (signal, timeoutMs) => {
        if (l.pid === null || gone) return
        l.signal(signal)
        const timer = new Promise<'timeout'>(resolve => setTimeout(() => resolve('timeout'), timeoutMs).unref())
        if (await Promise.race([exited.then(() => 'exited' as const), timer]) === 'timeout') {
          log('warn', 'instance ignored its stop signal; killing it', { pool: this.pool, instance: l.id, pid: l.pid, signal })
          l.signal('SIGKILL')
          await exited
        }
        // The app may have left children in its group: they go with it.
        l.signal('SIGKILL')
      }
    }
    this.launched.set(handle, l)
    return handle
  }
}
