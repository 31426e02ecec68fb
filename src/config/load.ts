import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { LineCounter, parseDocument, type YAMLError } from 'yaml'
import { crossCheck, type Report } from './check.js'
import { DEFAULTS } from './defaults.js'
import { ConfigError, type ConfigProblem } from './errors.js'
import { friendlyErrors, issueMessage } from './messages.js'
import { configSchema, type RawConfig } from './schema.js'
import { locate, pathAt, prepare, substituteEnv, unclosedFlowStart, type PathSegment, type Substitution } from './source.js'
import { loadCertificates } from './tls-files.js'
import type { CertificateConfig, Config, ListenConfig, PoolConfig } from './types.js'

export { isLoopback } from './check.js'

/** Aliases a config may use: plenty for anchors and merges, too few for a billion-laughs document. */
const MAX_ALIASES = 100

/** Reads, validates and normalises a config file; throws ConfigError listing every problem. */
export function loadConfigFile (file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const why = e.code === 'ENOENT'
      ? 'no such file'
      : e.code === 'EISDIR' ? 'it is a directory' : e.code === 'EACCES' ? 'permission denied' : (e.code ?? e.message)
    throw new ConfigError([{ file, line: 1, col: 1, path: '', message: `cannot read the config file: ${why}` }])
  }
  return parseConfig(text, file, env)
}

function yamlMessage (e: YAMLError): string {
  const first = e.message.split('\n')[0]
  if (e.code === 'DUPLICATE_KEY') return 'duplicate key: a key may appear only once in a map'
  return `invalid YAML: ${first}`
}

/** Validates and normalises config text; throws ConfigError listing every problem, sorted by position. */
export function parseConfig (text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, merge: true, logLevel: 'silent', keepSourceTokens: true })
  const problems: ConfigProblem[] = []
  const warnings: ConfigProblem[] = []
  const placeIn = (list: ConfigProblem[]) => (offset: number, path: PathSegment[], message: string): void => {
    const { line, col } = lineCounter.linePos(Math.max(0, Math.min(offset, text.length)))
    list.push({ file, line: Math.max(1, line), col: Math.max(1, col), path: path.join('.'), message })
  }
  const at = placeIn(problems)
  const fail = (): never => {
    problems.sort((a, b) => a.line - b.line || a.col - b.col)
    const seen = new Set<string>()
    throw new ConfigError(problems.filter(p => {
      const key = `${p.line}:${p.col}:${p.path}:${p.message}`
      return seen.has(key) ? false : (seen.add(key), true)
    }))
  }

  // YAML errors first: when the file does not parse, nothing else can be trusted.
  for (const e of doc.errors) {
    const flow = /^Flow (sequence|map) in block collection/.exec(e.message)
    const opened = flow === null ? undefined : unclosedFlowStart(doc, e.pos[0], flow[1] === 'map' ? 'map' : 'seq')
    if (opened !== undefined) {
      const [open, close] = flow?.[1] === 'map' ? ['{', '}'] : ['[', ']']
      at(opened, pathAt(doc, opened), `invalid YAML: this ${open} is not closed (a ${close} is missing, or the next line is not indented enough)`)
    } else {
      at(e.pos[0], e.code === 'DUPLICATE_KEY' ? pathAt(doc, e.pos[0]) : [], yamlMessage(e))
    }
  }
  if (problems.length > 0) fail()
  // Paths whose value is gone (an alias to nothing, a failed ${VAR:?message}):
  // their problem is said once, not again as "is required".
  const unresolved = new Set<string>()
  prepare(doc, (path, offset, message, dropped) => {
    at(offset, path, message)
    if (dropped) unresolved.add(path.join('.'))
  })
  if (unresolved.has('')) fail()

  let js: unknown
  try {
    js = doc.toJS({ maxAliasCount: MAX_ALIASES })
  } catch (err) {
    at(0, [], `invalid YAML: ${(err as Error).message}`)
    fail()
  }

  const notes = new Map<string, Substitution>()
  const report: Report = (path, message, opts = {}) => {
    if (unresolved.has(path.join('.'))) return
    const sub = notes.get(path.join('.'))
    const note = sub === undefined
      ? ''
      : sub.unset.length > 0
        ? ` (from ${sub.written}: ${sub.unset.join(', ')} ${sub.unset.length === 1 ? 'is' : 'are'} not set)`
        : ` (from ${sub.written})`
    at(locate(doc, opts.at ?? path, opts.atKey), path, message + note)
  }
  const raw = substituteEnv(js ?? {}, env, notes, (path, message) => {
    report(path, message)
    unresolved.add(path.join('.'))
  })

  const parsed = configSchema.safeParse(raw, { error: friendlyErrors })
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((s): s is PathSegment => typeof s !== 'symbol')
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) report([...path, key], 'unknown key', { atKey: true })
      } else {
        const { present, value } = valueAt(raw, path)
        report(path, issueMessage(issue, present, value), { atKey: issue.code === 'invalid_key' })
      }
    }
  }
  crossCheck(raw, report)
  const warnAt = placeIn(warnings)
  const certificates = loadCertificates(raw, dirname(file), report, (path, message) => warnAt(locate(doc, path), path, message))
  if (problems.length > 0 || !parsed.success) return fail()
  warnings.sort((a, b) => a.line - b.line || a.col - b.col)
  return normalise(parsed.data, file, certificates, warnings)
}

/** stdout and stderr as they are; a file path made absolute against the config file's folder (so reload and reopen find it whatever the working directory). */
function accessLogConfig (path: string | undefined, file: string): { path: string } | undefined {
  if (path === undefined) return undefined
  return { path: path === 'stdout' || path === 'stderr' ? path : resolve(dirname(file), path) }
}

function valueAt (root: unknown, path: PathSegment[]): { present: boolean, value: unknown } {
  let v = root
  for (const seg of path) {
    if (v === null || typeof v !== 'object' || !Object.prototype.hasOwnProperty.call(v, seg)) return { present: false, value: undefined }
    v = (v as Record<string, unknown>)[seg]
  }
  return { present: v !== undefined, value: v }
}

function normalise (cfg: RawConfig, file: string, certificates: Map<string, CertificateConfig>, warnings: ConfigProblem[]): Config {
  // No prototype: a lookup of a pool named like an Object method (`constructor`) finds only pools.
  const pools: Record<string, PoolConfig> = Object.create(null) as Record<string, PoolConfig>
  for (const [name, p] of Object.entries(cfg.pools)) {
    const common = { name, balance: p.balance, version: p.version, rollout: p.rollout }
    // crossCheck made sure each pool has exactly one kind, and a size when managed.
    if (p.process !== undefined) {
      pools[name] = { ...common, kind: 'process', size: p.size ?? 1, process: p.process, readiness: p.readiness ?? { ...DEFAULTS.readiness } }
    } else if (p.docker !== undefined) {
      pools[name] = { ...common, kind: 'docker', size: p.size ?? 1, docker: p.docker, readiness: p.readiness ?? { ...DEFAULTS.readiness } }
    } else {
      const servers = p.servers ?? []
      pools[name] = { ...common, kind: 'static', size: servers.length, servers, readiness: p.readiness }
    }
  }
  const routes = cfg.routes ?? [{ match: { pathPrefix: '/' }, pool: Object.keys(pools)[0] }]
  const admin = cfg.admin.listen
  return {
    file,
    workers: cfg.workers,
    upgrade: { timeout: cfg.upgrade.timeout, drainTimeout: cfg.upgrade.drainTimeout },
    listen: cfg.listen.map((l, i) => listenConfig(l, i, certificates)),
    admin: { host: admin.host, port: admin.port, token: cfg.admin.token },
    proxy: {
      timeouts: cfg.proxy.timeouts,
      retries: cfg.proxy.retries,
      maxHeaderSize: cfg.proxy.maxHeaderSize,
      accessLog: accessLogConfig(cfg.accessLog?.path, file)
    },
    routes: routes.map(r => ({
      host: r.match.host?.toLowerCase(),
      pathPrefix: r.match.pathPrefix,
      pool: r.pool
    })),
    pools,
    warnings
  }
}

/** A listener as the proxy takes it: TLS with its certificates read (loadCertificates found each), HTTP/2 on by default there. */
function listenConfig (l: RawConfig['listen'][number], i: number, certificates: Map<string, CertificateConfig>): ListenConfig {
  if (l.tls === undefined) return l.redirect === undefined ? { host: l.host, port: l.port } : { host: l.host, port: l.port, redirect: l.redirect }
  // A pair that did not load was reported: this config was refused before here.
  const certs = l.tls.certificates.flatMap((_, j) => certificates.get(`${i}.${j}`) ?? [])
  return {
    host: l.host,
    port: l.port,
    tls: { certificates: certs, minVersion: l.tls.minVersion },
    http2: l.http2 ?? true
  }
}
