// @ts-check
/**
 * The per-version traffic chart: requests per second stacked by version over
 * the last minutes, failed requests as a dashed line with markers. Drawn by
 * hand in SVG (a few paths a second needs no library). Every version has a
 * colour from the Okabe–Ito palette, which stays distinct under the common
 * colour-vision deficiencies, and a fill pattern of its own, so that the
 * series also differ in grey and in print.
 */

const SVG = 'http://www.w3.org/2000/svg'

/** Okabe & Ito, "Color Universal Design" (vermillion kept for failures). */
const COLOURS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#F0E442', '#000000']
const FAILED = '#D55E00'
/** How much history the chart shows. */
export const WINDOW_SECONDS = 300
const HEIGHT = 200
const M = { top: 12, right: 14, bottom: 26, left: 48 }

/**
 * @typedef {{ version: string, requests: number, ok2xx: number, redirect3xx: number, client4xx: number,
 *   server5xx: number, failed: number, clientAborts: number, p99: number | null }} VersionSecond
 * @typedef {{ type: 'traffic', pool: string, t: number, versions: VersionSecond[] }} TrafficEvent
 */

/**
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @returns {SVGElement}
 */
export function svg (tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  return el
}

/** Which colour and pattern each version gets: by first sight, the same across the page. */
export class SeriesStyles {
  constructor () {
    /** @type {Map<string, number>} */
    this.seen = new Map()
  }

  /**
   * @param {string} version
   * @returns {number}
   */
  index (version) {
    let i = this.seen.get(version)
    if (i === undefined) {
      i = this.seen.size % COLOURS.length
      this.seen.set(version, i)
    }
    return i
  }

  /**
   * @param {string} version
   * @returns {string}
   */
  fill (version) { return `url(#baton-series-${this.index(version)})` }
}

/**
 * One <svg> of pattern definitions for the whole page (charts and legend
 * swatches point at them). Not display:none: patterns inside a hidden
 * <svg> would not paint.
 * @returns {SVGElement}
 */
export function patternDefs () {
  const root = svg('svg', { class: 'defs', width: 0, height: 0, 'aria-hidden': 'true', focusable: 'false' })
  const defs = svg('defs')
  COLOURS.forEach((colour, i) => {
    const p = svg('pattern', { id: `baton-series-${i}`, patternUnits: 'userSpaceOnUse', width: 8, height: 8 })
    p.append(svg('rect', { width: 8, height: 8, fill: colour }))
    const ink = i === COLOURS.length - 1 ? '#ffffff' : '#000000'
    const line = { stroke: ink, 'stroke-width': 1.2, 'stroke-opacity': 0.55 }
    // 0 solid, 1 diagonal, 2 dots, 3 cross-hatch, 4 horizontal, 5 vertical, 6 other diagonal
    if (i === 1) p.append(svg('path', { d: 'M-2 2 2 -2M0 8 8 0M6 10 10 6', ...line }))
    if (i === 2) p.append(svg('circle', { cx: 4, cy: 4, r: 1.6, fill: ink, 'fill-opacity': 0.55 }))
    if (i === 3) p.append(svg('path', { d: 'M0 0 8 8M8 0 0 8', ...line }))
    if (i === 4) p.append(svg('path', { d: 'M0 4 8 4', ...line }))
    if (i === 5) p.append(svg('path', { d: 'M4 0 4 8', ...line }))
    if (i === 6) p.append(svg('path', { d: 'M-2 6 2 10M0 0 8 8M6 -2 10 2', ...line }))
    defs.append(p)
  })
  root.append(defs)
  return root
}

/** A pool's last minutes of traffic events, by second. */
export class TrafficHistory {
  constructor () {
    /** @type {Map<number, Map<string, VersionSecond>>} epoch ms → version → numbers */
    this.seconds = new Map()
    this.latest = 0
  }

  /** @param {TrafficEvent} e */
  add (e) {
    this.seconds.set(e.t, new Map(e.versions.map(v => [v.version, v])))
    if (e.t > this.latest) this.latest = e.t
    for (const t of this.seconds.keys()) if (t < this.latest - WINDOW_SECONDS * 1000) this.seconds.delete(t)
  }

  /** @returns {Map<string, VersionSecond> | undefined} the last second's numbers */
  last () { return this.seconds.get(this.latest) }
}

/** @param {number} v */
function niceMax (v) {
  if (v <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

/** An axis label: 2500 → 2.5k. @param {number} n */
function compact (n) {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(2)}M`
  if (n >= 1e3) return `${+(n / 1e3).toFixed(2)}k`
  return `${+n.toFixed(1)}`
}

/** @param {number} n */
export function formatRate (n) {
  return n >= 100 ? Math.round(n).toLocaleString('en') : n >= 10 ? n.toFixed(0) : n === 0 ? '0' : n.toFixed(1)
}

/**
 * Redraws `root` (an <svg>) from `history`, as wide as the element is.
 * @param {SVGSVGElement} root
 * @param {TrafficHistory} history
 * @param {SeriesStyles} styles
 */
export function drawChart (root, history, styles) {
  const width = Math.max(240, Math.round(root.getBoundingClientRect().width) || 600)
  root.setAttribute('viewBox', `0 0 ${width} ${HEIGHT}`)
  root.setAttribute('height', String(HEIGHT))
  const iw = width - M.left - M.right
  const ih = HEIGHT - M.top - M.bottom
  const all = [...history.seconds.keys()].sort((a, b) => a - b)
  // The window starts with the first second that had traffic: one minute at least, WINDOW_SECONDS at most.
  const t1 = history.latest
  const first = all.find(t => [...history.seconds.get(t)?.values() ?? []].some(v => v.requests > 0))
  const seen = first === undefined ? 0 : t1 - first
  const span = Math.min(WINDOW_SECONDS * 1000, Math.max(60_000, Math.ceil(seen / 60_000) * 60_000))
  const t0 = t1 - span
  const times = all.filter(t => t >= t0)
  const x = (/** @type {number} */ t) => M.left + ((t - t0) / span) * iw

  // Versions in the order they first had traffic, so that a new one gets the next style.
  /** @type {string[]} */
  const versions = []
  for (const t of all) {
    for (const v of history.seconds.get(t)?.keys() ?? []) {
      if (!versions.includes(v)) { versions.push(v); styles.index(v) }
    }
  }
  versions.sort((a, b) => styles.index(a) - styles.index(b))
  let peak = 0
  for (const t of times) {
    let total = 0
    for (const v of history.seconds.get(t)?.values() ?? []) total += v.requests
    peak = Math.max(peak, total)
  }
  const yMax = niceMax(peak)
  const y = (/** @type {number} */ v) => M.top + ih - (v / yMax) * ih

  const parts = []
  for (const frac of [0, 0.5, 1]) {
    const gy = y(yMax * frac)
    parts.push(svg('line', { x1: M.left, x2: M.left + iw, y1: gy, y2: gy, class: frac === 0 ? 'axis' : 'grid' }))
    const label = svg('text', { x: M.left - 6, y: gy + 4, 'text-anchor': 'end', class: 'tick' })
    label.textContent = `${compact(yMax * frac)}/s`
    parts.push(label)
  }
  // Time ticks at least ~70 px apart: every 15 s, 30 s, 1 or 2 minutes.
  const step = [15_000, 30_000, 60_000, 120_000].find(s => (s / span) * iw >= 70) ?? span
  for (let back = 0; back <= span; back += step) {
    const tx = x(t1 - back)
    const label = svg('text', { x: tx, y: HEIGHT - 8, 'text-anchor': back === 0 ? 'end' : back + step > span ? 'start' : 'middle', class: 'tick' })
    label.textContent = back === 0 ? 'now' : back < 60_000 ? `−${back / 1000} s` : `−${back / 60_000} min`
    parts.push(label)
  }

  if (times.length > 0) {
    // Stacked areas, first version at the bottom; a second with no event counts as no traffic.
    const base = times.map(() => 0)
    for (const version of versions) {
      const top = times.map((t, i) => base[i] + (history.seconds.get(t)?.get(version)?.requests ?? 0))
      const upper = times.map((t, i) => `${x(t).toFixed(1)},${y(top[i]).toFixed(1)}`)
      const lower = times.map((t, i) => `${x(t).toFixed(1)},${y(base[i]).toFixed(1)}`).reverse()
      const d = times.length === 1
        ? `M${x(times[0]) - 2},${y(top[0])}H${x(times[0]) + 2}V${y(base[0])}H${x(times[0]) - 2}Z`
        : `M${upper.join('L')}L${lower.join('L')}Z`
      parts.push(svg('path', { d, fill: styles.fill(version), stroke: '#ffffff', 'stroke-width': 0.5, class: 'area' }))
      times.forEach((_, i) => { base[i] = top[i] })
    }
    const failed = times.map(t => {
      let n = 0
      for (const v of history.seconds.get(t)?.values() ?? []) n += v.failed
      return n
    })
    if (failed.some(n => n > 0)) {
      parts.push(svg('polyline', { points: times.map((t, i) => `${x(t).toFixed(1)},${y(failed[i]).toFixed(1)}`).join(' '), class: 'failed-line', stroke: FAILED }))
      times.forEach((t, i) => {
        if (failed[i] === 0) return
        const cx = x(t)
        const cy = y(failed[i])
        parts.push(svg('path', { d: `M${cx.toFixed(1)},${(cy - 4).toFixed(1)}l4,7h-8z`, fill: FAILED, class: 'failed-marker' }))
      })
    }
  }
  root.replaceChildren(...parts)
}

/**
 * A legend swatch: the version's pattern, or the failed line and marker.
 * @param {string} fill
 * @returns {SVGElement}
 */
export function swatch (fill) {
  const s = svg('svg', { class: 'swatch', width: 18, height: 12, viewBox: '0 0 18 12', 'aria-hidden': 'true', focusable: 'false' })
  if (fill === 'failed') {
    s.append(svg('line', { x1: 0, x2: 18, y1: 6, y2: 6, stroke: FAILED, 'stroke-width': 2, 'stroke-dasharray': '4 2' }))
    s.append(svg('path', { d: 'M9,2l4,7h-8z', fill: FAILED }))
  } else {
    s.append(svg('rect', { width: 18, height: 12, fill, stroke: '#333333', 'stroke-width': 0.5 }))
  }
  return s
}
