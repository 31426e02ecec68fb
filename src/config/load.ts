import { readFileSync } from 'node:fs'
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml'
import { DEFAULTS } from './defaults.js'
import { resolveScaled } from './duration.js'
import { ConfigError, type ConfigProblem } from './errors.js'
import { configSchema, type RawConfig } from './schema.js'
import type { Config, PoolConfig } from './types.js'

type PathSegment = string | number

/** Reads, validates and normalises a config file; throws ConfigError listing every problem. */
export function loadConfigFile (file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    throw new ConfigError([{ file, line: 1, col: 1, path: '', message: `cannot read the file (${e.code ?? e.message})` }])
  }
  return parseConfig(text, file, env)
}

export function parseConfig (text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const problems: ConfigProblem[] = []
  const at = (offset: number, path: string, message: string): void => {
    const { line, col } = lineCounter.linePos(offset)
    problems.push({ file, line, col, path, message })
  }

  for (const e of doc.errors) at(e.pos[0], '', e.message.split('\n')[0])
  if (problems.length > 0) throw new ConfigError(problems)

  const report = (path: PathSegment[], message: string, unknownKey?: string): void => {
    const offset = locateIn(doc, path, unknownKey)
    const full = unknownKey === undefined ? path : [...path, unknownKey]
    at(offset, full.join('.'), message)
  }

  const raw = substituteEnv(doc.toJS() ?? {}, env, [], report)
  const parsed = configSchema.safeParse(raw)
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((s): s is PathSegment => typeof s !== 'symbol')
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) report(path, 'unknown key', key)
      } else {
        report(path, issue.message)
      }
    }
  } else {
    crossCheck(parsed.data, report)
  }
  if (problems.length > 0) {
    problems.sort((a, b) => a.line - b.line || a.col - b.col)
    throw new ConfigError(problems)
  }
  return normalise(parsed.data!, file)
}

type Report = (path: PathSegment[], message: string, unknownKey?: string) => void

/** Checks that need more than one key at a time. */
function crossCheck (cfg: RawConfig, report: Report): void {
  for (const [name, pool] of Object.entries(cfg.pools)) {
    const kinds = (['process', 'docker', 'servers'] as const).filter(k => pool[k] !== undefined)
    if (kinds.length !== 1) {
      report(['pools', name], kinds.length === 0
        ? 'a pool needs one of process:, docker: or servers:'
        : `a pool has exactly one of process:, docker: or servers: (found ${kinds.join(', ')})`)
      continue
    }
    if (pool.servers === undefined && pool.size === undefined) {
      report(['pools', name], 'a managed pool needs size:')
      continue
    }
    const size = pool.size ?? pool.servers?.length ?? 1
    const surge = resolveScaled(pool.rollout.maxSurge, size, 'up')
    const unavailable = resolveScaled(pool.rollout.maxUnavailable, size, 'down')
    if (surge === 0 && unavailable === 0) {
      report(['pools', name, 'rollout', 'maxSurge'], 'maxSurge and maxUnavailable are both 0: a rollout could never move')
    }
    if (pool.process !== undefined) {
      const { from, to } = pool.process.ports
      if (to - from + 1 < size + surge) {
        report(['pools', name, 'process', 'ports'], `the range has ${to - from + 1} ports but size + maxSurge needs ${size + surge}`)
      }
    }
    if (pool.readiness !== undefined && pool.readiness.timeout > pool.readiness.startTimeout) {
      report(['pools', name, 'readiness', 'timeout'], 'the probe timeout is longer than startTimeout')
    }
  }
  const routes = cfg.routes ?? []
  routes.forEach((r, i) => {
    if (cfg.pools[r.pool] === undefined) report(['routes', i, 'pool'], `no pool named "${r.pool}"`)
  })
  if (cfg.routes === undefined && Object.keys(cfg.pools).length !== 1) {
    report([], 'routes: is needed when there is not exactly one pool')
  }
  const host = cfg.admin.listen.slice(0, cfg.admin.listen.lastIndexOf(':'))
  if (!isLoopback(host) && cfg.admin.token === undefined) {
    report(['admin', 'listen'], 'the admin API listens off loopback, so admin.token is required')
  }
  const seen = new Set<string>()
  cfg.listen.forEach((l, i) => {
    const key = `${l.host}:${l.port}`
    if (l.port !== 0 && seen.has(key)) report(['listen', i, 'port'], `${key} is listed twice`)
    seen.add(key)
  })
}

export function isLoopback (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h)
}

function normalise (cfg: RawConfig, file: string): Config {
  const pools: Record<string, PoolConfig> = {}
  for (const [name, p] of Object.entries(cfg.pools)) {
    const kind = p.process !== undefined ? 'process' : p.docker !== undefined ? 'docker' : 'static'
    pools[name] = {
      name,
      kind,
      size: p.size ?? p.servers?.length ?? 1,
      balance: p.balance,
      version: p.version,
      process: p.process,
      docker: p.docker,
      servers: p.servers,
      // Managed pools always probe readiness (G2); static ones only when asked.
      readiness: p.readiness ?? (kind === 'static' ? undefined : { ...DEFAULTS.readiness }),
      rollout: p.rollout
    }
  }
  const routes = cfg.routes ?? [{ match: { pathPrefix: '/' }, pool: Object.keys(pools)[0] }]
  const adminSep = cfg.admin.listen.lastIndexOf(':')
  return {
    file,
    listen: cfg.listen.map(l => ({ host: l.host, port: l.port })),
    admin: {
      host: cfg.admin.listen.slice(0, adminSep).replace(/^\[|\]$/g, ''),
      port: Number(cfg.admin.listen.slice(adminSep + 1)),
      token: cfg.admin.token
    },
    proxy: { timeouts: cfg.proxy.timeouts, retries: cfg.proxy.retries, maxHeaderSize: cfg.proxy.maxHeaderSize },
    routes: routes.map(r => ({
      host: r.match.host?.toLowerCase(),
      pathPrefix: r.match.pathPrefix,
      pool: r.pool
    })),
    pools
  }
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g
const WHOLE_REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/

/**
 * Replaces ${VAR} and ${VAR:-default} in every string. A value that was a
 * single reference and reads as a number or boolean becomes one, so that
 * `port: ${PORT:-8080}` validates as a port.
 */
function substituteEnv (value: unknown, env: NodeJS.ProcessEnv, path: PathSegment[], report: Report): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value
    const out = value.replace(ENV_REF, (_m, name: string, dflt: string | undefined) => {
      const v = env[name]
      return v !== undefined && v !== '' ? v : (dflt ?? '')
    })
    if (WHOLE_REF.test(value)) {
      if (/^-?\d+(\.\d+)?$/.test(out)) return Number(out)
      if (out === 'true' || out === 'false') return out === 'true'
    }
    return out
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, [...path, i], report))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = substituteEnv(v, env, [...path, k], report)
    return out
  }
  return value
}

/** Finds the source offset of a key path; for an unknown key, of the key itself. */
function locateIn (doc: Document, path: PathSegment[], unknownKey?: string): number {
  let node: Node | null | undefined = doc.contents as Node | null
  let offset = node?.range?.[0] ?? 0
  const segments = unknownKey === undefined ? path : [...path, unknownKey]
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]
    const last = i === segments.length - 1
    if (isMap(node)) {
      const pair = node.items.find(p => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg))
      if (pair === undefined) return offset
      const keyNode = pair.key as Node | null
      // Point at the key when it is the last segment of an unknown key or when
      // its value is missing; otherwise descend into the value.
      if ((last && unknownKey !== undefined) || pair.value === null || pair.value === undefined) {
        return keyNode?.range?.[0] ?? offset
      }
      node = pair.value as Node
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined
      if (item === undefined) return offset
      node = item
    } else {
      return offset
    }
    offset = node?.range?.[0] ?? offset
  }
  return offset
}
