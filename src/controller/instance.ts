import type { ReadinessSpec, RolloutSpec } from '../config/types.js'
import type { Driver, Revision, RunningInstance } from '../driver/types.js'
import { log } from '../log.js'
import type { InstanceState } from '../rollout/planner.js'
import { Prober } from './prober.js'
import type { PoolMembers } from './table.js'

/** SIGKILL cannot be ignored: this is only for the exit to be seen (a container's takes a round trip). */
const KILL_WAIT_MS = 1_000

/** Starts retried on another port after losing the port to another process, before the start counts as failed. */
const PORT_RETRIES = 3

export interface InstanceDeps {
  pool: string
  driver: Driver
  readiness: ReadinessSpec
  members: PoolMembers
  /** Called after every state change; the pool's controller reconciles on it. */
  onChange: (i: Instance, previous: InstanceState) => void
  /** Called when a start was retried on another port: a new process (pid, port) runs it now. */
  onRespawn?: (i: Instance) => void
  /** Called when, draining, it has no HTTP request left but upgraded connections (see `upgradesOnly`). */
  onUpgradesOnly?: (i: Instance) => void
}

/**
 * One managed instance and its life: starting → ready (its probe passed) →
 * serving (the data plane has it in its table) → draining → stopped, or
 * failed. It takes traffic only once its readiness probe passed (G2) and
 * leaves the table before anything else happens when it stops.
 */
export class Instance {
  state: InstanceState = 'starting'
  handle: RunningInstance | undefined
  /** When it last became ready (ms epoch): the start of its minReady soak. */
  readyAt = 0
  /** Why it failed, for status and the rollout's error. */
  failure: string | undefined
  /**
   * Draining with no HTTP request left, only upgraded connections: they stay
   * until they end or drainTimeout, but a rollout no longer waits on it.
   */
  upgradesOnly = false
  readonly createdAt = Date.now()
  /** When its process or container was there to be probed (ms epoch). */
  attachedAt: number | undefined
  private prober: Prober | undefined
  /** It passed a readiness probe once: an exit after that is never a lost port race. */
  private everReady = false
  private portRetries = 0
  /** It served before this controller took it over: back at full weight at once, no slow start. */
  private adopted = false
  private startTimer: NodeJS.Timeout | undefined
  private stopping: Promise<void> | undefined

  constructor (readonly id: string, readonly revision: Revision, private readonly deps: InstanceDeps) {}

  get version (): string { return this.revision.version }
  get pid (): number | null { return this.handle?.pid ?? null }
  get address (): string | null { return this.handle === undefined ? null : `${this.handle.host}:${this.handle.port}` }

  /** Starts the process or container; the readiness probe decides when it serves. */
  async start (): Promise<void> {
    this.armStartTimeout()
    let handle: RunningInstance
    try {
      handle = await this.deps.driver.start({ pool: this.deps.pool, id: this.id, revision: this.revision })
    } catch (err) {
      this.fail(`could not start: ${(err as Error).message}`)
      return
    }
    this.attach(handle)
  }

  /**
   * Takes over a running process or container (just started, or adopted
   * from an earlier run): it is probed before it gets any traffic.
   */
  attach (h: RunningInstance, adopted = false): void {
    this.handle = h
    this.adopted = adopted
    if (this.state !== 'starting') { // stopped or failed while the driver worked
      void h.stop('SIGKILL', KILL_WAIT_MS)
      return
    }
    this.attachedAt = Date.now()
    this.armStartTimeout()
    void h.exited.then(async info => {
      if (this.state === 'draining' || this.state === 'stopped') return
      if (await this.lostPortRace(h)) { await this.retryOnAnotherPort(h); return }
      this.fail(info.signal !== null ? `exited on ${info.signal}` : `exited with code ${String(info.code)}`)
    })
    this.prober = new Prober(h.host, h.port, this.deps.readiness, verdict => this.onProbe(verdict))
    this.prober.start()
  }

  /**
   * An app that exited before its first good probe because another process
   * bound its port between the driver's check and the app's bind lost a race,
   * not a sign of a broken version (G3): asked of the driver, a bounded
   * number of times.
   */
  private async lostPortRace (h: RunningInstance): Promise<boolean> {
    const driver = this.deps.driver
    if (this.everReady || this.portRetries >= PORT_RETRIES || driver.lostPortRace === undefined) return false
    if (this.state !== 'starting' || this.handle !== h) return false
    const lost = await driver.lostPortRace(h).catch(() => false)
    // Stopped, failed (startTimeout) or retried while the driver looked: nothing to retry.
    return lost && this.state === 'starting' && this.handle === h
  }

  private async retryOnAnotherPort (lost: RunningInstance): Promise<void> {
    const d = this.deps
    this.portRetries++
    log('warn', 'instance port was taken; retrying on another port', { ...this.fields(), port: lost.port, retry: this.portRetries, of: PORT_RETRIES })
    this.prober?.stop()
    let handle: RunningInstance
    try {
      handle = await d.driver.start({ pool: d.pool, id: this.id, revision: this.revision })
    } catch (err) {
      this.fail(`could not start: ${(err as Error).message}`)
      return
    }
    this.attach(handle)
    d.onRespawn?.(this)
  }

  private armStartTimeout (): void {
    if (this.startTimer !== undefined) return
    const ms = this.deps.readiness.startTimeout
    this.startTimer = setTimeout(() => { this.fail(`not ready within startTimeout (${ms} ms)`) }, ms)
  }

  private onProbe (verdict: 'up' | 'down'): void {
    const h = this.handle
    if (h === undefined) return
    if (verdict === 'up' && this.state === 'starting') {
      clearTimeout(this.startTimer)
      this.everReady = true
      this.readyAt = Date.now()
      log('info', 'instance ready', this.fields())
      this.setState('ready')
      // Traffic from the moment readiness passed; minReady is a soak while serving.
      void this.deps.members.serve({ id: this.id, host: h.host, port: h.port, version: this.version, revision: this.revision.number }, this.adopted).then(() => {
        this.adopted = false
        if (this.state === 'ready') this.setState('serving')
      })
    } else if (verdict === 'down' && (this.state === 'serving' || this.state === 'ready')) {
      // Like a failing Kubernetes readiness probe: out of the balancer, not killed.
      void this.deps.members.withdraw(this.id)
      this.readyAt = 0
      log('warn', 'instance failed its readiness probe', this.fields())
      this.setState('starting')
    }
  }

  /** Something went wrong: out of the balancer at once, and the process is stopped. */
  fail (reason: string): void {
    if (this.state === 'failed' || this.state === 'stopped' || this.state === 'draining') return
    clearTimeout(this.startTimer)
    this.prober?.stop()
    void this.deps.members.withdraw(this.id)
    this.failure = reason
    log('warn', 'instance failed', { ...this.fields(), reason })
    this.setState('failed')
    void this.handle?.stop('SIGKILL', KILL_WAIT_MS).then(async () => await this.deps.members.forget(this.id))
  }

  /**
   * The stopping order (README "What it guarantees"): out of the balancer;
   * close idle upstream sockets; wait for in-flight requests and upgraded
   * connections up to drainTimeout, then close what is left; stopSignal;
   * stopTimeout; SIGKILL.
   */
  async stop (spec: Pick<RolloutSpec, 'drainTimeout' | 'stopSignal' | 'stopTimeout'>): Promise<void> {
    this.stopping ??= (async () => {
      clearTimeout(this.startTimer)
      const wasFailed = this.state === 'failed'
      const out = this.deps.members.withdraw(this.id)
      this.prober?.stop()
      this.setState('draining')
      if (this.handle !== undefined && !wasFailed) {
        await out
        const onQuiet = (): void => {
          this.upgradesOnly = true
          log('info', 'instance holds only upgraded connections; they drain on', this.fields())
          this.deps.onUpgradesOnly?.(this)
        }
        if (!await this.deps.members.drain(this.id, spec.drainTimeout, onQuiet)) log('warn', 'drain timed out; closed what was left', this.fields())
      }
      await this.handle?.stop(spec.stopSignal, spec.stopTimeout)
      await this.deps.members.forget(this.id)
      this.setState('stopped')
    })()
    await this.stopping
  }

  private setState (s: InstanceState): void {
    const previous = this.state
    this.state = s
    log('debug', 'instance state', { ...this.fields(), state: s })
    this.deps.onChange(this, previous)
  }

  fields (): Record<string, unknown> {
    return { pool: this.deps.pool, instance: this.id, version: this.revision.version, revision: this.revision.number, pid: this.pid }
  }
}
