import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { ConfigError, type ConfigProblem } from '../../src/config/errors.js'
import { parseConfig } from '../../src/config/load.js'
import { SPEC_EXAMPLE } from './spec-example.js'

/** FUZZ_RUNS=5000 for a deeper local run. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 300)
const TIMEOUT = Math.max(60_000, RUNS * 40)

// Property: whatever the input, parseConfig either returns a config or throws
// a ConfigError whose every problem is positioned (1-based, inside the file)
// and worded, sorted by position. Never a TypeError, a RangeError or a hang.

function outcome (text: string, env: NodeJS.ProcessEnv = {}): ConfigProblem[] {
  try {
    parseConfig(text, 'fuzz.yaml', env)
    return []
  } catch (err) {
    if (!(err instanceof ConfigError)) throw new Error(`parseConfig threw ${String(err)} for:\n${text}`)
    return err.problems
  }
}

function checkProblems (text: string, problems: ConfigProblem[]): void {
  const lineCount = text.split(/\r\n|\r|\n/).length
  for (const p of problems) {
    expect(p.file).toBe('fuzz.yaml')
    expect(Number.isInteger(p.line) && p.line >= 1 && p.line <= lineCount + 1, `line of ${JSON.stringify(p)}`).toBe(true)
    expect(Number.isInteger(p.col) && p.col >= 1, `col of ${JSON.stringify(p)}`).toBe(true)
    expect(typeof p.path).toBe('string')
    expect(p.message.trim().length, `message of ${JSON.stringify(p)}`).toBeGreaterThan(0)
    expect(p.message).not.toMatch(/Invalid input|received (string|number|object|array)/)
  }
  for (let i = 1; i < problems.length; i++) {
    const a = problems[i - 1]
    const b = problems[i]
    expect(a.line < b.line || (a.line === b.line && a.col <= b.col), 'problems sorted by position').toBe(true)
  }
}

/** Fragments of YAML and of baton configs, glued at random. */
const TOKENS = [
  'listen:', 'pools:', 'routes:', 'admin:', 'proxy:', 'web:', 'api:', 'servers:', 'process:', 'docker:', 'size:',
  'port:', 'host:', 'rollout:', 'readiness:', 'maxSurge:', 'ports:', 'command:', 'image:', 'engines:', 'token:',
  '8080', '0', '-1', '99999', '1.5', '25%', '250ms', '5x', 'true', 'null', '~', '127.0.0.1:3000', '41000-41002',
  '${PORT}', '${X:-1}', '${Y:?no}', '$${Z}', '{port}', '{prot}', '__proto__', 'constructor', 'toString',
  '\n', '\n  ', '\n    ', '\n- ', '  ', ' ', '- ', ': ', ':', ',', '{', '}', '[', ']', '"', "'", '#', '&a ', '*a',
  '<<: *a', '<<: ', '? ', '!!int ', '!!map ', '---', '...', '|', '>', '\t', '\r\n', '%YAML 1.2', '@', '`', '\u00e9', '\ufeff'
]
const yamlish = fc.array(fc.constantFrom(...TOKENS), { maxLength: 60 }).map(t => t.join(''))

const SPEC_OBJECT = parse(SPEC_EXAMPLE) as Record<string, unknown>

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

/** Every key path of a plain object, leaves and branches. */
function paths (v: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (v === null || typeof v !== 'object') return [prefix]
  const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v)
  return [prefix, ...entries.flatMap(([k, x]) => paths(x, [...prefix, k]))]
}
const ALL_PATHS = paths(SPEC_OBJECT).filter(p => p.length > 0)

type Mutation = { kind: 'drop' | 'set' | 'rename', path: Array<string | number>, value: Json, name: string }

const randomValue: fc.Arbitrary<Json> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -100_000, max: 100_000 }),
  fc.double({ noNaN: true }),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('5x', '-1s', '0', '250%', '1h30m', 'SIGTERM', 'tcp://', 'unix:///', '::1:80', '{version}', '${HOME}'),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 })
)

const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('drop', 'set', 'rename'),
  path: fc.constantFrom(...ALL_PATHS),
  value: randomValue,
  name: fc.string({ minLength: 1, maxLength: 10 })
})

function apply (root: Record<string, unknown>, m: Mutation): void {
  let parent: unknown = root
  for (const seg of m.path.slice(0, -1)) {
    if (parent === null || typeof parent !== 'object') return
    parent = (parent as Record<string | number, unknown>)[seg]
  }
  if (parent === null || typeof parent !== 'object') return
  const node = parent as Record<string | number, unknown>
  const key = m.path[m.path.length - 1]
  if (!(key in node)) return
  if (m.kind === 'drop') {
    if (Array.isArray(node)) node.splice(Number(key), 1)
    else delete node[key]
  } else if (m.kind === 'set') {
    node[key] = m.value
  } else if (!Array.isArray(node)) {
    const v = node[key]
    delete node[key]
    node[m.name] = v
  }
}

describe('fuzzing parseConfig', () => {
  it('random YAML-ish text: only ConfigError, every problem positioned and worded', () => {
    fc.assert(fc.property(yamlish, text => checkProblems(text, outcome(text, { PORT: '8080' }))), { numRuns: RUNS })
  }, TIMEOUT)

  it('random text of any characters', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200, unit: 'binary' }), text => checkProblems(text, outcome(text))), { numRuns: RUNS })
  }, TIMEOUT)

  it('random mutations of the reference example: drop keys, wrong types, random strings and keys', () => {
    fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), muts => {
      const obj = structuredClone(SPEC_OBJECT)
      for (const m of muts) apply(obj, m)
      const text = stringify(obj)
      checkProblems(text, outcome(text))
    }), { numRuns: RUNS })
  }, TIMEOUT)

  it('a wrong-typed value anywhere is reported at its own key path', () => {
    // A map where the example has a scalar or a list is always wrong, and the
    // problem names that key (or a key under it).
    const leaves = ALL_PATHS.filter(p => {
      let v: unknown = SPEC_OBJECT
      for (const s of p) v = (v as Record<string | number, unknown>)[s]
      return v === null || typeof v !== 'object'
    })
    fc.assert(fc.property(fc.constantFrom(...leaves), path => {
      const obj = structuredClone(SPEC_OBJECT)
      apply(obj, { kind: 'set', path, value: { zz: 1 }, name: '' })
      const text = stringify(obj)
      const problems = outcome(text)
      checkProblems(text, problems)
      const dotted = path.join('.')
      expect(problems.some(p => p.path === dotted || p.path.startsWith(dotted + '.')), `${dotted} in\n${problems.map(p => `${p.line}:${p.col} ${p.path}: ${p.message}`).join('\n')}`).toBe(true)
    }), { numRuns: Math.min(RUNS, 200) })
  }, TIMEOUT)
})
