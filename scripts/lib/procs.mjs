// Child processes and temp folders of the scripts (bench, profile, compare):
// every process they start is remembered and stopped by its PID (or, for
// process groups such as baton's detached instances, by -PID), every temp
// folder removed, also after Ctrl-C or an error.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const HOST = '127.0.0.1'

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** Running children: name → proc. */
const children = new Set()
/** PIDs (or -PGIDs) to SIGKILL at the very end if they still run. */
const strayPids = new Set()
/** Synchronous last-resort cleanups (pm2 kill), keyed by a name. */
const syncCleanups = new Map()
const tempDirs = new Set()

export function alive (pid) {
  try { process.kill(pid, 0); return true } catch { return false }
}

export function rememberPid (pid) { strayPids.add(pid) }
export function forgetPid (pid) { strayPids.delete(pid) }

export function onCleanup (name, fn) { syncCleanups.set(name, fn) }
export function offCleanup (name) { syncCleanups.delete(name) }

export function tempDir (prefix) {
  // Short paths: pm2 puts unix sockets in its PM2_HOME.
  const dir = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

export function removeTempDir (dir) {
  rmSync(dir, { recursive: true, force: true })
  tempDirs.delete(dir)
}

/**
 * Spawns a child with stdout/stderr piped and always drained. `onLine(line)`
 * sees every stdout line; `waitLine(pred)` resolves with the first line
 * (parsed as JSON when it is JSON) that pred accepts.
 */
export function spawnChild (name, cmd, args, opts = {}) {
  const { onLine, ...spawnOpts } = opts
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT, ...spawnOpts })
  const proc = { name, child, pid: child.pid, lines: [], stderr: [], exitCode: undefined, waiters: [] }
  children.add(proc)
  const parse = l => { try { return JSON.parse(l) } catch { return l } }
  const keep = (arr, l) => { arr.push(l); if (arr.length > 300) arr.splice(0, arr.length - 300) }
  createInterface({ input: child.stdout }).on('line', l => {
    keep(proc.lines, l)
    const v = parse(l)
    if (onLine !== undefined) onLine(v)
    for (const w of [...proc.waiters]) if (w.pred(v)) { proc.waiters.splice(proc.waiters.indexOf(w), 1); w.resolve(v) }
  })
  createInterface({ input: child.stderr }).on('line', l => keep(proc.stderr, l))
  proc.exited = new Promise(resolve => {
    child.once('error', err => { keep(proc.stderr, String(err)); proc.exitCode = -1; children.delete(proc); resolve(-1) })
    child.once('close', (code, signal) => {
      proc.exitCode = code ?? (signal !== null ? -1 : null)
      proc.signal = signal
      children.delete(proc)
      resolve(proc.exitCode)
    })
  })
  proc.tail = () => `stdout:\n${proc.lines.slice(-20).join('\n')}\nstderr:\n${proc.stderr.slice(-20).join('\n')}`
  proc.waitLine = (pred, timeoutMs = 30_000) => {
    for (const l of proc.lines) { const v = parse(l); if (pred(v)) return Promise.resolve(v) }
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: v => { clearTimeout(t); resolve(v) } }
      const t = setTimeout(() => {
        proc.waiters.splice(proc.waiters.indexOf(w), 1)
        reject(new Error(`${name}: timed out waiting for its start line\n${proc.tail()}`))
      }, timeoutMs)
      proc.waiters.push(w)
      void proc.exited.then(code => {
        if (!proc.waiters.includes(w)) return
        clearTimeout(t)
        proc.waiters.splice(proc.waiters.indexOf(w), 1)
        reject(new Error(`${name}: exited (${String(code)}) before it was ready\n${proc.tail()}`))
      })
    })
  }
  /** `signal`, then SIGKILL after `graceMs`; resolves with the exit code. */
  proc.stop = async (signal = 'SIGTERM', graceMs = 5_000) => {
    if (proc.exitCode !== undefined) return proc.exitCode
    try { process.kill(proc.pid, signal) } catch { /* gone already */ }
    const timer = setTimeout(() => { try { process.kill(proc.pid, 'SIGKILL') } catch { /* gone */ } }, graceMs)
    const code = await proc.exited
    clearTimeout(timer)
    return code
  }
  return proc
}

/** Runs a command to its end; resolves with { code, stdout, stderr, ms }. */
export async function run (cmd, args, opts = {}) {
  const started = performance.now()
  const p = spawnChild(`${cmd} ${args.join(' ')}`, cmd, args, opts)
  const code = await p.exited
  return { code, stdout: p.lines.join('\n'), stderr: p.stderr.join('\n'), ms: performance.now() - started }
}

function killStrays () {
  for (const pid of strayPids) {
    try { process.kill(pid, 'SIGKILL') } catch { /* gone */ }
  }
  strayPids.clear()
}

/** Stops everything we started: sync cleanups (pm2 kill), children by PID, strays, temp dirs. */
export async function stopAll () {
  for (const [name, fn] of syncCleanups) {
    try { fn() } catch (err) { process.stderr.write(`cleanup ${name} failed: ${err.message}\n`) }
  }
  syncCleanups.clear()
  await Promise.all([...children].map(async p => await p.stop('SIGTERM', 3_000)))
  killStrays()
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}

let installed = false
/** Ctrl-C, SIGTERM, an uncaught error or a plain exit: nothing we started outlives us. */
export function installCleanup (label = 'script') {
  if (installed) return
  installed = true
  let bailing = false
  const bail = (code, why) => {
    if (bailing) return
    bailing = true
    if (why !== undefined) process.stderr.write(`\n${label}: ${why}; stopping everything it started\n`)
    stopAll().finally(() => process.exit(code))
  }
  process.on('SIGINT', () => bail(130, 'interrupted'))
  process.on('SIGTERM', () => bail(143, 'terminated'))
  process.on('uncaughtException', err => { process.stderr.write(`${err.stack ?? err}\n`); bail(1) })
  process.on('unhandledRejection', err => { process.stderr.write(`${err?.stack ?? err}\n`); bail(1) })
  process.on('exit', () => {
    for (const [, fn] of syncCleanups) { try { fn() } catch { /* best effort */ } }
    for (const p of children) { try { process.kill(p.pid, 'SIGKILL') } catch { /* gone */ } }
    killStrays()
    for (const dir of tempDirs) { try { rmSync(dir, { recursive: true, force: true }) } catch { /* best effort */ } }
  })
}

/** A port that was free a moment ago. */
export async function freePort () {
  return await new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, HOST, () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}
