import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { createInterface } from 'node:readline'

/** Every process a test starts, so none outlives the test run. */
const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.pid !== undefined) { try { process.kill(c.pid, 'SIGKILL') } catch { /* already gone */ } }
})

/** A stdout line: the object when it is JSON (baton's log), else `{ text }`. */
export interface Line { text?: string, msg?: unknown, [key: string]: unknown }

export interface Proc {
  child: ChildProcess
  pid: number
  /** Every stdout line so far. */
  lines: string[]
  stderr: string[]
  /** Resolves with the first stdout line that `pred` accepts. */
  waitLine: (pred: (line: Line) => boolean, timeoutMs?: number) => Promise<Line>
  exited: Promise<number | null>
  kill: (signal?: NodeJS.Signals) => Promise<number | null>
}

export function startProc (cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  children.add(child)
  const lines: string[] = []
  const stderr: string[] = []
  const waiters: Array<{ pred: (l: Line) => boolean, resolve: (l: Line) => void }> = []
  const parse = (l: string): Line => {
    try {
      const v: unknown = JSON.parse(l)
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Line
    } catch { /* not JSON */ }
    return { text: l }
  }
  createInterface({ input: child.stdout! }).on('line', l => {
    lines.push(l)
    const v = parse(l)
    for (const w of [...waiters]) {
      if (w.pred(v)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(v) }
    }
  })
  createInterface({ input: child.stderr! }).on('line', l => stderr.push(l))
  const exited = new Promise<number | null>(resolve => child.once('close', (code, sig) => {
    children.delete(child)
    resolve(code ?? (sig !== null ? -1 : null))
  }))
  const waitLine = async (pred: (l: Line) => boolean, timeoutMs = 20_000): Promise<Line> => {
    for (const l of lines) { const v = parse(l); if (pred(v)) return v }
    return await new Promise((resolve, reject) => {
      const w = { pred, resolve: (v: Line) => { clearTimeout(t); resolve(v) } }
      const t = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1)
        reject(new Error(`timed out waiting for a line from ${cmd} ${args.join(' ')}\nstdout:\n${lines.slice(-30).join('\n')}\nstderr:\n${stderr.slice(-30).join('\n')}`))
      }, timeoutMs)
      waiters.push(w)
      void exited.then(code => {
        if (waiters.includes(w)) {
          clearTimeout(t)
          waiters.splice(waiters.indexOf(w), 1)
          reject(new Error(`process exited (${String(code)}) before the line came\nstdout:\n${lines.slice(-30).join('\n')}\nstderr:\n${stderr.slice(-30).join('\n')}`))
        }
      })
    })
  }
  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    return await exited
  }
  return { child, pid: child.pid!, lines, stderr, waitLine, exited, kill }
}
