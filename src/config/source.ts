import { isAlias, isMap, isScalar, isSeq, Scalar, visit, type Document, type Node } from 'yaml'

// The YAML side of config loading: finding where a key path sits in the file,
// which key path an offset falls in, keeping text fields as written, and
// ${VAR} substitution.

export type PathSegment = string | number

/** Deeper than any config: a walk stops here rather than recursing on a hostile document. */
const MAX_DEPTH = 64

function keyName (key: unknown): string {
  // A merge key's value is a symbol; its name is what was written: <<
  if (isScalar(key)) return typeof key.value === 'symbol' ? String(key.source ?? '<<') : String(key.value)
  return String(key)
}

/**
 * The source offset of a key path: of its value, or of the key itself with
 * `atKey` (unknown keys, bad pool names). When part of the path is missing
 * (a required key), the key that should hold it.
 */
export function locate (doc: Document, path: readonly PathSegment[], atKey = false): number {
  let node: Node | null | undefined = doc.contents as Node | null
  let offset = node?.range?.[0] ?? 0
  // For a missing key: point at the key whose value should contain it.
  let holder = 0
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]
    const last = i === path.length - 1
    if (isMap(node)) {
      const pair = node.items.find(p => keyName(p.key) === String(seg))
      if (pair === undefined) return holder
      const keyOffset = (pair.key as Node | null)?.range?.[0] ?? offset
      // An empty value (`web:`) has no text of its own: point at its key.
      const empty = pair.value === null || pair.value === undefined || (isScalar(pair.value) && pair.value.value === null)
      if ((last && atKey) || empty) return keyOffset
      holder = keyOffset
      node = pair.value as Node
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined
      if (item === undefined) return offset
      node = item
      holder = node?.range?.[0] ?? offset
    } else {
      return offset
    }
    offset = node?.range?.[0] ?? offset
  }
  return offset
}

/** The deepest key path whose key or value spans `offset` (for YAML errors). */
export function pathAt (doc: Document, offset: number): PathSegment[] {
  const path: PathSegment[] = []
  let node = doc.contents as Node | null | undefined
  const within = (n: Node | null | undefined): boolean =>
    n?.range !== undefined && n.range !== null && offset >= n.range[0] && offset < Math.max(n.range[2], n.range[0] + 1)
  for (let depth = 0; depth < MAX_DEPTH && node !== null && node !== undefined; depth++) {
    if (isMap(node)) {
      const pair = node.items.find(p => within(p.key as Node) || within(p.value as Node))
      if (pair === undefined) break
      path.push(keyName(pair.key))
      if (!within(pair.value as Node)) break
      node = pair.value as Node
    } else if (isSeq(node)) {
      const i = node.items.findIndex(it => within(it as Node))
      if (i < 0) break
      path.push(i)
      node = node.items[i] as Node
    } else {
      break
    }
  }
  return path
}

/**
 * yaml reports an unclosed `[` or `{` where the next line starts; the operator
 * wants the bracket. The offset of the innermost flow collection of that kind
 * that has no closing bracket, ending where the error is, if any (needs the
 * document parsed with keepSourceTokens).
 */
export function unclosedFlowStart (doc: Document, errorOffset: number, kind: 'seq' | 'map'): number | undefined {
  let start: number | undefined
  const endType = kind === 'seq' ? 'flow-seq-end' : 'flow-map-end'
  const check = (n: Node & { srcToken?: { type: string, end?: Array<{ type: string }> } }): void => {
    const r = n.range
    if (r === null || r === undefined || r[2] !== errorOffset) return
    if (n.srcToken?.type !== 'flow-collection' || (n.srcToken.end ?? []).some(t => t.type === endType)) return
    if (start === undefined || r[0] > start) start = r[0]
  }
  visit(doc, {
    Seq (_, n) { if (kind === 'seq' && n.flow === true) check(n) },
    Map (_, n) { if (kind === 'map' && n.flow === true) check(n) }
  })
  return start
}

/** Fields read as text even when YAML would make them numbers (`version: 1.10`, `token: 0123`). */
const TEXT_PATHS = [
  ['pools', '*', 'version'],
  ['pools', '*', 'process', 'env', '*'],
  ['pools', '*', 'process', 'command', '*'],
  ['pools', '*', 'docker', 'env', '*'],
  ['admin', 'token'],
  ['routes', '*', 'pool']
]
const isTextPath = (path: PathSegment[]): boolean =>
  TEXT_PATHS.some(p => p.length === path.length && p.every((s, i) => s === '*' || s === path[i]))

/**
 * Walks the document before it becomes JS: plain scalars in text fields keep
 * their source text; a key that is not a plain scalar (`? [a, b]`) and an
 * alias to no anchor are reported and dropped (the alias becomes null), rather than silently
 * stringified or thrown from toJS. `dropped`: the value at `path` is gone.
 */
export function prepare (doc: Document, onProblem: (path: PathSegment[], offset: number, message: string, dropped: boolean) => void): void {
  const unresolved = (node: unknown, path: PathSegment[]): boolean => {
    if (!isAlias(node) || node.resolve(doc) !== undefined) return false
    onProblem(path, node.range?.[0] ?? 0, `*${node.source} refers to no &${node.source} anchor before it`, true)
    return true
  }
  const isMapLike = (n: unknown): boolean => isMap(n) || (isAlias(n) && isMap(n.resolve(doc)))
  const mergeable = (n: unknown): boolean => isMapLike(n) || (isSeq(n) && n.items.every(isMapLike))
  const walk = (node: unknown, path: PathSegment[], depth: number): void => {
    if (depth > MAX_DEPTH) return
    if (isMap(node)) {
      node.items = node.items.filter(pair => {
        if (!isScalar(pair.key) && pair.key !== null) {
          onProblem(path, (pair.key as Node).range?.[0] ?? 0, 'keys must be plain names, not lists or maps', false)
          return false
        }
        if (isScalar(pair.key) && typeof pair.key.value === 'symbol' && !mergeable(pair.value)) {
          onProblem([...path, '<<'], (pair.value as Node | null)?.range?.[0] ?? pair.key.range?.[0] ?? 0, '<< (merge) takes a map, an alias to one, or a list of them', false)
          return false
        }
        return true
      })
      for (const pair of node.items) {
        if (unresolved(pair.value, [...path, keyName(pair.key)])) pair.value = new Scalar(null)
        else walk(pair.value, [...path, keyName(pair.key)], depth + 1)
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        if (unresolved(item, [...path, i])) node.items[i] = new Scalar(null)
        else walk(item, [...path, i], depth + 1)
      })
    } else if (isScalar(node) && node.type === 'PLAIN' && typeof node.value !== 'string' &&
      node.value !== null && node.source !== undefined && isTextPath(path)) {
      node.value = node.source
    }
  }
  if (unresolved(doc.contents, [])) doc.contents = null
  walk(doc.contents, [], 0)
}

const ENV_REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}/g
const WHOLE_REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/

export interface Substitution {
  /** The text as written, e.g. `${PORT:-8080}`. */
  written: string
  /** Variables that were unset or empty and had no default. */
  unset: string[]
}

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string value; `${VAR:?message}`
 * is an error when VAR is unset or empty, and `$${` is a literal `${`. A value
 * that was a single reference and reads back exactly as a number or boolean
 * becomes one, so that `port: ${PORT:-8080}` validates as a port (but `1.10`
 * or `007` stay text). Records each substitution by path for error notes.
 */
export function substituteEnv (
  value: unknown,
  env: NodeJS.ProcessEnv,
  notes: Map<string, Substitution>,
  onError: (path: PathSegment[], message: string) => void,
  path: PathSegment[] = [],
  ancestors: Set<object> = new Set()
): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value
    const unset: string[] = []
    const out = value.replace(ENV_REF, (m: string, name: string | undefined, op: string | undefined, arg: string | undefined) => {
      if (name === undefined) return '${'
      const v = env[name]
      if (v !== undefined && v !== '') return v
      if (op === ':-') return arg ?? ''
      if (op === ':?') {
        onError(path, `${m}: ${name} is not set${arg !== undefined && arg !== '' ? ` (${arg})` : ''}`)
        return ''
      }
      unset.push(name)
      return ''
    })
    notes.set(path.join('.'), { written: value, unset })
    if (WHOLE_REF.test(value)) {
      if (/^-?\d+(\.\d+)?$/.test(out) && String(Number(out)) === out) return Number(out)
      if (out === 'true' || out === 'false') return out === 'true'
    }
    return out
  }
  if (value === null || typeof value !== 'object') return value
  if (ancestors.has(value)) {
    onError(path, 'a YAML alias refers to a node that contains it')
    return null
  }
  ancestors.add(value)
  try {
    if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, notes, onError, [...path, i], ancestors))
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      // defineProperty: a `__proto__` key stays a key (and is reported as unknown).
      Object.defineProperty(out, k, { value: substituteEnv(v, env, notes, onError, [...path, k], ancestors), enumerable: true, writable: true, configurable: true })
    }
    return out
  } finally {
    ancestors.delete(value)
  }
}
