import { signalGroup, spawnInstance, type SpawnedProcess } from '../driver/spawn.js'
import { log } from '../log.js'
import type { InstanceExit, InstanceRecord, SpawnRequest } from './protocol.js'
import type { StateFile } from './state-file.js'

/** An exited instance's process group may still be signalled this long (children it left). */
const GROUP_KEPT_MS = 60_000
/** How often a stop of every instance looks whether they are gone. */
const STOP_POLL_MS = 50

interface Entry { record: InstanceRecord, proc: SpawnedProcess }

/**
 * The app instances of process pools, run by the supervisor for the
 * controller (which decides; this only does): spawned, signalled, their
 * output logged, their exits reported with their last lines. They live
 * here, not in a controller, so that a controller that exits (an upgrade,
 * a crash) leaves them running and their output still read; the next
 * controller adopts them from `list`. The state file follows every change,
 * so that a `baton start` after a SIGKILL of the supervisor finds them.
 */
export class InstanceRegistry {
  private readonly running = new Map<string, Entry>()
  /** Exited instances' pids by id, for a last SIGKILL of their group. */
  private readonly gone = new Map<string, { pid: number, until: number }>()

  constructor (private readonly stateFile: StateFile, private readonly onExit: (exit: InstanceExit) => void) {}

  spawn (req: SpawnRequest): { pid: number | null } {
    if (this.running.has(req.id)) throw new Error(`instance ${req.id} runs already`)
    const env = { ...req.env, BATON_INSTANCE: req.id, BATON_POOL: req.pool }
    const proc = spawnInstance({ pool: req.pool, id: req.id, version: req.version, argv: req.argv, cwd: req.cwd, env, port: req.port })
    const record: InstanceRecord = { pool: req.pool, id: req.id, version: req.version, revision: req.revision, specKey: req.specKey, port: req.port, pid: proc.pid }
    this.running.set(req.id, { record, proc })
    this.save()
    void proc.ended.then(exit => {
      this.running.delete(req.id)
      if (proc.pid !== null) this.gone.set(req.id, { pid: proc.pid, until: Date.now() + GROUP_KEPT_MS })
      this.save()
      this.onExit({ id: req.id, ...exit })
    })
    return { pid: proc.pid }
  }

  /** The running instances of a pool (all pools without one). */
  list (pool?: string): InstanceRecord[] {
    return [...this.running.values()].filter(e => pool === undefined || e.record.pool === pool).map(e => e.record)
  }

  /** Signals an instance's process group: only instances this supervisor runs (or ran a moment ago). */
  signal (id: string, signal: NodeJS.Signals): void {
    const now = Date.now()
    for (const [k, g] of this.gone) if (g.until < now) this.gone.delete(k)
    const pid = this.running.get(id)?.record.pid ?? this.gone.get(id)?.pid
    if (pid === undefined || pid === null) return
    signalGroup(pid, signal)
  }

  /**
   * Stops whatever still runs (no controller did: it crashed, or baton was
   * stopped while it was away): SIGTERM, then SIGKILL after `timeoutMs`.
   */
  async stopAll (timeoutMs: number): Promise<void> {
    const left = [...this.running.values()]
    if (left.length === 0) return
    log('warn', 'stopping instances no controller stopped', { instances: left.map(e => e.record.id) })
    for (const e of left) if (e.record.pid !== null) signalGroup(e.record.pid, 'SIGTERM')
    const until = Date.now() + timeoutMs
    while (left.some(e => !e.proc.exited) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, STOP_POLL_MS))
    for (const e of left) if (e.record.pid !== null) signalGroup(e.record.pid, 'SIGKILL')
    await Promise.all(left.map(async e => await e.proc.ended))
  }

  private save (): void {
    this.stateFile.write([...this.running.values()].flatMap(({ record: r }) =>
      r.pid === null ? [] : [{ pool: r.pool, id: r.id, pid: r.pid, port: r.port, version: r.version }]))
  }
}
