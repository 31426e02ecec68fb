/** `4s`, `3m12s`, `2h05m`, `3d04h`: a duration as an operator reads it in a table. */
export function formatUptime (ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-'
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`
}

/** `0.4s`, `12.0s`, `2m05s`: elapsed time for progress lines. */
export function formatElapsed (ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  return formatUptime(ms)
}

/** Left-aligned columns separated by two spaces, the first row the header. */
export function table (rows: string[][]): string {
  const widths: number[] = []
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length) })
  return rows.map(r => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n'
}
