// Command-line options shared by the scripts (bench, compare): parseArgs
// with --help, and numeric options checked against a minimum.
import { parseArgs } from 'node:util'

/** Options every measuring script takes: rounds, a quick run, JSON output, warm-up, and skipping the build. */
export const COMMON_OPTIONS = {
  rounds: { type: 'string' },
  quick: { type: 'boolean', default: false },
  json: { type: 'string' },
  warmup: { type: 'string' },
  'skip-build': { type: 'boolean', default: false }
}

/**
 * Parses process.argv with COMMON_OPTIONS and `options` (node:util parseArgs, plus --help/-h,
 * which prints `usage` and exits). Returns { values, num } where
 * `num(name, default, min)` reads a numeric option or throws a clear error.
 */
export function readOptions (usage, options) {
  const { values } = parseArgs({
    options: { ...COMMON_OPTIONS, ...options, help: { type: 'boolean', short: 'h', default: false } },
    allowPositionals: false
  })
  if (values.help) { process.stdout.write(usage + '\n'); process.exit(0) }
  const num = (name, dflt, min) => {
    if (values[name] === undefined) return dflt
    const n = Number(values[name])
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`)
    return n
  }
  return { values, num }
}
