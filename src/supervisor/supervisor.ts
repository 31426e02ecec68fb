import type { ChildProcess } from 'node:child_process'
import type { Config, ListenConfig } from '../config/types.js'
import type { TableSnapshot } from '../controller/data-plane-link.js'
import { log } from '../log.js'
import { ControllerProc, describeExit, WorkerProc, type ChildExit } from './children.js'
import { InstanceRegistry } from './instances.js'
import { listenerKeys } from '../controller/data-plane-link.js'
import { bindListener, type BoundListener } from './listeners.js'
import type { ControllerInit, ControllerSettings, ControllerState, ProcessesView, UpgradeStatus, WorkerCommand, WorkerInfo, WorkerReport } from './protocol.js'
import { StateFile } from './state-file.js'
import { UpgradeError, Upgrader } from './upgrade.js'

/** A worker or controller that dies this soon after it started counts as crash-looping: its restart waits. */
const QUICK_DEATH_MS = 5_000
const MAX_RESTART_DELAY_MS = 10_000
/** After stop's grace, workers and the controller get this long to exit on their own before SIGKILL. */
const EXIT_WAIT_MS = 3_000
/** Instances that no controller stopped (it died) get this long after SIGTERM. */
const ORPHAN_STOP_MS = 10_000

/** The addresses `baton started` logs: what tests and operators connect to. */
export interface StartedAddresses {
  listeners: Array<{ host: string, port: number }>
  admin: { host: string, port: number }
}

/**
 * `baton start` (README "Processes"): the small, stable process a service
 * manager watches. It owns what must outlive a generation of baton — the
 * listening sockets and the app instance processes — starts one controller
 * and `workers` proxy workers, relays the controller's tables and commands
 * to the workers and their reports back, replaces a worker or controller
 * that dies, and handles the signals: SIGTERM/SIGINT stop (G6), SIGHUP
 * reload, SIGUSR2 upgrade (src/supervisor/upgrade.ts).
 */
export class Supervisor {
  readonly registry: InstanceRegistry
  readonly upgrader = new Upgrader(this)
  generation = 1
  /** The controller whose tables the workers get; undefined while one restarts. */
  current: ControllerProc | undefined
  /** Every controller process alive (more than one during an upgrade). */
  readonly controllers = new Set<ControllerProc>()
  readonly workers = new Map<number, WorkerProc>()
  readonly listeners = new Map<string, BoundListener>()
  admin: BoundListener | undefined
  /** The last table the serving controller published: a worker that starts gets it first. */
  lastTable: TableSnapshot | undefined
  maxTableVersion = 0
  /** The serving controller's last state: what a restarted controller adopts from. */
  lastState: ControllerState | null = null
  settings: ControllerSettings
  upgradeStatus: UpgradeStatus = { generation: 1, running: null, last: null }
  private nextWid = 1
  private stopping: Promise<void> | undefined
  private controllerDelay = 0
  private readonly workerDelays = new Map<number, number>()
  /** Environment of every worker (UV_TCP_SINGLE_ACCEPT: README "Processes"). */
  readonly workerEnv: Record<string, string> = { UV_TCP_SINGLE_ACCEPT: process.env.UV_TCP_SINGLE_ACCEPT ?? '1' }

  constructor (readonly config: Config, workers: number) {
    this.registry = new InstanceRegistry(new StateFile(config.file), exit => {
      for (const c of this.controllers) c.link.send({ type: 'instance-exit', exit })
    })
    this.settings = { workers, upgrade: config.upgrade, stopGraceMs: 1_000 }
  }

  /**
   * Stops what a killed baton left, binds the sockets, starts the controller
   * and, once its pools can serve, the workers. Resolves when every worker
   * accepts; throws with the reason when baton cannot start.
   */
  async start (): Promise<StartedAddresses> {
    await new StateFile(this.config.file).stopLeftovers()
    this.admin = await bindListener(this.config.admin.host, this.config.admin.port)
    const keys = listenerKeys(this.config.listen)
    for (const [i, l] of this.config.listen.entries()) {
      const b = await bindListener(l.host, l.port, keys[i])
      this.listeners.set(b.key, b)
    }
    // The first controller serves from the start: there is nothing to take over.
    const c = this.startController({ generation: 1, state: null, hold: false }, true)
    this.makeServing(c)
    this.settings = await c.ready
    await this.startWorkers(this.settings.workers, this.generation)
    const addresses = this.addresses()
    log('info', 'baton started', { ...addresses, pools: Object.keys(this.config.pools), workers: this.settings.workers, generation: this.generation, pid: process.pid })
    return addresses
  }

  /** baton is stopping (G6): nothing new is started. */
  get isStopping (): boolean { return this.stopping !== undefined }

  addresses (): StartedAddresses {
    const admin = this.admin as BoundListener
    return { listeners: [...this.listeners.values()].map(l => ({ host: l.host, port: l.port })), admin: { host: admin.host, port: admin.port } }
  }

  // ── controllers ─────────────────────────────────────────────────────────

  /** Forks a controller; `admin`: it accepts on the admin socket at once (else when it starts serving). */
  startController (o: Pick<ControllerInit, 'generation' | 'state' | 'hold'>, admin: boolean): ControllerProc {
    const c = new ControllerProc(o.generation)
    this.controllers.add(c)
    log('info', 'controller started', { pid: c.pid, generation: o.generation })
    this.wireController(c)
    c.link.send({ type: 'init', init: { ...o, configFile: this.config.file, tableVersionFrom: this.maxTableVersion, upgrade: this.upgradeStatus } })
    c.link.send({ type: 'workers', workers: this.workerInfos() })
    if (admin) this.giveAdmin(c)
    void c.exited.then(e => this.controllerExited(c, e))
    return c
  }

  giveAdmin (c: ControllerProc): void {
    const a = this.admin as BoundListener
    c.link.send({ type: 'admin', listener: { key: a.key, host: a.host, port: a.port } }, a.handle)
  }

  /** From now on its tables reach the workers and it runs instances. */
  makeServing (c: ControllerProc): void {
    for (const other of this.controllers) other.serving = false
    c.serving = true
    this.current = c
    c.link.send({ type: 'release', tableVersionFrom: this.maxTableVersion })
  }

  private wireController (c: ControllerProc): void {
    const l = c.link
    l.on('table', ({ table }) => {
      if (!c.serving) return
      this.lastTable = table
      this.maxTableVersion = Math.max(this.maxTableVersion, table.version)
      for (const w of this.workers.values()) w.link.send({ type: 'table', table })
    })
    l.on('to-workers', ({ command }) => { if (c.serving) this.toWorkers(command) })
    l.on('signal', ({ id, signal }) => { if (c.serving || this.current === undefined) this.registry.signal(id, signal) })
    l.on('state', ({ state }) => { if (c.serving || this.current === undefined) this.lastState = state })
    l.answer('spawn', req => {
      if (!c.serving) throw new Error('this controller does not serve: it may not start instances')
      return this.registry.spawn(req)
    })
    l.answer('instances', ({ pool }) => this.registry.list(pool))
    l.answer('listeners', async ({ listen }) => await this.setListeners(listen))
    l.answer('processes', () => this.processes())
    l.answer('upgrade', async () => await this.upgrader.begin('POST /v1/upgrade'))
    l.answer('upgradeStatus', () => this.upgradeStatus)
  }

  private controllerExited (c: ControllerProc, e: ChildExit): void {
    this.controllers.delete(c)
    const expected = c.retiring || c.stopping || this.stopping !== undefined
    if (!expected) log('error', 'controller exited', { pid: c.pid, generation: c.generation, why: c.fatal ?? describeExit(e) })
    if (this.current !== c) return
    this.current = undefined
    if (expected) return
    this.restartController(Date.now() - c.startedAt < QUICK_DEATH_MS)
  }

  /**
   * A controller died outside an upgrade: another takes over with the last
   * state it deposited and adopts every instance; the workers serve with
   * their last table meanwhile.
   */
  private restartController (quick: boolean): void {
    this.controllerDelay = quick ? Math.min(MAX_RESTART_DELAY_MS, Math.max(500, this.controllerDelay * 2)) : 0
    const start = (): void => {
      if (this.stopping !== undefined) return
      const c = this.startController({ generation: this.generation, state: this.lastState, hold: true }, true)
      c.ready.then(settings => {
        if (!c.alive || this.stopping !== undefined) return
        this.settings = settings
        this.makeServing(c)
        log('info', 'controller restarted; it adopted the running instances', { pid: c.pid, generation: c.generation })
      }, () => undefined)
    }
    if (this.controllerDelay === 0) start()
    else setTimeout(start, this.controllerDelay)
  }

  // ── workers ─────────────────────────────────────────────────────────────

  /** Starts `n` workers of `generation`; resolves once each accepts or has exited (`onFork`: each as it is forked). */
  async startWorkers (n: number, generation: number, onFork?: (w: WorkerProc) => void): Promise<WorkerProc[]> {
    return await Promise.all(Array.from({ length: n }, async () => await this.startWorker(generation, onFork)))
  }

  private async startWorker (generation: number, onFork?: (w: WorkerProc) => void): Promise<WorkerProc> {
    const w = new WorkerProc(this.nextWid++, generation, this.workerEnv)
    this.workers.set(w.wid, w)
    onFork?.(w)
    log('info', 'worker started', { worker: w.wid, pid: w.pid, generation })
    this.wireWorker(w)
    if (this.lastTable !== undefined) w.link.send({ type: 'table', table: this.lastTable })
    this.sendListeners(w)
    void w.exited.then(e => this.workerExited(w, e))
    await w.nextListening()
    if (w.alive) this.announceWorkers()
    return w
  }

  private sendListeners (w: WorkerProc): void {
    for (const l of this.listeners.values()) w.link.send({ type: 'listener', listener: { key: l.key, host: l.host, port: l.port } }, l.handle)
    w.link.send({ type: 'listen', keys: [...this.listeners.keys()] })
  }

  private wireWorker (w: WorkerProc): void {
    const forward = (report: WorkerReport): void => this.forwardReport(w, report)
    w.link.on('applied', r => { w.applied = Math.max(w.applied, r.version); forward(r) })
    w.link.on('idle', forward)
    w.link.on('quiet', forward)
    w.link.on('traffic', forward)
    w.link.on('done', forward)
    w.link.on('counts', forward)
    w.link.on('metrics', forward)
    w.link.on('final', forward)
  }

  private forwardReport (w: WorkerProc, report: WorkerReport): void {
    for (const c of this.controllers) c.link.send({ type: 'worker', wid: w.wid, report })
  }

  toWorkers (command: WorkerCommand): void {
    for (const w of this.workers.values()) w.link.send(command)
  }

  /** The live workers as the controllers' links count them: those accepting or draining. */
  workerInfos (): WorkerInfo[] {
    return [...this.workers.values()].filter(w => w.state === 'serving' || w.state === 'draining' || w.state === 'stopping')
      .map(w => ({ wid: w.wid, pid: w.pid, generation: w.generation, state: w.state === 'serving' ? 'serving' : 'draining', applied: w.applied }))
  }

  announceWorkers (): void {
    const workers = this.workerInfos()
    for (const c of this.controllers) c.link.send({ type: 'workers', workers })
  }

  private workerExited (w: WorkerProc, e: ChildExit): void {
    this.workers.delete(w.wid)
    this.announceWorkers()
    const expected = w.state === 'draining' || w.state === 'stopping' || this.stopping !== undefined
    if (expected) return
    // Only its own connections were lost: the socket stays open here and the
    // other workers (or the replacement) accept what comes.
    const quick = Date.now() - w.startedAt < QUICK_DEATH_MS
    const delay = quick ? Math.min(MAX_RESTART_DELAY_MS, Math.max(100, (this.workerDelays.get(w.generation) ?? 0) * 2)) : 0
    this.workerDelays.set(w.generation, delay)
    log('error', 'worker exited; starting another', { worker: w.wid, pid: w.pid, generation: w.generation, why: describeExit(e), delayMs: delay })
    if (w.generation !== this.generation) return
    const replace = (): void => {
      if (this.stopping === undefined && w.generation === this.generation) void this.startWorker(w.generation)
    }
    if (delay === 0) replace()
    else setTimeout(replace, delay)
  }

  // ── listeners (reload) ──────────────────────────────────────────────────

  /** A reload changed `listen:`: new sockets are bound and handed to every worker; removed ones close. */
  async setListeners (listen: ListenConfig[]): Promise<Array<{ host: string, port: number }>> {
    const keys = listenerKeys(listen)
    const wanted = new Map(listen.map((l, i) => [keys[i], l]))
    const added: BoundListener[] = []
    try {
      for (const [key, l] of wanted) if (!this.listeners.has(key)) added.push(await bindListener(l.host, l.port, key))
    } catch (err) {
      for (const b of added) b.handle.close()
      throw err
    }
    for (const b of added) this.listeners.set(b.key, b)
    const removed = [...this.listeners.values()].filter(b => !wanted.has(b.key))
    for (const b of removed) this.listeners.delete(b.key)
    const live = [...this.workers.values()].filter(w => w.state === 'serving')
    const listening = live.map(async w => await w.nextListening())
    for (const w of live) this.sendListeners(w)
    await Promise.all(listening)
    for (const b of removed) b.handle.close()
    return [...this.listeners.values()].map(l => ({ host: l.host, port: l.port }))
  }

  // ── views ───────────────────────────────────────────────────────────────

  processes (): ProcessesView {
    return {
      supervisor: { pid: process.pid },
      generation: this.generation,
      controllers: [...this.controllers].map(c => ({ pid: c.pid, generation: c.generation, serving: c.serving })),
      workers: [...this.workers.values()].map(w => ({ wid: w.wid, pid: w.pid, generation: w.generation, state: w.state === 'stopping' ? 'draining' : w.state }))
    }
  }

  // ── signals ─────────────────────────────────────────────────────────────

  /** SIGUSR2: an upgrade of baton, as `baton upgrade` (README "Upgrading baton"). */
  upgrade (): void {
    this.upgrader.begin('SIGUSR2').catch((err: Error) => {
      if (!(err instanceof UpgradeError)) log('error', 'upgrade failed', { error: err.message })
    })
  }

  reload (): void {
    if (this.current === undefined) {
      log('warn', 'reload not done: no controller runs right now (one is being restarted)')
      return
    }
    this.current.link.send({ type: 'reload' })
  }

  /**
   * G6: the workers stop accepting and finish their in-flight requests; the
   * controller stops every instance in order (the workers still report
   * their drains); then everything exits. Resolves when all is gone.
   */
  async stop (): Promise<void> {
    this.stopping ??= (async () => {
      log('info', 'baton stopping')
      const grace = this.settings.stopGraceMs
      // This process's copies first: once the workers close theirs, the
      // sockets are closed and new connections are refused.
      for (const l of this.listeners.values()) l.handle.close()
      const workers = [...this.workers.values()]
      for (const w of workers) { w.state = 'stopping'; w.link.send({ type: 'stop', graceMs: grace }) }
      await Promise.all(workers.map(async w => await w.waitFor('stopped', grace + EXIT_WAIT_MS)))
      const controllers = [...this.controllers]
      for (const c of controllers) c.stopping = true
      const current = this.current
      if (current !== undefined && current.alive) {
        current.link.send({ type: 'stop' })
        await current.exited
      }
      await this.registry.stopAll(ORPHAN_STOP_MS)
      for (const w of workers) w.link.send({ type: 'exit' })
      for (const c of controllers) if (c !== current) c.child.kill('SIGKILL')
      await Promise.all([...workers, ...controllers].map(async p => await exitOrKill(p.child, p.exited)))
      this.admin?.handle.close()
      log('info', 'baton stopped')
    })()
    await this.stopping
  }
}

async function exitOrKill (child: ChildProcess, exited: Promise<ChildExit>): Promise<void> {
  const t = setTimeout(() => child.kill('SIGKILL'), EXIT_WAIT_MS)
  await exited
  clearTimeout(t)
}
