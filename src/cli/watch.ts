import type { RolloutReport } from '../rollout/report.js'
import { summarise } from './commands/report.js'
import { MultiBar, type SingleBar } from 'cli-progress'
import { CliError, type AdminClient } from './client.js'
import { formatElapsed } from './format.js'
import type { SseMessage } from './sse.js'
import { enc, isOver, revisionLabel, statusWords, stepWords, type PoolView, type RolloutView } from './views.js'

/** The fallback poll of the rollout when no event comes. */
const POLL_MS = 1_000
/** After an event, the poll waits this little so that a burst of events makes one poll. */
const EVENT_DEBOUNCE_MS = 25
/** Events written just before the end may still be on their way on the stream: this long is enough on loopback. */
const LAST_EVENTS_MS = 100
/** Polls failing in a row before the watch gives up on the admin API. */
const POLLS_LOST = 5
/** How often the bar redraws when forced on a stream that is not a terminal (tests). */
const FORCED_REDRAW_MS = 200

/** Instance states in the order an instance lives them: a report never moves one back. */
const RANK: Record<string, number> = { starting: 0, ready: 1, serving: 2, draining: 3, stopped: 4, failed: 4 }

interface Tracked { state: string, version: string, revision: number }

export interface WatchOptions {
  client: AdminClient
  /** A progress bar (true) or one plain line per step (false). */
  tty: boolean
  /** Force cli-progress to draw on a stream that is not a terminal (tests). */
  forceTty?: boolean
  out?: NodeJS.WriteStream
  /** The fallback poll of GET /v1/rollouts/ID; events wake it up sooner. */
  pollMs?: number
}

/**
 * Follows one rollout to its end. GET /v1/events is the fast path: every
 * event of the rollout or of its pool wakes a poll of GET /v1/rollouts/ID
 * (and the pool), which is the source of truth; the poll also runs on a
 * timer, so a lost stream only slows the display down. Shows a bar on a TTY
 * and one plain line per step otherwise.
 */
export class RolloutWatcher {
  private readonly client: AdminClient
  private readonly out: NodeJS.WriteStream
  private readonly pollMs: number
  private readonly abort = new AbortController()
  private readonly pending: SseMessage[] = []
  private view: RolloutView | undefined
  private readonly instances = new Map<string, Tracked>()
  private printed = 0
  private lastProgress = ''
  private batch = 0
  private failures = 0
  private t0 = Date.now()
  private wake: (() => void) | undefined
  private multi: MultiBar | undefined
  private bar: SingleBar | undefined

  constructor (private readonly opts: WatchOptions) {
    this.client = opts.client
    this.out = opts.out ?? process.stdout
    this.pollMs = opts.pollMs ?? POLL_MS
  }

  /**
   * Opens the event stream. Call it before starting the rollout so that no
   * event is missed; without it (an old baton, a proxy in between) the watch
   * falls back to polling alone.
   */
  async connect (): Promise<void> {
    let stream: AsyncIterable<SseMessage>
    try {
      stream = await this.client.events(this.abort.signal)
    } catch {
      return
    }
    void (async () => {
      try {
        for await (const m of stream) {
          if (this.view === undefined) this.pending.push(m)
          else this.onMessage(m)
        }
      } catch { /* the poll goes on; it reports a lost admin API */ }
    })()
  }

  /** Follows `start` (the rollout as POST answered it) until it is over; resolves with its last view. */
  async follow (start: RolloutView): Promise<RolloutView> {
    this.t0 = Date.now()
    // The pool's instances as they were: the old ones are not news.
    const pool = await this.client.call<PoolView>('watch', 'GET', `/v1/pools/${enc(start.pool)}`).catch(() => undefined)
    for (const i of pool?.instances ?? []) {
      if (i.revision !== start.toRevision) this.instances.set(i.id, { state: i.state, version: i.version, revision: i.revision })
    }
    this.begin(start)
    this.view = start
    for (const m of this.pending.splice(0)) this.onMessage(m)
    this.show(start)
    while (!isOver(this.view)) {
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, this.pollMs)
        this.wake = () => { clearTimeout(t); setTimeout(resolve, EVENT_DEBOUNCE_MS) }
      })
      this.wake = undefined
      await this.poll()
    }
    await new Promise(resolve => setTimeout(resolve, LAST_EVENTS_MS))
    this.end()
    return this.view
  }

  close (): void {
    this.abort.abort()
    this.multi?.stop()
    this.multi = undefined
  }

  private async poll (): Promise<void> {
    const v = this.view as RolloutView
    try {
      const [r, p] = await Promise.all([
        this.client.call<RolloutView>('watch', 'GET', `/v1/rollouts/${enc(v.id)}`),
        this.client.call<PoolView>('watch', 'GET', `/v1/pools/${enc(v.pool)}`).catch(() => undefined)
      ])
      this.failures = 0
      for (const i of p?.instances ?? []) this.onInstance(i.id, i.version, i.revision, i.state, i.failure ?? undefined)
      this.view = r
      this.show(r)
    } catch (err) {
      if (++this.failures >= POLLS_LOST) throw new CliError('BATON_ERR_CLI_LOST', `lost track of rollout ${v.id}: ${(err as Error).message}`)
    }
  }

  private onMessage (m: SseMessage): void {
    const v = this.view as RolloutView
    let e: Record<string, unknown>
    try {
      e = JSON.parse(m.data) as Record<string, unknown>
    } catch {
      return
    }
    if (e.pool !== v.pool) return
    if (m.event === 'rollout' || e.type === 'rollout') {
      if (e.rollout !== v.id) return
    } else if (m.event === 'instance' || e.type === 'instance') {
      this.onInstance(String(e.instance), String(e.version), Number(e.revision), String(e.state), typeof e.reason === 'string' ? e.reason : undefined)
    } else {
      return
    }
    this.wake?.()
  }

  /** Records an instance's new state (from an event or a poll) and counts batches of new instances. */
  private onInstance (id: string, version: string, revision: number, state: string, reason: string | undefined): void {
    const v = this.view as RolloutView
    const known = this.instances.get(id)
    if (known !== undefined && (RANK[state] ?? 0) <= (RANK[known.state] ?? 0)) return
    if (known === undefined && revision === v.toRevision) {
      // A new instance starting while none of its revision is still on its way up opens a batch.
      const climbing = [...this.instances.values()].some(t => t.revision === v.toRevision && (RANK[t.state] ?? 0) < RANK.serving)
      if (!climbing) this.batch++
    }
    this.instances.set(id, { state, version, revision })
    if (!this.opts.tty) this.line(`${id} (${version}): ${state}${reason === undefined ? '' : ` (${reason})`}`)
    this.bar?.update({ batch: this.batchLabel() })
  }

  private batchLabel (): string { return this.batch === 0 ? '-' : String(this.batch) }

  private begin (v: RolloutView): void {
    const what = `rollout ${v.id}: pool ${v.pool}, ${revisionLabel(v.fromRevision, v.fromVersion)} -> ${revisionLabel(v.toRevision, v.toVersion)}, ${v.total} instance(s)`
    if (!this.opts.tty) {
      this.line(what)
      return
    }
    const forced = this.opts.forceTty === true && this.out.isTTY !== true
    this.out.write(what + '\n')
    this.multi = new MultiBar({
      stream: this.out,
      format: '{pool} [{bar}] {value}/{total} updated | batch {batch} | {status}{steps} | {duration_formatted}',
      barsize: 30,
      hideCursor: !forced,
      clearOnComplete: false,
      stopOnComplete: false,
      gracefulExit: true,
      noTTYOutput: forced,
      notTTYSchedule: FORCED_REDRAW_MS
    })
    this.bar = this.multi.create(v.total, v.updated, { pool: v.pool, batch: this.batchLabel(), status: statusWords(v), steps: barSteps(v) })
  }

  /** Prints what is new in the view: its event messages and its progress. */
  private show (v: RolloutView): void {
    // The engine's own count of batches, where the API gives it, wins over ours.
    for (const b of v.report?.batches ?? []) if (b.batch > this.batch) this.batch = b.batch
    if (this.printed > v.events.length) this.printed = v.events.length // the server keeps the last 500
    // The first event is the "started" line, already said by begin().
    const fresh = v.events.slice(Math.max(this.printed, 1))
    this.printed = v.events.length
    for (const e of fresh) {
      if (this.multi !== undefined) this.multi.log(`${e.message}\n`)
      else this.line(e.message)
    }
    const steps = stepWords(v)
    const progress = `${v.updated}/${v.total} updated${steps === '' ? '' : `; ${steps}`}`
    if (this.bar !== undefined) {
      this.bar.setTotal(v.total)
      this.bar.update(v.updated, { batch: this.batchLabel(), status: statusWords(v), steps: barSteps(v) })
    } else if (progress !== this.lastProgress && !isOver(v)) {
      this.line(`progress: ${progress}${v.direction === 'back' ? ' (rolling back)' : ` (batch ${this.batchLabel()})`}`)
    }
    this.lastProgress = progress
  }

  private end (): void {
    if (this.multi !== undefined) {
      this.multi.update()
      this.multi.stop()
      this.multi = undefined
    }
  }

  private line (text: string): void {
    this.out.write(`[${formatElapsed(Date.now() - this.t0).padStart(6)}] ${text}\n`)
  }
}

/** The bar's step field: ` | step 2, 25% to v2`, or nothing for a rolling update. */
function barSteps (v: RolloutView): string {
  const words = stepWords(v)
  return words === '' ? '' : ` | ${words}`
}

/** How a watched rollout ended: a line on stdout and exit 0 on success, else a CliError (exit 1). */
export function report (v: RolloutView, startedAt: number, out: NodeJS.WriteStream = process.stdout): void {
  const took = formatElapsed(Date.now() - startedAt)
  // What the users saw, from baton's rollout report.
  if (v.report !== undefined && v.report !== null && 'phases' in v.report) out.write(summarise(v.report as RolloutReport) + '\n')
  if (v.status === 'succeeded') {
    out.write(`rollout ${v.id} succeeded in ${took}: pool ${v.pool} runs ${revisionLabel(v.toRevision, v.toVersion)} on ${v.total} instance(s)\n`)
    return
  }
  const back = v.status === 'rolled_back' || v.status === 'aborted' ? `; pool ${v.pool} runs ${revisionLabel(v.fromRevision, v.fromVersion)} again` : ''
  throw new CliError('BATON_ERR_CLI_ROLLOUT_FAILED', `rollout ${v.id} ${statusWords(v)} after ${took}${v.error === null ? '' : `: ${v.error}`}${back}`)
}

/** `--tty`, or BATON_FORCE_TTY=1, draws the bar even when stdout is not a terminal. */
export function wantsBar (opts: { tty?: boolean }, out: NodeJS.WriteStream = process.stdout): { tty: boolean, forceTty: boolean } {
  const forceTty = opts.tty === true || process.env.BATON_FORCE_TTY === '1'
  return { tty: forceTty || out.isTTY === true, forceTty }
}
