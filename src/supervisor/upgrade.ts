import { execFile } from 'node:child_process'
import { BatonError } from '../errors.js'
import { log } from '../log.js'
import type { RemoteError } from './channel.js'
import { CLI_MAIN, describeExit, errorLine, type ControllerProc, type WorkerProc } from './children.js'
import type { UpgradeEvent, UpgradePhase, UpgradeStarted } from './protocol.js'
import type { Supervisor } from './supervisor.js'

/** `baton check` of the installed code gets this long. */
const CHECK_TIMEOUT_MS = 30_000
/** After upgrade.drainTimeout, an old process that has not exited is killed this much later. */
const EXIT_MARGIN_MS = 10_000

export type UpgradeErrorCode =
  | 'BATON_ERR_UPGRADE_RUNNING' // one upgrade at a time (409)
  | 'BATON_ERR_UPGRADE_ROLLOUT' // a rollout runs (409)
  | 'BATON_ERR_UPGRADE_CONFIG' // the config file has errors (400)
  | 'BATON_ERR_UPGRADE_BROKEN' // the installed code cannot even check the config (500)
  | 'BATON_ERR_UPGRADE_NO_CONTROLLER' // no controller serves right now (409)

/** An upgrade refused before it began; nothing changed. */
export class UpgradeError extends BatonError<UpgradeErrorCode> {
  constructor (code: UpgradeErrorCode, message: string, readonly details: string[] = []) {
    super(code, message)
  }
}

/** Why an upgrade that began failed; the old generation serves on. */
class Abort extends Error {}

interface Run {
  id: number
  from: number
  to: number
  next?: ControllerProc
  workers: WorkerProc[]
  timer?: NodeJS.Timeout
  failed?: string
}

/**
 * Upgrading baton itself (README "Upgrading baton"), a state machine
 * run by the supervisor: checking → controller (a controller of the code on
 * disk adopts every instance) → workers (new workers accept on the same
 * sockets) → serving (the old workers drain, the old controller retires)
 * → done; or failed, with the old generation never having stopped serving.
 * `POST /v1/upgrade`, `baton upgrade` and SIGUSR2 all come here.
 */
export class Upgrader {
  private run: Run | undefined
  private nextId = 1

  constructor (private readonly sup: Supervisor) {}

  get running (): boolean { return this.run !== undefined }

  /**
   * Checks what can be checked at once (one upgrade at a time, no rollout
   * running, the config file valid for the installed code) and starts the
   * upgrade; throws UpgradeError, and nothing changed, when it cannot begin.
   */
  async begin (by: string): Promise<UpgradeStarted> {
    const sup = this.sup
    if (this.run !== undefined) throw new UpgradeError('BATON_ERR_UPGRADE_RUNNING', `an upgrade of baton is under way (generation ${this.run.from} → ${this.run.to}): one at a time`)
    const current = sup.current
    if (current === undefined) throw new UpgradeError('BATON_ERR_UPGRADE_NO_CONTROLLER', 'no controller serves right now (one is being restarted): try again in a moment')
    const run: Run = { id: this.nextId++, from: sup.generation, to: sup.generation + 1, workers: [] }
    this.run = run
    try {
      const rollouts = await current.link.call('rollouts', {})
      if (rollouts.length > 0) throw new UpgradeError('BATON_ERR_UPGRADE_ROLLOUT', `a rollout is in progress (${rollouts.join(', ')}): upgrade baton once it has finished`)
      await this.checkConfig()
    } catch (err) {
      this.run = undefined
      if (err instanceof UpgradeError) log('warn', 'upgrade refused; nothing changed', { by, reason: err.message, problems: err.details.length > 0 ? err.details : undefined })
      throw err
    }
    const settings = sup.settings.upgrade
    log('info', 'upgrade of baton begins', { by, from: run.from, to: run.to })
    this.emit(run, 'checking', `config ${sup.config.file} checked with the installed code; starting generation ${run.to}`)
    void this.advance(run, current)
    return { id: run.id, from: run.from, to: run.to, timeoutMs: settings.timeout, drainTimeoutMs: settings.drainTimeout }
  }

  /**
   * `baton check` with the code installed on disk now (the new
   * generation's code): config problems refuse the upgrade (400); a check
   * that cannot run at all means a broken install (500).
   */
  private async checkConfig (): Promise<void> {
    const file = this.sup.config.file
    const r = await new Promise<{ code: number | null, stdout: string, stderr: string }>(resolve => {
      execFile(process.execPath, [CLI_MAIN, 'check', '-c', file], { timeout: CHECK_TIMEOUT_MS, encoding: 'utf8' }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : null
        resolve({ code, stdout, stderr })
      })
    })
    if (r.code === 0 && r.stdout.trim() === 'ok') return
    const problems = r.stdout.split('\n').filter(l => /^.+:\d+:\d+ /.test(l))
    if (r.code === 1 && problems.length > 0) {
      throw new UpgradeError('BATON_ERR_UPGRADE_CONFIG', `the config file has ${problems.length} error(s); nothing was changed`, problems)
    }
    const why = firstLine(r.stderr) ?? firstLine(r.stdout) ?? `exit code ${String(r.code)}`
    throw new UpgradeError('BATON_ERR_UPGRADE_BROKEN', `the installed baton cannot run (\`baton check\` failed: ${why}); nothing was changed`)
  }

  private async advance (run: Run, old: ControllerProc): Promise<void> {
    const sup = this.sup
    const settings = sup.settings.upgrade
    try {
      const state = await old.link.call('freeze', {}).catch((err: RemoteError) => { throw new Abort(err.message) })
      const deadline = new Promise<never>((_resolve, reject) => {
        run.timer = setTimeout(() => reject(new Abort(`generation ${run.to} was not serving within upgrade.timeout (${settings.timeout} ms)`)), settings.timeout)
      })
      deadline.catch(() => undefined)

      if (sup.isStopping) throw new Abort('baton is stopping')
      this.emit(run, 'controller', `a controller of generation ${run.to} adopts the running instances`)
      const next = sup.startController({ generation: run.to, state, hold: true }, false)
      run.next = next
      const nextSettings = await Promise.race([next.ready.catch((err: Error) => { throw new Abort(`the new controller failed: ${err.message}`) }), deadline])

      if (sup.isStopping) throw new Abort('baton is stopping')
      this.emit(run, 'workers', `${nextSettings.workers} worker(s) of generation ${run.to} start on the same sockets`)
      const starting = sup.startWorkers(nextSettings.workers, run.to, w => run.workers.push(w))
      const workers = await Promise.race([starting, deadline])
      const dead = workers.find(w => !w.alive)
      if (dead !== undefined) {
        const why = errorLine(dead.stderr)
        throw new Abort(`a new worker exited as it started (${describeExit(await dead.exited)})${why === undefined ? '' : `: ${why}`}`)
      }
      if (!next.alive) throw new Abort('the new controller exited')
      if (sup.isStopping) throw new Abort('baton is stopping')
      clearTimeout(run.timer)
      this.commit(run, old, next, nextSettings.upgrade.drainTimeout)
    } catch (err) {
      this.fail(run, old, err instanceof Abort ? err.message : `unexpected: ${(err as Error).message}`)
    }
  }

  /** The new generation serves: the old one stops accepting, drains and exits. */
  private commit (run: Run, old: ControllerProc, next: ControllerProc, drainTimeoutMs: number): void {
    const sup = this.sup
    const olds = [...sup.workers.values()].filter(w => w.generation < run.to && w.state === 'serving')
    // An old one still starting (a replacement) has no connection yet: it just goes.
    for (const w of sup.workers.values()) if (w.generation < run.to && w.state === 'starting') { w.state = 'draining'; w.child.kill('SIGKILL') }
    sup.generation = run.to
    if (next.settings !== undefined) sup.settings = next.settings
    sup.makeServing(next)
    sup.giveAdmin(next)
    old.retiring = true
    this.emit(run, 'serving', `generation ${run.to} serves; generation ${run.from} finishes its requests (WebSockets up to ${drainTimeoutMs} ms)`)
    old.link.send({ type: 'retire' })
    for (const w of olds) {
      w.state = 'draining'
      w.link.send({ type: 'drain', drainTimeoutMs })
    }
    sup.announceWorkers()
    const bound = drainTimeoutMs + EXIT_MARGIN_MS
    void Promise.all([...olds.map(w => exitWithin(w, bound)), exitWithin(old, bound)]).then(() => {
      this.emit(run, 'done', `generation ${run.from} has exited; generation ${run.to} serves alone`)
      log('info', 'upgrade of baton done', { from: run.from, to: run.to, controller: next.pid, workers: [...sup.workers.values()].filter(w => w.generation === run.to).map(w => w.pid) })
      this.run = undefined
    })
  }

  /** The new generation goes; the old one, which never stopped serving, carries on. */
  private fail (run: Run, old: ControllerProc, reason: string): void {
    clearTimeout(run.timer)
    const sup = this.sup
    for (const w of run.workers) {
      // One that accepted already may hold connections: it drains like an old one.
      if (w.state === 'serving') { w.state = 'draining'; w.link.send({ type: 'drain', drainTimeoutMs: sup.settings.upgrade.drainTimeout }) } else { w.state = 'draining'; w.child.kill('SIGKILL') }
    }
    sup.announceWorkers()
    if (run.next !== undefined) { run.next.retiring = true; run.next.child.kill('SIGKILL') }
    if (old.alive) void old.link.call('thaw', {}).catch(() => undefined)
    log('error', 'upgrade of baton failed; the running generation serves on', { from: run.from, to: run.to, reason })
    this.emit(run, 'failed', `upgrade failed: ${reason}`, reason)
    this.run = undefined
  }

  private emit (run: Run, phase: UpgradePhase, message: string, reason?: string): void {
    const event: UpgradeEvent = { type: 'upgrade', id: run.id, phase, message, from: run.from, to: run.to, at: new Date().toISOString(), ...(reason === undefined ? {} : { reason }) }
    const status = this.sup.upgradeStatus
    const over = phase === 'done' || phase === 'failed'
    this.sup.upgradeStatus = { generation: this.sup.generation, running: over ? null : event, last: over ? event : status.last }
    if (!over) log('info', 'upgrade', { phase, message })
    for (const c of this.sup.controllers) c.link.send({ type: 'upgrade-event', event })
  }
}

async function exitWithin (p: WorkerProc | ControllerProc, ms: number): Promise<void> {
  const t = setTimeout(() => p.child.kill('SIGKILL'), ms)
  await p.exited
  clearTimeout(t)
}

function firstLine (text: string): string | undefined {
  const line = text.split('\n').map(l => l.trim()).find(l => l !== '')
  return line === undefined ? undefined : line.slice(0, 300)
}
