import { constants } from 'node:os'
import { log } from '../../log.js'
import type { ExitInfo, RunningInstance } from '../types.js'
import { EngineError, type Engine } from './engine.js'

/** How long to wait for a SIGKILLed container before removing it by force anyway. */
const KILL_WAIT = 10_000
/** Pause before waiting again when the wait call's connection broke (engine restarting, or down). */
const REWAIT_DELAY = 1_000
/** How long a removal waits for the last lines of the container's output to reach the log. */
const LOGS_FLUSH_MS = 1_000
/** A shell or an init reports a death by signal N as exit code 128 + N (137: SIGKILL). */
const SIGNAL_EXIT_BASE = 128

export interface ContainerDeps {
  engine: Engine
  id: string
  host: string
  port: number
  /** pool, instance, version: put on every log line of the container. */
  fields: Record<string, unknown>
  /** True once the engine is marked down: the wait call is not retried. */
  engineDown: () => boolean
  /** Called once, when the container is gone (exited, or its engine is down). */
  onGone: (c: Container) => void
  /** A removal that failed because the engine could not be reached: try again when it answers. */
  onRemoveFailed: (c: Container) => void
}

/**
 * One container as a RunningInstance. `exited` resolves when the engine's
 * wait call returns (it stopped for any reason) or when its engine is marked
 * down; a container that is gone is then removed. Its output goes into
 * baton's log, one line per line, like a process instance's.
 */
export class Container implements RunningInstance {
  readonly host: string
  readonly port: number
  /**
   * null: a container's PID is a PID on the engine's host, and a PID in
   * baton's state file would be signalled by the next baton (which adopts
   * containers instead).
   */
  readonly pid = null
  readonly exited: Promise<ExitInfo>
  private resolveExit!: (info: ExitInfo) => void
  private gone = false
  /** Aborts the wait and logs calls (engine down, driver closed). */
  private readonly abort = new AbortController()
  private logsDone: Promise<void> = Promise.resolve()
  private removal: Promise<void> | undefined

  constructor (private readonly deps: ContainerDeps) {
    this.host = deps.host
    this.port = deps.port
    this.exited = new Promise(resolve => { this.resolveExit = resolve })
  }

  get id (): string { return this.deps.id }
  get engine (): Engine { return this.deps.engine }
  get isGone (): boolean { return this.gone }

  /** Starts the wait long poll and the log stream (`tail: 0` for an adopted container: no old lines again). */
  watch (o: { tail?: number } = {}): void {
    this.logsDone = this.deps.engine.logs(this.deps.id, (stream, line) => log('info', line, { ...this.deps.fields, stream }), {
      tail: o.tail,
      signal: this.abort.signal
    }).catch(() => undefined)
    void this.waitLoop()
  }

  private async waitLoop (): Promise<void> {
    while (!this.gone) {
      try {
        const code = await this.deps.engine.wait(this.deps.id, this.abort.signal)
        this.finish({ code, signal: signalOf(code) })
        return
      } catch (err) {
        // Gone, or no longer followed (engine down, driver closed).
        if (this.gone || this.abort.signal.aborted) return
        if (err instanceof EngineError && err.code === 'BATON_ERR_DOCKER_NOT_FOUND') {
          this.finish({ code: null, signal: null }, 'the container is gone')
          return
        }
        // The connection broke (the engine restarts, or is down): the pings decide which.
        if (this.deps.engineDown()) return
        await new Promise(resolve => setTimeout(resolve, REWAIT_DELAY))
      }
    }
  }

  /** Its engine is down: the container counts as gone (the pool replaces it elsewhere). */
  lost (reason: string): void {
    if (this.gone) return
    this.abort.abort()
    this.finish({ code: null, signal: null }, reason)
  }

  private finish (info: ExitInfo, reason?: string): void {
    if (this.gone) return
    this.gone = true
    log(reason === undefined ? 'info' : 'warn', 'container gone', { ...this.deps.fields, container: short(this.deps.id), exitCode: info.code, signal: info.signal, reason })
    this.resolveExit(info)
    this.deps.onGone(this)
    void this.remove()
  }

  /** The end of the stopping order (README "What it guarantees"): the stop signal, up to `timeoutMs` for the exit, SIGKILL; then the container is removed. */
  async stop (signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    if (!this.gone) {
      const f = { ...this.deps.fields, container: short(this.deps.id) }
      await this.kill(signal)
      if (signal !== 'SIGKILL' && !await this.exitsWithin(timeoutMs)) {
        log('warn', 'container ignored its stop signal; killing it', { ...f, signal })
        await this.kill('SIGKILL')
      }
      if (!await this.exitsWithin(KILL_WAIT)) log('warn', 'container did not exit after SIGKILL; removing it by force', f)
    }
    await this.remove()
  }

  /** Stops following it without touching the container (the driver closes). */
  detach (): void {
    this.abort.abort()
  }

  private async kill (signal: NodeJS.Signals): Promise<void> {
    try {
      await this.deps.engine.kill(this.deps.id, signal)
    } catch (err) {
      log('warn', 'could not signal the container', { ...this.deps.fields, container: short(this.deps.id), signal, error: (err as Error).message })
    }
  }

  private async exitsWithin (ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<false>(resolve => { timer = setTimeout(() => resolve(false), ms) })
    const done = await Promise.race([this.exited.then(() => true), timeout])
    clearTimeout(timer)
    return done
  }

  /** Removes the container once (force: a running one is killed); later calls share the first. */
  remove (): Promise<void> {
    this.removal ??= (async () => {
      // Let the last lines of its output reach the log first (bounded).
      await Promise.race([this.logsDone, new Promise(resolve => setTimeout(resolve, LOGS_FLUSH_MS))])
      let unreachable = false
      try {
        await this.deps.engine.remove(this.deps.id)
        log('debug', 'container removed', { ...this.deps.fields, container: short(this.deps.id) })
      } catch (err) {
        unreachable = err instanceof EngineError && err.unreachable
        if (unreachable) this.deps.onRemoveFailed(this)
        else log('warn', 'could not remove the container', { ...this.deps.fields, container: short(this.deps.id), error: (err as Error).message })
      }
      this.abort.abort()
      // Removed by force before the wait call saw it stop: it is gone all the same.
      if (unreachable) this.finish({ code: null, signal: null }, 'its engine cannot be reached')
      else this.finish({ code: null, signal: 'SIGKILL' })
    })()
    return this.removal
  }
}

export const short = (id: string): string => id.slice(0, 12)

/** The signal an exit code says the container died of, if any. */
function signalOf (code: number): string | null {
  if (code <= SIGNAL_EXIT_BASE) return null
  return Object.entries(constants.signals).find(([, n]) => n === code - SIGNAL_EXIT_BASE)?.[0] ?? null
}
