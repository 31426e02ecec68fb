/**
 * One JSON object a line on stdout (README "Command line": `baton start`). Kept tiny: nothing here runs per
 * proxied request.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error'

let minLevel = process.env.BATON_LOG_LEVEL === 'debug' ? 0 : 1
const LEVELS: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 }

export function setLogLevel (level: Level): void { minLevel = LEVELS[level] }

export function log (level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (LEVELS[level] < minLevel) return
  const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })
  process.stdout.write(line + '\n')
}
