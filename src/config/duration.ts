const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/

/** Parses `250ms`, `2s`, `1.5m`, `1h` into milliseconds; undefined when malformed. */
export function parseDuration (text: string): number | undefined {
  const m = DURATION.exec(text.trim())
  if (m === null) return undefined
  return Math.round(Number(m[1]) * UNITS[m[2]])
}

/**
 * Resolves a count-or-percentage against a pool size the way Kubernetes does:
 * surge rounds up, unavailable rounds down.
 */
export function resolveScaled (value: number | string, size: number, round: 'up' | 'down'): number {
  if (typeof value === 'number') return value
  const pct = Number(value.slice(0, -1)) / 100
  return round === 'up' ? Math.ceil(pct * size) : Math.floor(pct * size)
}
