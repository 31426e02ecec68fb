import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { resolve as resolvePath } from 'node:path'
import { parse as parseShell } from 'shell-quote'
import type { ManagedPoolConfig } from '../config/types.js'
import { log } from '../log.js'
import { isFree, PortAllocator } from './ports.js'
import { substitute } from './substitute.js'
import { DriverError, type Driver, type ExitInfo, type RunningInstance, type StartRequest } from './types.js'

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
/** Output lines kept per instance (each cut at 1000 characters) to read why it exited: a stack trace fits. */
const TAIL_LINES = 50
/**
 * How long to wait, after the exit, for the last output (a child the app
 * left behind may hold its pipes open; then we read what came).
 */
const OUTPUT_WAIT_MS = 300

/** Per started process: what lostPortRace needs to tell a lost port from a crash. */
interface Started {
  port: number
  spawnFailed: boolean
  tail: string[]
  /** Resolves when the process exited and its output pipes closed. */
  closed: Promise<void>
}

/**
 * Runs instances as child processes. Each gets its own process group (so a
 * stop signal reaches the app behind any wrapper such as npm or sh), a free
 * port from the pool's range, and its output in baton's log.
 */
export class ProcessDriver implements Driver {
  private readonly ports: PortAllocator
  private readonly started = new WeakMap<RunningInstance, Started>()

  constructor (private readonly pool: string, private readonly baseDir: string, ports: { from: number, to: number }) {
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
    const argv = splitCommand(Array.isArray(spec.command) ? spec.command.map(a => substitute(a, vars)) : substitute(spec.command, vars))
    const env: NodeJS.ProcessEnv = { ...process.env }
    for (const [k, v] of Object.entries(spec.env)) env[k] = substitute(v, vars)
    // Lets a later baton recognise this process as one of its own (state file).
    env.BATON_INSTANCE = req.id
    env.BATON_POOL = this.pool
    const cwd = resolvePath(this.baseDir, substitute(spec.cwd, vars))

    const child = spawn(argv[0], argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    const record: Started = { port, spawnFailed: false, tail: [], closed: new Promise(resolve => child.once('close', () => resolve())) }
    const exited = new Promise<ExitInfo>(resolve => {
      child.once('exit', (code, signal) => resolve({ code, signal }))
      child.once('error', err => {
        record.spawnFailed = true
        log('error', 'instance could not be started', { pool: this.pool, instance: req.id, error: err.message })
        resolve({ code: null, signal: null })
      })
    })
    void exited.then(() => this.ports.release(port))
    const fields = { pool: this.pool, instance: req.id, version: req.revision.version }
    for (const [stream, input] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
      createInterface({ input }).on('line', line => {
        log('info', line, { ...fields, stream })
        record.tail.push(line.slice(0, 1_000))
        if (record.tail.length > TAIL_LINES) record.tail.shift()
      })
    }
    const pid = child.pid ?? null
    log('info', 'instance spawned', { ...fields, pid, port, command: argv })
    const handle: RunningInstance = {
      host: '127.0.0.1',
      port,
      pid,
      exited,
      stop: async (signal, timeoutMs) => {
        if (pid === null) return
        if (child.exitCode !== null || child.signalCode !== null) return
        signalGroup(pid, signal)
        const timer = new Promise<'timeout'>(resolve => setTimeout(() => resolve('timeout'), timeoutMs).unref())
        if (await Promise.race([exited.then(() => 'exited' as const), timer]) === 'timeout') {
          log('warn', 'instance ignored its stop signal; killing it', { ...fields, pid, signal })
          signalGroup(pid, 'SIGKILL')
          await exited
        }
        // The app may have left children in its group: they go with it.
        signalGroup(pid, 'SIGKILL')
      }
    }
    this.started.set(handle, record)
    return handle
  }

  /**
   * The app exited before its first good probe because its port was taken:
   * the port is bound by someone else right after the exit, or the app's
   * last output says EADDRINUSE. A crash for any other reason is neither.
   */
  async lostPortRace (handle: RunningInstance): Promise<boolean> {
    const record = this.started.get(handle)
    if (record === undefined || record.spawnFailed) return false
    await handle.exited
    if (!await isFree(record.port)) return true
    await Promise.race([record.closed, new Promise(resolve => setTimeout(resolve, OUTPUT_WAIT_MS).unref())])
    return record.tail.some(line => PORT_IN_USE.test(line))
  }
}

/** Signals a whole process group; ignores a group that is already gone. */
export function signalGroup (pid: number, signal: NodeJS.Signals): void {
  try { process.kill(-pid, signal) } catch { /* already gone */ }
}
