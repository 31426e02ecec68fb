import { createHash } from 'node:crypto'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { signalGroup } from '../driver/spawn.js'
import { log } from '../log.js'

/** How long leftovers get to exit on SIGTERM before SIGKILL. */
const LEFTOVER_STOP_MS = 5_000
/** How often a stopping leftover is checked (no event tells when another process group is gone). */
const LEFTOVER_POLL_MS = 50

export interface StateEntry { pool: string, id: string, pid: number, port: number, version: string }

/**
 * A small file of the instances this baton runs (pids and ports), rewritten on
 * every change. If baton dies by SIGKILL its instances live on in their own
 * process groups; the next `baton start` with the same config reads the file
 * and stops them, so nothing runs on forever unnoticed.
 */
export class StateFile {
  readonly path: string

  constructor (configFile: string, dir = process.env.BATON_STATE_DIR ?? tmpdir()) {
    const key = createHash('sha256').update(resolve(configFile)).digest('hex').slice(0, 16)
    this.path = join(dir, `baton-state-${key}.json`)
  }

  write (entries: StateEntry[]): void {
    const tmp = `${this.path}.${process.pid}.tmp`
    try {
      writeFileSync(tmp, JSON.stringify({ batonPid: process.pid, instances: entries }))
      renameSync(tmp, this.path)
    } catch (err) {
      log('warn', 'could not write the state file', { path: this.path, error: (err as Error).message })
    }
  }

  /** Stops the instances a previous run left behind; only processes that carry our instance id. */
  async stopLeftovers (timeoutMs = LEFTOVER_STOP_MS): Promise<number> {
    let entries: StateEntry[]
    try {
      entries = (JSON.parse(readFileSync(this.path, 'utf8')) as { instances: StateEntry[] }).instances ?? []
    } catch {
      return 0
    }
    const ours = entries.filter(e => isOurs(e))
    for (const e of ours) {
      log('warn', 'stopping an instance left by an earlier run', { pool: e.pool, instance: e.id, pid: e.pid, port: e.port })
      signalGroup(e.pid, 'SIGTERM')
    }
    const until = Date.now() + timeoutMs
    while (ours.some(alive) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, LEFTOVER_POLL_MS))
    for (const e of ours) if (alive(e)) signalGroup(e.pid, 'SIGKILL')
    this.write([])
    return ours.length
  }
}

function alive (e: StateEntry): boolean {
  try { process.kill(e.pid, 0); return isOurs(e) } catch { return false }
}

/** The pid is ours only if its environment names the instance (pids get reused). */
function isOurs (e: StateEntry): boolean {
  try {
    const env = readFileSync(`/proc/${e.pid}/environ`, 'latin1')
    return env.split('\0').includes(`BATON_INSTANCE=${e.id}`)
  } catch {
    return false
  }
}
