import type { RolloutReport } from './report.js'

/**
 * Draws a rollout report as one SVG: requests per second stacked by version,
 * the p99 latency as a line, failures marked in red, each batch's phases
 * (starting, soak, drain) shaded behind, and for a canary or blue-green the
 * turns of the traffic (each step and its weight, the switch) and each
 * step's verdict. No library: the picture is simple and the output must be
 * plain, valid XML.
 */
const W = 960
const H = 420
const M = { top: 56, right: 70, bottom: 70, left: 64 }
const PALETTE = ['#4e79a7', '#59a14f', '#f28e2b', '#b07aa1', '#76b7b2', '#edc948', '#9c755f', '#bab0ac']
const PHASE_COLOURS = { starting: '#dbe9f6', soak: '#e3f1dc', drain: '#fbe3cc' }
const TURN_COLOUR = '#6a3d9a'
const VERDICT_COLOURS = { pass: '#2e7d32', wait: '#ef8f00', fail: '#c62828' }
const VERDICT_SIGNS = { pass: '✓', wait: '…', fail: '✗' }

const esc = (s: string): string => s.replace(/[<>&"']/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string)
const f1 = (n: number): string => (Math.round(n * 10) / 10).toString()

function niceMax (v: number): number {
  if (v <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

export function renderSvg (report: RolloutReport, title: string): string {
  const pts = report.seconds
  const t0 = pts.length > 0 ? Math.min(pts[0].t, report.from) : report.from
  const t1 = Math.max(pts.length > 0 ? pts[pts.length - 1].t + 1000 : report.to, report.to)
  const span = Math.max(1000, t1 - t0)
  const iw = W - M.left - M.right
  const ih = H - M.top - M.bottom
  const x = (t: number): number => M.left + ((t - t0) / span) * iw

  const versions = [...new Set(pts.flatMap(p => Object.keys(p.byVersion)))].sort()
  const colour = (v: string): string => PALETTE[versions.indexOf(v) % PALETTE.length]
  const rpsMax = niceMax(Math.max(1, ...pts.map(p => Object.values(p.byVersion).reduce((a, b) => a + b, 0))))
  const yR = (v: number): number => M.top + ih - (v / rpsMax) * ih
  const p99s = pts.map(p => p.p99 ?? 0)
  const latMax = niceMax(Math.max(0.001, ...p99s) * 1000)
  const yL = (ms: number): number => M.top + ih - (ms / latMax) * ih

  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`)
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`)
  out.push(`<text x="${M.left}" y="22" font-size="16" font-weight="600">${esc(title)}</text>`)
  const f = report.failed
  out.push(`<text x="${M.left}" y="42" fill="#444">${report.requests} requests during the rollout · ${f.total} failed (baton 5xx ${f.baton5xx}, upstream ${f.upstreamFailed}, app 5xx ${f.app5xx}) · ${report.retries} retried · ${report.clientAborts} client aborts</text>`)

  // Batch phases, behind everything.
  out.push('<g id="phases">')
  for (const b of report.batches) {
    const band = (from: number | null, to: number | null, kind: keyof typeof PHASE_COLOURS): void => {
      if (from === null || to === null || to <= from) return
      out.push(`<rect class="phase ${kind}" x="${f1(x(from))}" y="${M.top}" width="${f1(Math.max(1, x(to) - x(from)))}" height="${ih}" fill="${PHASE_COLOURS[kind]}"><title>batch ${b.batch}: ${kind}</title></rect>`)
    }
    band(b.started, b.ready, 'starting')
    band(b.ready, b.soaked, 'soak')
    band(b.drainStarted, b.stopped, 'drain')
    out.push(`<text x="${f1(x(b.started) + 2)}" y="${M.top + 12}" fill="#555" font-size="10">batch ${b.batch}</text>`)
  }
  out.push('</g>')

  // Axes and grid.
  out.push('<g id="axes" stroke="#ccc">')
  for (let k = 0; k <= 4; k++) {
    const y = M.top + (ih * k) / 4
    out.push(`<line x1="${M.left}" x2="${M.left + iw}" y1="${f1(y)}" y2="${f1(y)}" stroke-dasharray="2,3"/>`)
    out.push(`<text x="${M.left - 6}" y="${f1(y + 4)}" text-anchor="end" stroke="none" fill="#444">${f1(rpsMax * (1 - k / 4))}</text>`)
    out.push(`<text x="${M.left + iw + 6}" y="${f1(y + 4)}" stroke="none" fill="#c0392b">${f1(latMax * (1 - k / 4))}</text>`)
  }
  const step = span > 120_000 ? 30_000 : span > 40_000 ? 10_000 : 5_000
  // Ticks on whole multiples of `step` counted from the rollout's start.
  for (let t = report.from - Math.floor((report.from - t0) / step) * step; t <= t1; t += step) {
    out.push(`<text x="${f1(x(t))}" y="${M.top + ih + 16}" text-anchor="middle" stroke="none" fill="#444">${Math.round((t - report.from) / 1000)}s</text>`)
  }
  out.push(`<text x="${M.left + iw / 2}" y="${M.top + ih + 34}" text-anchor="middle" stroke="none" fill="#444">seconds since the rollout began</text>`)
  out.push(`<text transform="translate(16 ${M.top + ih / 2}) rotate(-90)" text-anchor="middle" stroke="none" fill="#444">requests / s</text>`)
  out.push(`<text transform="translate(${W - 14} ${M.top + ih / 2}) rotate(90)" text-anchor="middle" stroke="none" fill="#c0392b">p99 latency (ms)</text>`)
  out.push('</g>')

  // Stacked areas, one per version, bottom to top in version order.
  out.push('<g id="traffic">')
  const base = pts.map(() => 0)
  for (const v of versions) {
    const top = pts.map((p, i) => base[i] + (p.byVersion[v] ?? 0))
    const upper = pts.map((p, i) => `${f1(x(p.t))},${f1(yR(top[i]))} ${f1(x(p.t + 1000))},${f1(yR(top[i]))}`)
    const lower = pts.map((p, i) => `${f1(x(p.t + 1000))},${f1(yR(base[i]))} ${f1(x(p.t))},${f1(yR(base[i]))}`).reverse()
    out.push(`<polygon class="series" data-version="${esc(v)}" points="${[...upper, ...lower].join(' ')}" fill="${colour(v)}" fill-opacity="0.75"/>`)
    top.forEach((t, i) => { base[i] = t })
  }
  out.push('</g>')

  // p99 latency line.
  const line = pts.filter(p => p.p99 !== null).map(p => `${f1(x(p.t + 500))},${f1(yL((p.p99 as number) * 1000))}`)
  if (line.length > 0) out.push(`<polyline id="p99" points="${line.join(' ')}" fill="none" stroke="#c0392b" stroke-width="2"/>`)

  // Failures: a red mark with the count above each second that had any.
  out.push('<g id="failures">')
  for (const p of pts) {
    if (p.failed === 0) continue
    out.push(`<g class="failure"><line x1="${f1(x(p.t + 500))}" x2="${f1(x(p.t + 500))}" y1="${M.top}" y2="${M.top + ih}" stroke="#e74c3c" stroke-width="2"/><text x="${f1(x(p.t + 500))}" y="${M.top - 4}" text-anchor="middle" fill="#e74c3c">${p.failed} failed</text></g>`)
  }
  out.push('</g>')

  // Canary steps and the blue-green switch: where the traffic turned, and each step's verdicts.
  out.push('<g id="steps">')
  for (const turn of report.turns) {
    out.push(`<g class="turn"><line x1="${f1(x(turn.at))}" x2="${f1(x(turn.at))}" y1="${M.top}" y2="${M.top + ih}" stroke="${TURN_COLOUR}" stroke-width="1.5" stroke-dasharray="6,3"/>` +
      `<text x="${f1(x(turn.at) + 3)}" y="${M.top + 26}" fill="${TURN_COLOUR}" font-size="10">${esc(turn.label)}</text></g>`)
  }
  for (const v of report.verdicts) {
    const c = VERDICT_COLOURS[v.verdict]
    out.push(`<g class="verdict verdict-${v.verdict}"><title>step ${v.step}: ${v.verdict}: ${esc(v.reason)}</title>` +
      `<circle cx="${f1(x(v.at))}" cy="${M.top + 38}" r="7" fill="${c}"/>` +
      `<text x="${f1(x(v.at))}" y="${M.top + 42}" text-anchor="middle" fill="#ffffff" font-size="10">${VERDICT_SIGNS[v.verdict]}</text>` +
      `<text x="${f1(x(v.at) + 10)}" y="${M.top + 42}" fill="${c}" font-size="10">step ${v.step} ${v.verdict}</text></g>`)
  }
  out.push('</g>')

  // Rollout start and end.
  for (const [t, label] of [[report.from, 'start'], [report.to, 'end']] as const) {
    out.push(`<line x1="${f1(x(t))}" x2="${f1(x(t))}" y1="${M.top}" y2="${M.top + ih}" stroke="#333" stroke-dasharray="4,3"/><text x="${f1(x(t) + 3)}" y="${M.top + ih - 4}" fill="#333" font-size="10">${label}</text>`)
  }

  // Legend.
  let lx = M.left
  const ly = H - 14
  const legend: Array<[string, string, string]> = [
    ...versions.map(v => [v === '' ? 'no instance' : v, colour(v), 'rect'] as [string, string, string]),
    ['p99', '#c0392b', 'line'],
    ['starting', PHASE_COLOURS.starting, 'rect'], ['soak (minReady)', PHASE_COLOURS.soak, 'rect'], ['drain', PHASE_COLOURS.drain, 'rect'],
    ['failed', '#e74c3c', 'line'],
    ...(report.turns.length > 0 ? [['step / switch', TURN_COLOUR, 'line'] as [string, string, string]] : []),
    ...(report.verdicts.length > 0 ? [['verdict', VERDICT_COLOURS.pass, 'rect'] as [string, string, string]] : [])
  ]
  out.push('<g id="legend">')
  for (const [name, c, shape] of legend) {
    out.push(shape === 'rect'
      ? `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${c}"/>`
      : `<line x1="${lx}" x2="${lx + 12}" y1="${ly - 4}" y2="${ly - 4}" stroke="${c}" stroke-width="2"/>`)
    out.push(`<text x="${lx + 16}" y="${ly}">${esc(name)}</text>`)
    lx += 22 + name.length * 7
  }
  out.push('</g>')
  out.push('</svg>')
  return out.join('\n')
}
