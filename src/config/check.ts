import { resolveScaled } from './duration.js'
import { adminSchema, canaryStepSchema, listenerSchema, poolSchema, rolloutSchema } from './schema.js'
import { canaryInstances } from '../rollout/planner.js'
import type { PathSegment } from './source.js'

/**
 * How a problem is reported: `path` is the key path printed; `at` (default
 * `path`) where it points in the file; `atKey` points at the key, not its value.
 */
export type Report = (path: PathSegment[], message: string, opts?: { at?: PathSegment[], atKey?: boolean }) => void

type Raw = Record<string, unknown>
const asMap = (v: unknown): Raw | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Raw : undefined
const has = (m: Raw, k: string): boolean => Object.prototype.hasOwnProperty.call(m, k)
const KINDS = ['process', 'docker', 'servers']

export function isLoopback (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h)
}

const isWildcard = (host: string): boolean => host === '0.0.0.0' || host === '::' || host === ''

/**
 * Checks that need more than one key at a time. They run on the raw
 * (substituted) config, each on whatever parts of it are valid, so that one
 * bad key does not hide the problems of the rest.
 */
export function crossCheck (raw: unknown, report: Report): void {
  const root = asMap(raw)
  if (root === undefined) return
  const pools = asMap(root.pools)
  const names = pools === undefined ? [] : Object.keys(pools)
  if (pools !== undefined && names.length === 0) report(['pools'], 'needs at least one pool')
  for (const name of names) {
    // zod's record skips this key without a word (prototype safety): say it here.
    if (name === '__proto__') report(['pools', name], 'pool names use letters, digits, - and _ (at most 63, starting with a letter or digit)', { atKey: true })
    else checkPool(name, pools?.[name], report)
  }

  if (has(root, 'routes') && Array.isArray(root.routes)) {
    root.routes.forEach((r, i) => {
      const pool = asMap(r)?.pool
      if (typeof pool === 'string' && pools !== undefined && !has(pools, pool)) {
        report(['routes', i, 'pool'], `no pool named "${pool}" (pools: ${names.join(', ')})`)
      }
    })
  } else if (!has(root, 'routes') && names.length > 1) {
    report(['routes'], `is required when there are several pools (${names.join(', ')}): say which requests go to which`, { at: ['pools'], atKey: true })
  }

  if (Array.isArray(root.listen)) checkListenerKinds(root.listen, report)

  // Listeners and the admin API must not fight over a port.
  const bound: Array<{ host: string, port: number, path: PathSegment[] }> = []
  const conflict = (host: string, port: number): (typeof bound)[number] | undefined =>
    port === 0 ? undefined : bound.find(b => b.port === port && (b.host === host || isWildcard(b.host) || isWildcard(host)))
  if (Array.isArray(root.listen)) {
    root.listen.forEach((l, i) => {
      const parsed = listenerSchema.safeParse(l)
      if (!parsed.success) return
      const { host, port } = parsed.data
      const other = conflict(host, port)
      if (other !== undefined) report(['listen', i, 'port'], `${host}:${port} is already taken by ${other.path.join('.')} (${other.host}:${other.port})`)
      bound.push({ host, port, path: ['listen', i] })
    })
  }
  const admin = adminSchema.safeParse(root.admin ?? {})
  if (admin.success) {
    const hp = admin.data.listen
    const other = conflict(hp.host, hp.port)
    const written = has(asMap(root.admin) ?? {}, 'listen')
    if (other !== undefined) {
      if (written) report(['admin', 'listen'], `port ${hp.port} is already taken by ${other.path.join('.')}`)
      else {
        report(['admin', 'listen'], `the admin API's default address ${hp.written} is already taken by ${other.path.join('.')}: set admin.listen`,
          { at: [...other.path, 'port'] })
      }
    }
    if (!isLoopback(hp.host) && admin.data.token === undefined) {
      report(['admin', 'listen'], 'the admin API listens off loopback, so admin.token is required')
    }
  }
}

/** tls:, http2: and redirect: together (README "TLS"): HTTP/2 only over TLS, a redirect only in plain HTTP and only to a TLS listener. */
function checkListenerKinds (listen: unknown[], report: Report): void {
  const anyTls = listen.some(l => asMap(l)?.tls !== undefined)
  listen.forEach((raw, i) => {
    const l = asMap(raw)
    if (l === undefined) return
    const tls = l.tls !== undefined
    if (l.http2 === true && !tls) {
      report(['listen', i, 'http2'], 'HTTP/2 needs tls: on this listener (baton does not speak HTTP/2 in cleartext, h2c)', { atKey: true })
    }
    // Another value is the schema's to refuse.
    if (l.redirect !== 'https') return
    if (tls) report(['listen', i, 'redirect'], 'a redirect listener answers in plain HTTP: it cannot have tls: too', { atKey: true })
    else if (has(l, 'http2')) report(['listen', i, 'http2'], 'a redirect listener answers in plain HTTP/1.1: http2: does not apply', { atKey: true })
    if (!anyTls) report(['listen', i, 'redirect'], 'redirect: https needs a listener with tls: to send clients to (there is none)', { atKey: true })
  })
}

function checkPool (name: string, raw: unknown, report: Report): void {
  const p = asMap(raw)
  if (p === undefined) return
  const kinds = Object.keys(p).filter(k => KINDS.includes(k))
  if (kinds.length === 0) {
    report(['pools', name], 'a pool needs one of process:, docker: or servers:', { atKey: true })
    return
  }
  if (kinds.length > 1) {
    for (const k of kinds.slice(1)) {
      report(['pools', name, k], `a pool has exactly one of process:, docker: or servers: (this one also has ${kinds[0]}:)`, { atKey: true })
    }
    return
  }
  if (kinds[0] === 'servers') {
    if (has(p, 'size')) {
      report(['pools', name, 'size'], 'size: is for managed pools (process: or docker:); a static pool has one instance per server', { atKey: true })
    }
  } else if (!has(p, 'size')) {
    report(['pools', name, 'size'], `is required for a managed pool (${kinds[0]}:)`)
  }
  const docker = kinds[0] === 'docker' ? asMap(p.docker) : undefined
  if (docker !== undefined) {
    if (docker.network === 'host' && !has(docker, 'ports')) {
      report(['pools', name, 'docker', 'ports'], 'is required with network: host (each container gets a free port of this range as {port})')
    } else if (docker.network !== 'host' && !has(docker, 'port')) {
      report(['pools', name, 'docker', 'port'], "is required (the app's port inside the container, published on a free host port)")
    }
  }

  // Each check on the parts it needs, so one bad key elsewhere in the pool hides nothing.
  const size = poolSchema.shape.size.safeParse(p.size).data
  const readiness = p.readiness === undefined ? undefined : poolSchema.shape.readiness.safeParse(p.readiness).data
  if (readiness !== undefined && readiness.timeout > readiness.startTimeout) {
    report(['pools', name, 'readiness', 'timeout'], 'the probe timeout is longer than startTimeout')
  }
  const r = asMap(p.rollout) ?? {}
  const strategy = rolloutSchema.shape.strategy.safeParse(r.strategy).data
  const canary = rolloutSchema.shape.canary.safeParse(r.canary).data
  if (strategy === 'canary' && r.canary === undefined) {
    report(['pools', name, 'rollout', 'canary'], 'is required with strategy: canary (its steps: - { weight: 5, pause: 30s })', { at: ['pools', name, 'rollout', 'strategy'] })
  }
  if (kinds[0] === 'servers' && strategy !== undefined && strategy !== 'rolling') {
    report(['pools', name, 'rollout', 'strategy'], `${strategy} is for managed pools (process: or docker:): static servers are not rolled out`)
  }
  checkWeights(asMap(r.canary)?.steps, ['pools', name, 'rollout', 'canary', 'steps'], report)
  const maxSurge = rolloutSchema.shape.maxSurge.safeParse(r.maxSurge).data
  const maxUnavailable = rolloutSchema.shape.maxUnavailable.safeParse(r.maxUnavailable).data
  if (kinds[0] === 'servers' || size === undefined || maxSurge === undefined || maxUnavailable === undefined) return
  const surge = resolveScaled(maxSurge, size, 'up')
  const unavailable = resolveScaled(maxUnavailable, size, 'down')
  if (surge === 0 && unavailable === 0) {
    report(['pools', name, 'rollout', 'maxSurge'],
      `maxSurge and maxUnavailable are both 0 for size ${size}: a rollout could never move (raise one of them)`)
  }
  const ports = kinds[0] === 'docker'
    ? (docker?.network === 'host' ? poolSchema.shape.docker.unwrap().shape.ports.safeParse(docker.ports).data : undefined)
    : poolSchema.shape.process.safeParse(p.process).data?.ports
  // What runs at once beside the size: the surge; a canary's largest step; a blue-green's whole new set.
  const extra = strategy === 'blueGreen'
    ? { n: size, why: 'size × 2 (strategy: blueGreen)' }
    : strategy === 'canary' && canary !== undefined && canaryInstances(size, Math.max(...canary.steps.map(st => st.weight))) > surge
      ? { n: canaryInstances(size, Math.max(...canary.steps.map(st => st.weight))), why: 'size + the largest canary step' }
      : { n: surge, why: 'size + maxSurge' }
  if (ports !== undefined && ports.to - ports.from + 1 < size + extra.n) {
    report(['pools', name, kinds[0], 'ports'],
      `the range has ${plural(ports.to - ports.from + 1, 'port')} but ${extra.why} needs ${size + extra.n}`)
  }
}

/** A canary's weights must not go down from one step to the next (each valid step against the last valid one). */
function checkWeights (steps: unknown, path: PathSegment[], report: Report): void {
  if (!Array.isArray(steps)) return
  let last: number | undefined
  steps.forEach((raw, i) => {
    const weight = canaryStepSchema.shape.weight.safeParse(asMap(raw)?.weight).data
    if (weight === undefined) return
    if (last !== undefined && weight < last) {
      report([...path, i, 'weight'], `weights must not go down from step to step (the one before has ${last})`)
    }
    last = weight
  })
}

const plural = (n: number, one: string): string => `${n} ${one}${n === 1 ? '' : 's'}`
