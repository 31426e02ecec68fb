import type { DockerSpec, ManagedPoolConfig } from '../../config/types.js'
import { log } from '../../log.js'
import { PortAllocator } from '../ports.js'
import { substitute } from '../substitute.js'
import { DriverError, specKey, type DiscoveredInstance, type Driver, type RunningInstance, type StartRequest, type StopSpec } from '../types.js'
import { Container, short } from './container.js'
import { Engine, EngineError, type ContainerInfo, type EngineTls } from './engine.js'

/** Every engine is pinged this often; after DOWN_AFTER failures in a row it is down. */
const PING_EVERY = 2_000
const DOWN_AFTER = 3

export const LABELS = {
  pool: 'baton.pool',
  revision: 'baton.revision',
  instance: 'baton.instance',
  spec: 'baton.spec',
  version: 'baton.version',
  /** host networking: the port baton gave the container as {port}. */
  port: 'baton.port'
} as const

interface EngineSlot {
  engine: Engine
  up: boolean
  failures: number
  lastError: string
  /** Containers of this pool on it (adopted or started), and starts under way: for spreading. */
  containers: Set<Container>
  starting: number
  /** Containers to remove once the engine answers again (it was down when they went). */
  toRemove: Set<string>
  /**
   * When it answers again, remove the containers of this pool on it that baton
   * does not follow (it was down, or could not be listed at start-up).
   */
  sweep: boolean
  pinging: boolean
  timer: NodeJS.Timeout
}

type EngineEntry = DockerSpec['engines'][number]

/**
 * Runs the instances of one pool as containers on one or more Docker engines
 * (README "Config reference", `docker:`). New containers go to the engine with the fewest of
 * this pool's containers; an engine that stops answering its pings is marked
 * down, its containers count as exited (the pool replaces them elsewhere) and
 * it gets no new one until it answers again.
 */
export class DockerDriver implements Driver {
  private readonly engines = new Map<string, EngineSlot>()
  private readonly ports: PortAllocator
  /** host networking: ports held by adopted containers, which the allocator did not hand out. */
  private readonly heldPorts = new Set<number>()
  private closed = false

  constructor (private readonly pool: string, spec: DockerSpec) {
    this.ports = new PortAllocator(spec.ports?.from ?? 1, spec.ports?.to ?? 0)
    this.update(spec)
  }

  reconfigure (config: ManagedPoolConfig): void {
    if (config.kind === 'docker') this.update(config.docker)
  }

  /** A reloaded spec: engines new to it are pinged from now on; a new port range applies. */
  private update (spec: DockerSpec): void {
    for (const e of spec.engines) this.slot(e, spec.tls)
    if (spec.ports !== undefined) this.ports.setRange(spec.ports.from, spec.ports.to)
  }

  async start (req: StartRequest): Promise<RunningInstance> {
    const spec = req.revision.docker
    if (spec === undefined) throw new DriverError('BATON_ERR_DOCKER_SPEC', `pool ${this.pool}: revision ${req.revision.number} has no docker spec`)
    const slots = spec.engines.map(e => this.slot(e, spec.tls))
    const up = slots.filter(s => s.up)
    if (up.length === 0) {
      throw new DriverError('BATON_ERR_DOCKER_NO_ENGINE',
        `no Docker engine of pool ${this.pool} answers (${slots.map(s => `${s.engine.url}: ${s.lastError}`).join('; ')})`)
    }
    // Fewest containers of this pool first; ties keep the config's order.
    up.sort((a, b) => (a.containers.size + a.starting) - (b.containers.size + b.starting))
    let last: Error | undefined
    for (const s of up) {
      try {
        return await this.startOn(s, req, spec)
      } catch (err) {
        // An engine that cannot be reached counts a failed ping; the next one is tried.
        if (!(err instanceof EngineError) || !err.unreachable) throw err
        this.failed(s, err)
        last = err
      }
    }
    throw last ?? new DriverError('BATON_ERR_DOCKER_NO_ENGINE', 'no engine')
  }

  private async startOn (s: EngineSlot, req: StartRequest, spec: DockerSpec): Promise<Container> {
    const host = spec.network === 'host'
    const fields = { pool: this.pool, instance: req.id, version: req.revision.version }
    s.starting++
    const t0 = Date.now()
    let port: number | undefined
    let id: string | undefined
    try {
      port = host ? await this.allocate() : spec.port
      if (port === undefined) throw new DriverError('BATON_ERR_DOCKER_SPEC', `pool ${this.pool}: docker.port is required with network: bridge`)
      const vars = { port, version: req.revision.version }
      const image = substitute(spec.image, vars)
      const env = [
        ...Object.entries(spec.env).map(([k, v]) => `${k}=${substitute(v, vars)}`),
        `BATON_POOL=${this.pool}`,
        `BATON_INSTANCE=${req.id}`
      ]
      const labels: Record<string, string> = {
        [LABELS.pool]: this.pool,
        [LABELS.revision]: String(req.revision.number),
        [LABELS.instance]: req.id,
        [LABELS.spec]: specKey(req.revision),
        [LABELS.version]: req.revision.version,
        ...(host ? { [LABELS.port]: String(port) } : {})
      }
      const portKey = `${port}/tcp`
      id = await s.engine.create(`baton-${req.id}`, {
        Image: image,
        Env: env,
        Labels: labels,
        ...(host ? {} : { ExposedPorts: { [portKey]: {} } }),
        HostConfig: {
          NetworkMode: host ? 'host' : 'bridge',
          Init: spec.init,
          RestartPolicy: { Name: 'no' },
          // A free host port, chosen by the engine: on loopback for a local engine.
          ...(host ? {} : { PortBindings: { [portKey]: [{ HostIp: s.engine.local ? '127.0.0.1' : '0.0.0.0', HostPort: '' }] } })
        }
      })
      await s.engine.start(id)
      const info = await s.engine.inspect(id)
      const address = host ? port : publishedPort(info)
      if (address === undefined) throw new DriverError('BATON_ERR_DOCKER_PORT', `container ${short(id)} has no published port for ${portKey}`)
      const c = this.track(s, id, address, fields, host ? port : undefined)
      c.watch()
      log('info', 'instance container started', { ...fields, engine: s.engine.url, container: short(id), image, address: `${c.host}:${c.port}`, ms: Date.now() - t0 })
      return c
    } catch (err) {
      if (host && port !== undefined) this.ports.release(port)
      if (id !== undefined) {
        const created = id
        void s.engine.remove(created).catch((e: Error) => {
          if (e instanceof EngineError && e.unreachable) s.toRemove.add(created)
          else log('warn', 'could not remove a container that failed to start', { ...fields, container: short(created), error: e.message })
        })
      }
      throw err
    } finally {
      s.starting--
    }
  }

  /** A free port of the range for host networking, skipping those adopted containers hold. */
  private async allocate (): Promise<number> {
    for (;;) {
      const port = await this.ports.allocate()
      // Left taken in the allocator: the adopted container holds it until it is gone.
      if (!this.heldPorts.has(port)) return port
    }
  }

  private track (s: EngineSlot, id: string, port: number, fields: Record<string, unknown>, hostPort: number | undefined): Container {
    const c = new Container({
      engine: s.engine,
      id,
      host: s.engine.host,
      port,
      fields,
      engineDown: () => !s.up,
      onGone: gone => {
        s.containers.delete(gone)
        if (hostPort !== undefined) { this.heldPorts.delete(hostPort); this.ports.release(hostPort) }
      },
      onRemoveFailed: failed => { s.toRemove.add(failed.id) }
    })
    s.containers.add(c)
    return c
  }

  /**
   * Containers of this pool an earlier baton left, on every engine: running
   * ones are handed to the pool (adopted, or stopped when their spec is not
   * the current one); stopped ones are removed.
   */
  async discover (): Promise<DiscoveredInstance[]> {
    const found: DiscoveredInstance[] = []
    await Promise.all([...this.engines.values()].map(async s => {
      let list
      try {
        list = await s.engine.list({ [LABELS.pool]: this.pool })
      } catch (err) {
        log('warn', 'could not list the containers of an earlier run', { pool: this.pool, engine: s.engine.url, error: (err as Error).message })
        s.sweep = true
        return
      }
      for (const summary of list) {
        const labels = summary.Labels ?? {}
        const instance = labels[LABELS.instance] ?? summary.Names[0]?.replace(/^\//, '') ?? summary.Id
        const fields = { pool: this.pool, instance, version: labels[LABELS.version] }
        const info = summary.State === 'running' ? await s.engine.inspect(summary.Id).catch(() => undefined) : undefined
        const hostPort = labels[LABELS.port] === undefined ? undefined : Number(labels[LABELS.port])
        const port = info === undefined ? undefined : info.HostConfig.NetworkMode === 'host' ? hostPort : publishedPort(info)
        if (info === undefined || !info.State.Running || port === undefined || !Number.isInteger(port)) {
          log('info', 'removing a stopped container left by an earlier run', { ...fields, engine: s.engine.url, container: short(summary.Id), state: summary.State })
          await s.engine.remove(summary.Id).catch((err: Error) => log('warn', 'could not remove a container', { ...fields, container: short(summary.Id), error: err.message }))
          continue
        }
        if (hostPort !== undefined) this.heldPorts.add(hostPort)
        const c = this.track(s, summary.Id, port, fields, hostPort)
        c.watch({ tail: 0 })
        found.push({ id: instance, specKey: labels[LABELS.spec] ?? '', handle: c })
      }
    }))
    return found
  }

  /**
   * Stops the pings and the long polls. Containers still held (the pool
   * stopped its instances; these are leftovers being removed, or starts that
   * finished too late) are stopped the pool's way: its stopSignal, then
   * SIGKILL after its stopTimeout.
   */
  async close (stop: StopSpec): Promise<void> {
    if (this.closed) return
    this.closed = true
    const left = [...this.engines.values()].flatMap(s => [...s.containers])
    await Promise.all(left.map(async c => await c.stop(stop.signal, stop.timeoutMs)))
    for (const s of this.engines.values()) {
      clearInterval(s.timer)
      for (const c of s.containers) c.detach()
      await s.engine.close()
    }
  }

  private slot (entry: EngineEntry, specTls: EngineTls | undefined): EngineSlot {
    const url = typeof entry === 'string' ? entry : entry.url
    const existing = this.engines.get(url)
    if (existing !== undefined) return existing
    const tls = url.startsWith('tcp://') ? (typeof entry === 'string' ? undefined : entry.tls) ?? specTls : undefined
    const s: EngineSlot = {
      engine: new Engine(url, tls),
      up: true,
      failures: 0,
      lastError: '',
      containers: new Set(),
      starting: 0,
      toRemove: new Set(),
      sweep: false,
      pinging: false,
      timer: setInterval(() => { void this.ping(s) }, PING_EVERY)
    }
    s.timer.unref()
    this.engines.set(url, s)
    void this.ping(s)
    return s
  }

  private async ping (s: EngineSlot): Promise<void> {
    if (s.pinging || this.closed) return
    s.pinging = true
    try {
      await s.engine.ping()
      s.failures = 0
      if (!s.up) {
        s.up = true
        log('info', 'docker engine answers again', { pool: this.pool, engine: s.engine.url, toRemove: s.toRemove.size })
      }
      // Not while a start is under way there: its container is not followed yet.
      if (s.sweep && s.starting === 0) {
        s.sweep = false
        await this.sweep(s).catch(() => { s.sweep = true })
      }
      for (const id of [...s.toRemove]) {
        await s.engine.remove(id).then(() => s.toRemove.delete(id), (err: Error) => {
          if (!(err instanceof EngineError && err.unreachable)) s.toRemove.delete(id)
        })
      }
    } catch (err) {
      if (!this.closed) this.failed(s, err as Error)
    } finally {
      s.pinging = false
    }
  }

  private async sweep (s: EngineSlot): Promise<void> {
    const followed = new Set([...s.containers].map(c => c.id))
    for (const c of await s.engine.list({ [LABELS.pool]: this.pool })) {
      if (followed.has(c.Id)) continue
      log('info', 'removing a container of this pool that baton does not follow', { pool: this.pool, engine: s.engine.url, container: short(c.Id), instance: c.Labels?.[LABELS.instance] })
      await s.engine.remove(c.Id)
      s.toRemove.delete(c.Id)
    }
  }

  private failed (s: EngineSlot, err: Error): void {
    s.failures++
    s.lastError = err.message
    if (!s.up || s.failures < DOWN_AFTER) return
    s.up = false
    s.sweep = true
    log('warn', 'docker engine down: its containers are replaced on the other engines', {
      pool: this.pool, engine: s.engine.url, error: err.message, containers: s.containers.size
    })
    for (const c of [...s.containers]) c.lost(`its engine ${s.engine.url} is down`)
  }
}

/** The host port the engine published the container's port on (bridge networking). */
function publishedPort (info: ContainerInfo): number | undefined {
  for (const bindings of Object.values(info.NetworkSettings.Ports ?? {})) {
    const hostPort = bindings?.find(b => b.HostPort !== '')?.HostPort
    if (hostPort !== undefined) return Number(hostPort)
  }
  return undefined
}
