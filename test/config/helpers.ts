import { expect, it } from 'vitest'
import { ConfigError, type ConfigProblem } from '../../src/config/errors.js'
import { parseConfig } from '../../src/config/load.js'
import type { Config, DockerPoolConfig, PoolConfig, ProcessPoolConfig, StaticPoolConfig } from '../../src/config/types.js'

/**
 * Template tag for YAML in tests: drops the first line break and the common
 * indentation, so that line 1 of the config is the first line of the literal.
 */
export function yaml (strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = String.raw({ raw: strings }, ...values).replace(/^\n/, '')
  const lines = text.split('\n')
  const indent = Math.min(...lines.filter(l => l.trim() !== '').map(l => /^ */.exec(l)![0].length))
  return lines.map(l => l.slice(indent)).join('\n').replace(/[ ]+$/, '')
}

/** The problems parseConfig reports, or [] when the config is valid. */
export function problemsOf (text: string, env: NodeJS.ProcessEnv = {}): ConfigProblem[] {
  try {
    parseConfig(text, 'baton.yaml', env)
    return []
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
}

/** Parses a config that must be valid; fails the test with every problem otherwise. */
export function valid (text: string, env: NodeJS.ProcessEnv = {}): Config {
  try {
    return parseConfig(text, 'baton.yaml', env)
  } catch (err) {
    if (err instanceof ConfigError) expect.fail(`expected a valid config, got:\n${err.message}`)
    throw err
  }
}

/**
 * `LINE:COL path: message-substring`, the way `baton check` prints a problem
 * (without the file). `(root)` stands for the empty path.
 */
export function expectProblems (problems: ConfigProblem[], expected: string[]): void {
  const shown = problems.map(p => `${p.line}:${p.col} ${p.path === '' ? '(root)' : p.path}: ${p.message}`)
  expect(problems.length, `got:\n${shown.join('\n')}`).toBe(expected.length)
  expected.forEach((e, i) => {
    const m = /^(\d+):(\d+) (.+?): (.+)$/.exec(e)
    if (m === null) throw new Error(`bad expectation "${e}"`)
    const p = problems[i]
    expect({ line: p.line, col: p.col, path: p.path === '' ? '(root)' : p.path }, `problem ${i + 1}: ${shown[i]}`)
      .toEqual({ line: Number(m[1]), col: Number(m[2]), path: m[3] })
    expect(p.message, `problem ${i + 1}: ${shown[i]}`).toContain(m[4])
  })
}

export interface Case {
  name: string
  text: string
  /** `LINE:COL path: message-substring`, in file order. */
  errors: string[]
  env?: NodeJS.ProcessEnv
}

/** One test per case: exactly these problems, at these positions. */
export function runCases (cases: Case[]): void {
  it.each(cases)('$name', ({ text, errors, env }) => {
    expectProblems(problemsOf(text, env ?? {}), errors)
  })
}

const notA = (kind: string, p: PoolConfig | undefined): Error => new Error(`expected a ${kind} pool, got ${p === undefined ? 'none' : p.kind}`)

/** The pool as the kind it must be (the test fails otherwise). */
export function processOf (p: PoolConfig | undefined): ProcessPoolConfig {
  if (p?.kind !== 'process') throw notA('process', p)
  return p
}
export function dockerOf (p: PoolConfig | undefined): DockerPoolConfig {
  if (p?.kind !== 'docker') throw notA('docker', p)
  return p
}
export function serversOf (p: PoolConfig | undefined): StaticPoolConfig {
  if (p?.kind !== 'static') throw notA('static', p)
  return p
}
