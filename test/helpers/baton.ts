import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { startProc, type Proc } from './procs.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const CLI = join(ROOT, 'dist/cli/main.js')

export interface RunningBaton extends Proc {
  /** Ports of the listeners, in config order. */
  ports: number[]
  url: string
  adminUrl: string
  configFile: string
  dir: string
  /** SIGKILL baton alone, leaving its instances running (tests of what a next start does). */
  killKeepingInstances: () => Promise<number | null>
  /** The proxy worker processes alive now (they hold the client connections; the supervisor is `pid`). */
  workerPids: () => number[]
}

/**
 * `BATON_TEST_WORKERS=2 npm test` (npm run test:workers2) runs the suites
 * with that many proxy workers: every config a test writes gets `workers:`
 * unless it sets its own.
 */
export const TEST_WORKERS = process.env.BATON_TEST_WORKERS === undefined || process.env.BATON_TEST_WORKERS === ''
  ? undefined
  : Number(process.env.BATON_TEST_WORKERS)

function withTestWorkers (config: object | string): object | string {
  if (TEST_WORKERS === undefined) return config
  // Appended, so that the line numbers of what the test wrote stay as they are.
  if (typeof config === 'string') return /^workers:/m.test(config) ? config : `${config}\nworkers: ${TEST_WORKERS}\n`
  return 'workers' in config ? config : { workers: TEST_WORKERS, ...config }
}

/** Writes a config (object or YAML text) to a fresh temp folder. */
export function writeConfig (config: object | string, dir = mkdtempSync(join(tmpdir(), 'baton-test-'))): string {
  const file = join(dir, 'baton.yaml')
  const c = withTestWorkers(config)
  writeFileSync(file, typeof c === 'string' ? c : stringify(c))
  return file
}

/**
 * Starts a real baton process with the config and resolves once it logged
 * `baton started` (listeners open, pools ready). Listen on port 0 and admin on
 * 127.0.0.1:0 to get ports from the OS.
 */
export async function startBaton (config: object | string, opts: { env?: Record<string, string>, cwd?: string, timeoutMs?: number, dir?: string, cli?: string } = {}): Promise<RunningBaton> {
  const configFile = writeConfig(config, opts.dir)
  const dir = join(configFile, '..')
  const proc = startProc(process.execPath, [opts.cli ?? CLI, 'start', '-c', configFile], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env }
  })
  // However a test ends baton (SIGKILL included), its instances go too.
  const kill = proc.kill
  proc.kill = async (signal?: NodeJS.Signals) => {
    const code = await kill(signal)
    killLeftInstances(configFile)
    return code
  }
  let started
  try {
    started = await proc.waitLine(l => l?.msg === 'baton started', opts.timeoutMs ?? 30_000)
  } catch (err) {
    await proc.kill('SIGKILL')
    throw err
  }
  const ports = (started.listeners as Array<{ port: number }>).map(l => l.port)
  const admin = started.admin as { port: number }
  return Object.assign(proc, {
    ports,
    url: `http://127.0.0.1:${ports[0]}`,
    adminUrl: `http://127.0.0.1:${admin.port}`,
    configFile,
    dir,
    killKeepingInstances: async () => await kill('SIGKILL'),
    workerPids: () => workerPidsOf(proc.lines)
  })
}

/** Pids of the workers baton logged as started that still run (not zombies). */
export function workerPidsOf (lines: string[]): number[] {
  const pids: number[] = []
  for (const l of lines) {
    if (!l.includes('"msg":"worker started"')) continue
    const pid = (JSON.parse(l) as { pid: number }).pid
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z') pids.push(pid)
    } catch { /* gone */ }
  }
  return pids
}

/** Runs the CLI to completion; resolves with its exit code and output. */
export async function runCli (args: string[], opts: { env?: Record<string, string>, cwd?: string } = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const proc = startProc(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env } })
  const code = await proc.exited
  return { code, stdout: proc.lines.join('\n'), stderr: proc.stderr.join('\n') }
}

/**
 * Kills the process groups of the instances a baton's state file lists (the
 * file baton keeps for this very case), checking that each pid still carries
 * its instance id.
 */
export function killLeftInstances (configFile: string): void {
  const key = createHash('sha256').update(resolve(configFile)).digest('hex').slice(0, 16)
  let entries: Array<{ id: string, pid: number }> = []
  try {
    entries = JSON.parse(readFileSync(join(process.env.BATON_STATE_DIR ?? tmpdir(), `baton-state-${key}.json`), 'utf8')).instances ?? []
  } catch {
    return
  }
  for (const e of entries) {
    try {
      if (!readFileSync(`/proc/${e.pid}/environ`, 'latin1').split('\0').includes(`BATON_INSTANCE=${e.id}`)) continue
      process.kill(-e.pid, 'SIGKILL')
    } catch { /* gone already */ }
  }
}
