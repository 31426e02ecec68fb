import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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
}

/** Writes a config (object or YAML text) to a fresh temp folder. */
export function writeConfig (config: object | string, dir = mkdtempSync(join(tmpdir(), 'baton-test-'))): string {
  const file = join(dir, 'baton.yaml')
  writeFileSync(file, typeof config === 'string' ? config : stringify(config))
  return file
}

/**
 * Starts a real baton process with the config and resolves once it logged
 * `baton started` (listeners open, pools ready). Listen on port 0 and admin on
 * 127.0.0.1:0 to get ports from the OS.
 */
export async function startBaton (config: object | string, opts: { env?: Record<string, string>, cwd?: string, timeoutMs?: number, dir?: string } = {}): Promise<RunningBaton> {
  const configFile = writeConfig(config, opts.dir)
  const dir = join(configFile, '..')
  const proc = startProc(process.execPath, [CLI, 'start', '-c', configFile], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env }
  })
  const started = await proc.waitLine(l => l?.msg === 'baton started', opts.timeoutMs ?? 30_000)
  const ports = (started.listeners as Array<{ port: number }>).map(l => l.port)
  return Object.assign(proc, {
    ports,
    url: `http://127.0.0.1:${ports[0]}`,
    adminUrl: `http://127.0.0.1:${started.admin.port as number}`,
    configFile,
    dir
  })
}

/** Runs the CLI to completion; resolves with its exit code and output. */
export async function runCli (args: string[], opts: { env?: Record<string, string>, cwd?: string } = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const proc = startProc(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env } })
  const code = await proc.exited
  return { code, stdout: proc.lines.join('\n'), stderr: proc.stderr.join('\n') }
}
