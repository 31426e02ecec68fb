import { BatonError } from '../errors.js'

/** One problem found in a config file, positioned for `FILE:LINE:COL key.path: message`. */
export interface ConfigProblem {
  file: string
  line: number
  col: number
  path: string
  message: string
}

/** A config that cannot be used: every problem found, each with its position (code BATON_ERR_CONFIG). */
export class ConfigError extends BatonError<'BATON_ERR_CONFIG'> {
  readonly problems: ConfigProblem[]

  constructor (problems: ConfigProblem[]) {
    super('BATON_ERR_CONFIG', problems.map(formatProblem).join('\n'))
    this.problems = problems
  }
}

export function formatProblem (p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col} ${p.path === '' ? '(root)' : p.path}: ${p.message}`
}

/** A warning (Config.warnings) as `baton check` prints it: `FILE:LINE:COL key.path: warning: message`. */
export function formatWarning (p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col} ${p.path === '' ? '(root)' : p.path}: warning: ${p.message}`
}
