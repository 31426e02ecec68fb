// @ts-check
/**
 * One pool on the page: its instances, its current rollout with the buttons
 * that control it, its traffic chart and its past rollouts. Built once and
 * updated in place, so that a button keeps keyboard focus while the numbers
 * under it change every second.
 */
import { drawChart, formatRate, svg, swatch, TrafficHistory } from './chart.js'

/**
 * @typedef {{ id: string, version: string, revision: number, state: string, inflight: number,
 *   requests: number, failure?: string | null }} InstanceData
 * @typedef {{ name: string, kind?: string, version: string, revision: number, size: number,
 *   instances: InstanceData[], rollout: string | null, revisions?: Array<{ number: number }> }} PoolData
 * @typedef {{ id: string, pool: string, status: string, direction?: string, fromVersion?: string,
 *   toVersion?: string, fromRevision: number, toRevision: number, updated: number, total: number,
 *   startedAt: string, finishedAt: string | null, error: string | null, events?: Array<{ at: string, message: string }>,
 *   strategy?: string, step?: number, weight?: number, analysis?: StepAnalysis[] }} RolloutData
 * @typedef {{ requests: number, errorRate: number, p99: number | null }} RevisionNumbers
 * @typedef {{ step: number, verdict: string, reason: string, revisions: Record<string, RevisionNumbers>, from: number, to: number }} StepAnalysis
 * @typedef {{ control: (id: string, action: string) => Promise<void>, rollback: (pool: string) => Promise<void>,
 *   report: (id: string) => Promise<string> }} Actions
 * @typedef {import('./chart.js').SeriesStyles} SeriesStyles
 */

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | number | boolean | undefined>} [attrs]
 * @param {Array<Node | string>} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h (tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue
    el.setAttribute(k, v === true ? '' : String(v))
  }
  el.append(...children)
  return el
}

/** @param {string | null | undefined} iso */
const clock = iso => iso == null ? '' : new Date(iso).toLocaleTimeString('en-GB')

/** @param {number | null | undefined} seconds */
const ms = seconds => seconds == null ? '–' : `${(seconds * 1000).toFixed(seconds < 0.01 ? 1 : 0)} ms`

/**
 * A button that asks for a second press within 5 s before it acts (abort,
 * rollback: they undo work).
 * @param {HTMLButtonElement} button
 * @param {string} confirmText
 * @param {() => void} run
 */
function confirmable (button, confirmText, run) {
  const label = button.textContent ?? ''
  /** @type {number | undefined} */
  let timer
  const reset = () => { clearTimeout(timer); timer = undefined; button.textContent = label; button.classList.remove('armed') }
  button.addEventListener('click', () => {
    if (timer === undefined) {
      button.textContent = confirmText
      button.classList.add('armed')
      timer = window.setTimeout(reset, 5000)
      return
    }
    reset()
    run()
  })
  button.addEventListener('blur', reset)
}

/** A slug safe in an id attribute. @param {string} s */
const slug = s => s.replace(/[^A-Za-z0-9_-]/g, '_')

export class PoolView {
  /**
   * @param {string} name
   * @param {Actions} actions
   * @param {SeriesStyles} styles
   */
  constructor (name, actions, styles) {
    this.name = name
    this.actions = actions
    this.styles = styles
    this.history = new TrafficHistory()
    /** @type {RolloutData | null} */
    this.rollout = null
    /** @type {PoolData | null} */
    this.pool = null
    const id = `pool-${slug(name)}`

    this.meta = h('span', { class: 'meta' })
    this.rows = h('tbody')
    this.rolloutBox = h('div', { class: 'rollout', hidden: true, 'aria-labelledby': `${id}-rollout` })
    this.rolloutTitle = h('h3', { id: `${id}-rollout` })
    this.progress = h('progress', { max: 1, value: 0, 'aria-labelledby': `${id}-progress` })
    this.progressText = h('span', { id: `${id}-progress` })
    this.facts = h('dl', { class: 'facts' })
    this.analysis = h('div', { class: 'analysis' })
    this.log = h('ol', { class: 'log', 'aria-label': 'Latest rollout events' })
    this.notice = h('p', { class: 'notice', role: 'status' })

    /** @type {Record<string, HTMLButtonElement>} */
    this.buttons = {}
    const bar = h('div', { class: 'buttons', role: 'group', 'aria-label': 'Control the rollout' })
    for (const [action, label] of [['pause', 'Pause'], ['resume', 'Resume'], ['promote', 'Promote'], ['abort', 'Abort']]) {
      const b = h('button', { type: 'button', 'data-action': action }, label)
      if (action === 'abort') confirmable(b, 'Press again to abort', () => { void this.act(action) })
      else b.addEventListener('click', () => { void this.act(action) })
      this.buttons[action] = b
      bar.append(b)
    }
    const rollback = h('button', { type: 'button', 'data-action': 'rollback' }, 'Roll back to the previous revision')
    confirmable(rollback, 'Press again to roll back', () => { void this.act('rollback') })
    this.buttons.rollback = rollback

    this.rolloutBox.append(this.rolloutTitle, h('p', { class: 'progress' }, this.progress, ' ', this.progressText), this.facts, bar, this.analysis, this.log)

    this.chart = /** @type {SVGSVGElement} */ (svg('svg', { class: 'chart', role: 'img', 'aria-labelledby': `${id}-chart-title`, 'aria-describedby': `${id}-legend` }))
    this.legend = h('ul', { class: 'legend', id: `${id}-legend`, 'aria-label': 'The last second, by version' })
    /** Whether the history before the page was opened is in (see backfill). */
    this.filled = false
    // The chart is drawn to its pixel width (readable text at any width): redraw when that changes.
    let drawnWidth = 0
    new ResizeObserver(entries => {
      const width = Math.round(entries[0]?.contentRect.width ?? 0)
      if (width === drawnWidth || !this.filled) return
      drawnWidth = width
      this.drawTraffic()
    }).observe(this.chart)
    this.historyList = h('ul', { class: 'history-list' })
    this.historyCount = h('span')

    this.element = h('section', { class: 'pool', 'aria-labelledby': id, 'data-pool': name },
      h('h2', { id }, name, ' ', this.meta),
      this.rolloutBox,
      h('p', { class: 'pool-actions' }, rollback),
      this.notice,
      h('div', { class: 'columns' },
        h('figure', { class: 'traffic' },
          h('figcaption', { id: `${id}-chart-title` }, 'Requests per second by version, up to the last 5 minutes'),
          this.chart, this.legend),
        h('div', { class: 'table-wrap' },
          h('table', { class: 'instances' },
            h('caption', {}, 'Instances'),
            h('thead', {}, h('tr', {}, ...['Instance', 'Version', 'State', 'In flight', 'Req/s'].map(c => h('th', { scope: 'col' }, c)))),
            this.rows))),
      h('details', { class: 'history' }, h('summary', {}, 'Past rollouts ', this.historyCount), this.historyList))
  }

  /**
   * @param {PoolData} pool
   * @param {Map<string, number>} rates requests per second by instance id
   */
  update (pool, rates) {
    this.pool = pool
    this.meta.textContent = [pool.version, `revision ${pool.revision}`, `size ${pool.size}`, pool.kind].filter(Boolean).join(' · ')
    const keep = new Set(pool.instances.map(i => i.id))
    for (const row of [...this.rows.rows]) if (!keep.has(row.dataset.instance ?? '')) row.remove()
    for (const i of pool.instances) this.instance(i.id, i.version, i.state, i.inflight, rates.get(i.id), i.failure ?? undefined)
    this.controls()
  }

  /**
   * Adds or updates one instance's row (an event may come before the pool's next poll).
   * @param {string} id
   * @param {string} version
   * @param {string} state
   * @param {number} [inflight]
   * @param {number} [rate]
   * @param {string} [failure]
   */
  instance (id, version, state, inflight, rate, failure) {
    let row = [...this.rows.rows].find(r => r.dataset.instance === id)
    if (state === 'stopped') { row?.remove(); return }
    if (row === undefined) {
      row = h('tr', { 'data-instance': id }, h('th', { scope: 'row' }, id), h('td'), h('td'), h('td', { class: 'num' }), h('td', { class: 'num' }))
      this.rows.append(row)
    }
    const [, v, s, f, r] = row.cells
    v.textContent = version
    s.replaceChildren(h('span', { class: `state state-${state}` }, state))
    if (failure !== undefined) s.append(' ', h('span', { class: 'failure' }, failure))
    if (inflight !== undefined) f.textContent = String(inflight)
    if (rate !== undefined) r.textContent = formatRate(rate)
    else if (r.textContent === '') r.textContent = '–'
    row.dataset.version = version
    row.dataset.state = state
  }

  /** @param {RolloutData | null} r */
  updateRollout (r) {
    this.rollout = r
    this.rolloutBox.hidden = r === null
    if (r !== null) {
      const from = r.fromVersion ?? `revision ${r.fromRevision}`
      const to = r.toVersion ?? `revision ${r.toRevision}`
      this.rolloutTitle.textContent = `Rollout ${r.id}: ${from} → ${to}`
      this.progress.max = Math.max(1, r.total)
      this.progress.value = Math.min(r.updated, r.total)
      this.progressText.textContent = `${r.updated} of ${r.total} instances updated`
      /** @type {Array<[string, string]>} */
      const facts = [['Status', r.direction === 'back' ? `${r.status}, rolling back` : r.status]]
      if (r.strategy !== undefined) facts.push(['Strategy', r.strategy])
      if (r.step !== undefined) facts.push(['Step', String(r.step)])
      if (r.weight !== undefined) facts.push(['Weight', `${r.weight}% of requests to ${to}`])
      facts.push(['Started', clock(r.startedAt)])
      if (r.error !== null) facts.push(['Error', r.error])
      this.facts.replaceChildren(...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', { 'data-fact': k.toLowerCase() }, v)]))
      this.analysis.replaceChildren(...analysisTable(r.analysis))
      this.log.replaceChildren(...(r.events ?? []).slice(-5).map(e => h('li', {}, h('time', { datetime: e.at }, clock(e.at)), ' ', e.message)))
    }
    this.controls()
  }

  /** Enables the buttons that make sense now; the API refuses the rest anyway (409). */
  controls () {
    const r = this.rollout
    const active = r !== null && (r.status === 'running' || r.status === 'paused')
    this.buttons.pause.disabled = !(active && r?.status === 'running')
    this.buttons.resume.disabled = !(active && r?.status === 'paused')
    this.buttons.abort.disabled = !(active && r?.direction !== 'back')
    this.buttons.promote.hidden = r?.strategy !== 'canary'
    this.buttons.promote.disabled = !(active && r?.direction !== 'back')
    // Shown once there is a revision to go back to; blue-green takes it during scaleDownDelay (README "Progressive delivery").
    this.buttons.rollback.hidden = (this.pool?.revisions?.length ?? 0) < 2
    this.buttons.rollback.disabled = active && r?.strategy !== 'blueGreen'
  }

  /** @param {string} action */
  async act (action) {
    const r = this.rollout
    const button = this.buttons[action]
    button.setAttribute('aria-busy', 'true')
    try {
      if (action === 'rollback') await this.actions.rollback(this.name)
      else if (r !== null) await this.actions.control(r.id, action)
      this.notice.textContent = action === 'rollback' ? `Rollback of ${this.name} started.` : `${action[0].toUpperCase()}${action.slice(1)}: done.`
      this.notice.classList.remove('error')
    } catch (err) {
      this.notice.textContent = `${action} refused: ${err instanceof Error ? err.message : String(err)}`
      this.notice.classList.add('error')
    } finally {
      button.removeAttribute('aria-busy')
    }
  }

  /** @param {import('./chart.js').TrafficEvent} e */
  traffic (e) {
    this.history.add(e)
    if (this.filled) this.drawTraffic()
  }

  /**
   * The seconds before the page was opened (GET /v1/pools/NAME/traffic), or
   * none when that failed; a second the stream already brought is kept as it
   * came. Nothing is drawn before, so that versions get their styles oldest
   * first, the same on every load.
   * @param {import('./chart.js').TrafficEvent[]} events
   */
  backfill (events) {
    for (const e of events) if (!this.history.seconds.has(e.t)) this.history.add(e)
    this.filled = true
    this.drawTraffic()
  }

  drawTraffic () {
    if (this.history.seconds.size === 0) return
    drawChart(this.chart, this.history, this.styles)
    const last = this.history.last() ?? new Map()
    const items = [...last.values()].sort((a, b) => this.styles.index(a.version) - this.styles.index(b.version)).map(v =>
      h('li', { 'data-version': v.version }, swatch(this.styles.fill(v.version)),
        ` ${v.version === '' ? 'no instance' : v.version}: ${formatRate(v.requests)} req/s, p99 ${ms(v.p99)}`))
    let failed = 0
    for (const v of last.values()) failed += v.failed
    items.push(h('li', { 'data-series': 'failed' }, swatch('failed'), ` failed: ${formatRate(failed)}/s`))
    this.legend.replaceChildren(...items)
  }

  /** @param {RolloutData[]} rollouts newest first */
  updateHistory (rollouts) {
    const past = rollouts.filter(r => r.status !== 'running' && r.status !== 'paused')
    this.historyCount.textContent = `(${past.length})`
    const keep = new Set(past.map(r => r.id))
    for (const li of [...this.historyList.children]) if (li instanceof HTMLElement && !keep.has(li.dataset.rollout ?? '')) li.remove()
    past.forEach((r, i) => {
      let li = [...this.historyList.children].find(e => e instanceof HTMLElement && e.dataset.rollout === r.id)
      if (li === undefined) li = this.pastRollout(r.id)
      const summary = li.querySelector('summary')
      if (summary !== null) summary.textContent = `${clock(r.startedAt)} · ${r.fromVersion ?? r.fromRevision} → ${r.toVersion ?? r.toRevision} · ${r.status} · ${r.id}`
      if (this.historyList.children[i] !== li) this.historyList.insertBefore(li, this.historyList.children[i] ?? null)
    })
  }

  /** @param {string} id */
  pastRollout (id) {
    const img = h('img', { alt: `Report of rollout ${id}: requests per second by version, p99 latency and failures, with each batch's phases`, width: 960, height: 420 })
    const status = h('p', { class: 'notice', role: 'status' })
    const details = h('details', {}, h('summary'), h('figure', { class: 'report' }, img), status)
    details.addEventListener('toggle', () => {
      if (!details.open) return
      status.textContent = 'Loading the report…'
      this.actions.report(id).then(url => {
        if (img.src.startsWith('blob:')) URL.revokeObjectURL(img.src)
        img.src = url
        status.textContent = ''
      }, err => { status.textContent = `The report could not be loaded: ${err instanceof Error ? err.message : String(err)}` })
    })
    return h('li', { 'data-rollout': id }, details)
  }
}

/**
 * The canary analysis (README "Progressive delivery"), when the rollout has one: a row per
 * judgement (a step that waited for traffic has two) with its verdict and
 * reason, and each revision's numbers over the step's window.
 * @param {StepAnalysis[] | undefined} analysis
 * @returns {HTMLElement[]}
 */
function analysisTable (analysis) {
  if (analysis === undefined || analysis.length === 0) return []
  const rows = analysis.map(a => {
    const numbers = Object.entries(a.revisions).map(([name, v]) =>
      `${name}: ${v.requests} requests, ${(v.errorRate * 100).toFixed(2)}% errors${v.p99 === null ? '' : `, p99 ${ms(v.p99)}`}`)
    return h('tr', {},
      h('th', { scope: 'row' }, String(a.step)),
      h('td', { class: `verdict verdict-${a.verdict}` }, a.verdict),
      h('td', {}, a.reason),
      h('td', {}, numbers.join('; ')))
  })
  return [h('table', { class: 'analysis-table' },
    h('caption', {}, 'Analysis'),
    h('thead', {}, h('tr', {}, ...['Step', 'Verdict', 'Reason', 'Numbers'].map(c => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...rows))]
}
