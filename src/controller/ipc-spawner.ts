import type { Launched, LaunchedExit, ProcessLaunch, Spawner } from '../driver/process.js'
import type { InstanceExit, SupervisorLink } from '../supervisor/protocol.js'

/** An exit reported before anyone asked for that instance is kept this long. */
const UNCLAIMED_MS = 10_000

/**
 * The process driver's spawner under `baton start`: the supervisor runs the
 * instances and reports their exits; this controller asks and listens.
 */
export class IpcSpawner implements Spawner {
  private readonly waiting = new Map<string, (e: LaunchedExit) => void>()
  private readonly unclaimed = new Map<string, { exit: LaunchedExit, at: number }>()

  constructor (private readonly supervisor: SupervisorLink) {}

  /** The supervisor reported an instance's exit. */
  exited (e: InstanceExit): void {
    const exit = { code: e.code, signal: e.signal, spawnFailed: e.spawnFailed, tail: e.tail }
    const w = this.waiting.get(e.id)
    if (w !== undefined) {
      this.waiting.delete(e.id)
      w(exit)
      return
    }
    const now = Date.now()
    for (const [id, u] of this.unclaimed) if (now - u.at > UNCLAIMED_MS) this.unclaimed.delete(id)
    this.unclaimed.set(e.id, { exit, at: now })
  }

  async spawn (l: ProcessLaunch): Promise<Launched> {
    const { pid } = await this.supervisor.call('spawn', l)
    return this.launched(l.id, pid, l.port, l.specKey)
  }

  async running (pool: string): Promise<Launched[]> {
    const list = await this.supervisor.call('instances', { pool })
    return list.map(r => this.launched(r.id, r.pid, r.port, r.specKey))
  }

  private launched (id: string, pid: number | null, port: number, specKey: string): Launched {
    const early = this.unclaimed.get(id)
    this.unclaimed.delete(id)
    const exited = early !== undefined
      ? Promise.resolve(early.exit)
      : new Promise<LaunchedExit>(resolve => this.waiting.set(id, resolve))
    return { id, pid, port, specKey, exited, signal: signal => { this.supervisor.send({ type: 'signal', id, signal }) } }
  }
}
