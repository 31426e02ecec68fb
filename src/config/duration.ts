const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y
const UNIT_ORDER = ['h', 'm', 's', 'ms']

/**
 * Parses `250ms`, `2s`, `1.5m`, `1h` and Go-style compounds such as `1m30s`
 * (units largest first, each at most once) into milliseconds; `0` alone is
 * zero, as in Go. Undefined when malformed.
 */
export function parseDuration (text: string): number | undefined {
  const s = text.trim()
  if (s === '0') return 0
  if (s === '') return undefined
  let total = 0
  let lastUnit = -1
  PART.lastIndex = 0
  while (PART.lastIndex < s.length) {
    const m = PART.exec(s)
    if (m === null) return undefined
    const unit = UNIT_ORDER.indexOf(m[2])
    if (unit <= lastUnit) return undefined
    lastUnit = unit
    total += Number(m[1]) * UNITS[m[2]]
  }
  return Math.round(total)
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
