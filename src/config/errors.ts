/** One problem found in a config file, positioned for `FILE:LINE:COL key.path: message`. */
export interface ConfigProblem {
  file: string
  line: number
  col: number
  path: string
  message: string
}

export class ConfigError extends Error {
  readonly code = 'BATON_ERR_CONFIG'
  readonly problems: ConfigProblem[]

  constructor (problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'))
    this.name = 'ConfigError'
    this.problems = problems
  }
}

export function formatProblem (p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col} ${p.path === '' ? '(root)' : p.path}: ${p.message}`
}
