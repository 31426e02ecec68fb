/**
 * One JSON object a line on stdout (README "Command line": `baton start`). Kept tiny: nothing here runs per
 * proxied request.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error'

let minLevel = process.env.BATON_LOG_LEVEL === 'debug' ? 0 : 1
const LEVELS: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 }
/** Fields every line of this process carries (which of baton's processes wrote it). */
let base: Record<string, unknown> = {}

export function setLogLevel (level: Level): void { minLevel = LEVELS[level] }

/** Names this process in every line it logs: `{ proc: 'worker', worker: 2, generation: 1 }`. */
export function setLogFields (fields: Record<string, unknown>): void { base = fields }

export function log (level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (LEVELS[level] < minLevel) return
  const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields })
  process.stdout.write(line + '\n')
}
