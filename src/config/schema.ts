import { isIP } from 'node:net'
import { z } from 'zod'
import { DEFAULTS } from './defaults.js'
import { parseDuration } from './duration.js'

// The schema validates the config at the edge: what passes is fully typed,
// defaulted and normalised (durations in ms), so nothing downstream re-checks.
// Messages are written for the operator reading `baton check`; load.ts adds
// "is required" / "got ..." and rewrites zod's generic wording (messages.ts).

/** More proxy processes than this is a typo, not a machine: each is a Node process of ~40 MB. */
const MAX_WORKERS = 256

/** setTimeout overflows past 2^31-1 ms (~24.8 days) and fires at once: cap well below. */
const MAX_DURATION_MS = 86_400_000

/**
 * A duration such as `250ms`, `2s`, `5m`, `1h`, `1m30s`, or `0`. A bare number
 * other than 0 is refused: `5` could be seconds or milliseconds.
 */
const durationWith = (min: number): z.ZodType<number, string | number> =>
  z.union([z.string(), z.number()], { error: 'expected a duration such as 250ms, 2s or 5m' })
    .transform((value, ctx) => {
      const ms = typeof value === 'number' ? (value === 0 ? 0 : undefined) : parseDuration(value)
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: typeof value === 'number'
            ? `a bare number has no unit: write ${value}s or ${value}ms`
            : `"${value}" is not a duration (use e.g. 250ms, 2s, 5m, 1m30s)`
        })
        return z.NEVER
      }
      if (ms < min) {
        ctx.addIssue({ code: 'custom', message: 'must be longer than 0' })
        return z.NEVER
      }
      if (ms > MAX_DURATION_MS) {
        ctx.addIssue({ code: 'custom', message: 'must be at most 24h' })
        return z.NEVER
      }
      return ms
    })
/** May be 0 (e.g. slowStart: 0s, drainTimeout: 0s). */
const duration = durationWith(0)
/** Must be > 0: a zero timeout or probe interval makes no sense. */
const positiveDuration = durationWith(1)

const port = z.number({ error: 'expected a port number' }).int('expected a whole port number')
  .min(0, 'port must be 0-65535').max(65535, 'port must be 0-65535')

const wholeNumber = (what: string): z.ZodNumber =>
  z.number({ error: `expected a whole number of ${what}` }).int(`expected a whole number of ${what}`)

/** A count (`1`) or a percentage of the pool size (`25%`), as Kubernetes takes them. */
const scaledUpTo = (maxPct: number): z.ZodType<number | string, number | string> => z.union([
  wholeNumber('instances').min(0, 'must not be negative'),
  z.string().superRefine((s, ctx) => {
    if (!/^\d{1,3}%$/.test(s)) ctx.addIssue({ code: 'custom', message: 'expected a count or a percentage such as 25%' })
    else if (Number(s.slice(0, -1)) > maxPct) ctx.addIssue({ code: 'custom', message: `a percentage of at most ${maxPct}%` })
  })
], { error: 'expected a count or a percentage such as 25%' })
const scaled = scaledUpTo(999)

const HOSTNAME = /^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/

/** An IP address (IPv6 bare or in brackets) or a host name. */
export function isValidHost (host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (isIP(h) !== 0) return true
  return h.length <= 253 && !/^[\d.]+$/.test(h) && HOSTNAME.test(h)
}

/** Splits `host:port` / `[v6]:port`; an error message when it is not one. */
export function splitHostPort (s: string, minPort: number): { host: string, port: number } | string {
  const example = 'expected host:port such as 127.0.0.1:3000'
  const sep = s.lastIndexOf(':')
  if (sep < 0) return `${example} (no port in "${s}")`
  const host = s.slice(0, sep)
  const portText = s.slice(sep + 1)
  if (host.includes(':') && !host.startsWith('[')) return 'write an IPv6 address in brackets, e.g. [::1]:9901'
  if (host === '' || !isValidHost(host) || (host.startsWith('[') && isIP(host.slice(1, -1)) !== 6)) return `${example} ("${host}" is not a host)`
  if (!/^\d{1,5}$/.test(portText)) return `${example} ("${portText}" is not a port)`
  const p = Number(portText)
  if (p < minPort || p > 65535) return `port must be ${minPort}-65535`
  return { host: host.replace(/^\[|\]$/g, ''), port: p }
}

/** host:port, e.g. 127.0.0.1:9901 or [::1]:9901 */
const hostPort = (minPort: number): z.ZodString => z.string({ error: 'expected host:port such as 127.0.0.1:3000' })
  .superRefine((s, ctx) => {
    const r = splitHostPort(s, minPort)
    if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r })
  })

const PLACEHOLDER = /\{([A-Za-z_]+)\}/g

/** Edit distance with adjacent transpositions (optimal string alignment). */
function editDistance (a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
      // A swap of two neighbours (`prot`) is one edit.
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}

/**
 * Catches typos of `{port}` / `{version}` (`{Port}`, `{verison}`) and a
 * placeholder where it is not substituted, without flagging shell or awk
 * braces such as `{print}`.
 */
const placeholders = (allowed: string[]) => (s: string, ctx: z.RefinementCtx): void => {
  for (const [, name] of s.matchAll(PLACEHOLDER)) {
    if (allowed.includes(name)) continue
    const near = ['port', 'version'].find(p => name.toLowerCase() === p || editDistance(name.toLowerCase(), p) <= (p === 'port' ? 1 : 2))
    if (near === undefined) continue
    ctx.addIssue({
      code: 'custom',
      message: allowed.includes(near)
        ? `{${name}} is not a placeholder; did you mean {${near}}?`
        : `{${near}} is not substituted here (only ${allowed.map(a => `{${a}}`).join(' and ')})`
    })
  }
}
const template = (allowed: string[]): z.ZodString => z.string().superRefine(placeholders(allowed))

const stringish = z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string' }).transform(String)

const env = z.record(z.string(), stringish, { error: 'expected a map of NAME: value' })
const templatedEnv = z.record(z.string(), stringish.pipe(template(['port', 'version'])), { error: 'expected a map of NAME: value' })

const signal = z.enum(['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGKILL'], {
  error: 'expected a signal name: SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2 or SIGKILL'
})

const pemPath = z.string({ error: 'expected a path to a PEM file' }).min(1, 'expected a path to a PEM file')

/** A TLS listener's certificates (README "TLS"): the files are read and checked by tls-files.ts. */
const listenerTls = z.strictObject({
  certificates: z.array(z.strictObject({ cert: pemPath, key: pemPath }, { error: 'expected { cert: FILE, key: FILE }' }),
    { error: 'expected a list of { cert: FILE, key: FILE }' }).min(1, 'needs at least one certificate'),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3'], { error: 'expected TLSv1.2 or TLSv1.3' }).default(DEFAULTS.tls.minVersion)
}, { error: 'expected a map such as { certificates: [{ cert: FILE, key: FILE }] }' })

const listener = z.strictObject({
  port,
  host: z.string({ error: 'expected an address such as 0.0.0.0 or 127.0.0.1' })
    .refine(isValidHost, 'expected an address such as 0.0.0.0 or 127.0.0.1')
    .transform(h => h.replace(/^\[|\]$/g, ''))
    .default(DEFAULTS.listenHost),
  tls: listenerTls.optional(),
  // Defaults to true on a TLS listener (normalise in load.ts); check.ts refuses it without tls.
  http2: z.boolean({ error: 'expected true or false' }).optional(),
  redirect: z.enum(['https'], { error: 'expected https (the only redirect baton makes)' }).optional()
})

/** host:port read into its parts, as written kept for messages. */
const address = (minPort: number) => z.string({ error: 'expected host:port such as 127.0.0.1:3000' })
  .transform((s, ctx) => {
    const r = splitHostPort(s, minPort)
    if (typeof r === 'string') {
      ctx.addIssue({ code: 'custom', message: r })
      return z.NEVER
    }
    return { ...r, written: s }
  })

const admin = z.strictObject({
  listen: address(0).prefault(DEFAULTS.adminListen),
  token: z.string({ error: 'expected a string' }).optional().transform(t => (t === undefined || t === '' ? undefined : t))
})

const timeouts = z.strictObject({
  connect: positiveDuration.default(DEFAULTS.proxy.timeouts.connect),
  headers: positiveDuration.default(DEFAULTS.proxy.timeouts.headers),
  idle: positiveDuration.default(DEFAULTS.proxy.timeouts.idle),
  upstream: positiveDuration.default(DEFAULTS.proxy.timeouts.upstream),
  body: positiveDuration.default(DEFAULTS.proxy.timeouts.body)
})

const proxy = z.strictObject({
  timeouts: timeouts.prefault({}),
  retries: wholeNumber('retries').min(0, 'must not be negative').max(10, 'at most 10').default(DEFAULTS.proxy.retries),
  maxHeaderSize: wholeNumber('bytes').min(1024, 'at least 1024').max(1_048_576, 'at most 1 MiB').default(DEFAULTS.proxy.maxHeaderSize)
})

const accessLog = z.strictObject({
  path: z.string({ error: 'expected stdout, stderr or a file path' }).min(1, 'expected stdout, stderr or a file path')
    .refine(p => !p.endsWith('/'), 'expected a file path, not a folder')
}, { error: 'expected a map such as { path: stdout }' })

const routeMatch = z.strictObject({
  host: z.string().min(1).regex(/^(\*\.)?[A-Za-z0-9_.-]+$/, 'expected a host name, or *.domain').optional(),
  pathPrefix: z.string().startsWith('/', 'must start with /').optional()
})

const route = z.strictObject({
  match: routeMatch.prefault({}),
  pool: z.string({ error: 'expected a pool name' })
})

const readiness = z.strictObject({
  path: z.string().startsWith('/', 'must start with /').default(DEFAULTS.readiness.path),
  interval: positiveDuration.default(DEFAULTS.readiness.interval),
  timeout: positiveDuration.default(DEFAULTS.readiness.timeout),
  successThreshold: wholeNumber('probes').min(1, 'at least 1').default(DEFAULTS.readiness.successThreshold),
  failureThreshold: wholeNumber('probes').min(1, 'at least 1').default(DEFAULTS.readiness.failureThreshold),
  startTimeout: positiveDuration.default(DEFAULTS.readiness.startTimeout)
})

/** A percentage such as `1%` or `0.5%`, as a fraction; a bare number is refused (1 could be 1% or 100%). */
const percentage = z.union([z.string(), z.number()], { error: 'expected a percentage such as 1%' })
  .transform((v, ctx) => {
    if (typeof v === 'number' || !/^\d{1,3}(\.\d+)?%$/.test(v)) {
      ctx.addIssue({ code: 'custom', message: typeof v === 'number' ? `a bare number is ambiguous: write ${v}%` : 'expected a percentage such as 1% or 0.5%' })
      return z.NEVER
    }
    const pct = Number(v.slice(0, -1))
    if (pct > 100) {
      ctx.addIssue({ code: 'custom', message: 'a percentage of at most 100%' })
      return z.NEVER
    }
    return pct / 100
  })

/** A canary step's pause: a duration, or `manual` (until `baton resume`). */
const pause = z.union([z.string(), z.number()], { error: 'expected a duration such as 30s, or manual' })
  .transform((v, ctx): number | 'manual' => {
    if (v === 'manual') return 'manual'
    const ms = typeof v === 'string' ? parseDuration(v) : undefined
    const r = positiveDuration.safeParse(v)
    if (!r.success) {
      const message = typeof v === 'string' && ms === undefined ? `"${v}" is neither a duration (such as 30s) nor manual` : `${r.error.issues[0].message} (or manual)`
      ctx.addIssue({ code: 'custom', message })
      return z.NEVER
    }
    return r.data
  })

const canaryStep = z.strictObject({
  weight: z.number({ error: 'expected a percentage of requests (0-100) such as 5' }).min(0, 'must be 0-100').max(100, 'must be 0-100'),
  pause
})

const canary = z.strictObject({
  steps: z.array(canaryStep, { error: 'expected a list of steps such as - { weight: 5, pause: 30s }' })
    // That weights do not go down is checked in check.ts, on whichever steps are valid.
    .min(1, 'needs at least one step').max(DEFAULTS.canary.maxSteps, `takes at most ${DEFAULTS.canary.maxSteps} steps`),
  // Judged at the end of every pause; a limit left out is not checked.
  analysis: z.strictObject({
    minRequests: wholeNumber('requests').min(0, 'must not be negative').default(DEFAULTS.canary.minRequests),
    maxErrorRate: percentage.optional(),
    maxP99Ratio: z.number({ error: 'expected a ratio such as 1.5' }).positive('must be greater than 0').optional()
  }).prefault({}),
  header: z.string({ error: 'expected a header name such as x-baton-canary' })
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected a header name such as x-baton-canary')
    .transform(h => h.toLowerCase()).optional()
})

const blueGreen = z.strictObject({
  // A route to the new revision before the switch, checked before routes:.
  previewRoute: routeMatch.refine(m => m.host !== undefined || m.pathPrefix !== undefined, 'needs a host or a pathPrefix').optional(),
  scaleDownDelay: duration.default(DEFAULTS.blueGreen.scaleDownDelay)
})

const rollout = z.strictObject({
  strategy: z.enum(['rolling', 'canary', 'blueGreen'], { error: 'expected rolling, canary or blueGreen' }).default(DEFAULTS.rollout.strategy),
  canary: canary.optional(),
  blueGreen: blueGreen.prefault({}),
  maxSurge: scaled.default(DEFAULTS.rollout.maxSurge),
  // Like Kubernetes: a surge may exceed 100%, unavailability may not.
  maxUnavailable: scaledUpTo(100).default(DEFAULTS.rollout.maxUnavailable),
  // Draining instances that hold only upgraded connections no longer count against maxSurge, up to this many.
  maxDraining: scaled.default(DEFAULTS.rollout.maxDraining),
  minReady: duration.default(DEFAULTS.rollout.minReady),
  slowStart: duration.default(DEFAULTS.rollout.slowStart),
  drainTimeout: duration.default(DEFAULTS.rollout.drainTimeout),
  stopSignal: signal.default(DEFAULTS.rollout.stopSignal),
  stopTimeout: duration.default(DEFAULTS.rollout.stopTimeout),
  progressDeadline: positiveDuration.default(DEFAULTS.rollout.progressDeadline),
  onFailure: z.enum(['rollback', 'pause'], { error: 'expected rollback or pause' }).default(DEFAULTS.rollout.onFailure),
  // Finished rollouts of the pool kept for GET /v1/rollouts/ID (like Kubernetes' revisionHistoryLimit).
  historyLimit: wholeNumber('rollouts').min(1, 'at least 1').max(10_000, 'at most 10000').default(DEFAULTS.rollout.historyLimit)
})

const portRange = z.string({ error: 'expected a port range such as 41000-41999' })
  .regex(/^\d{1,5}-\d{1,5}$/, 'expected a port range such as 41000-41999')
  .transform((s, ctx) => {
    const [lo, hi] = s.split('-').map(Number)
    if (lo < 1 || hi > 65535 || lo > hi) {
      ctx.addIssue({ code: 'custom', message: 'expected a range low-high within 1-65535' })
      return z.NEVER
    }
    return { from: lo, to: hi }
  })

const processSpec = z.strictObject({
  command: z.union([template(['port', 'version']).min(1, 'must not be empty'), z.array(template(['port', 'version'])).min(1, 'must not be empty')],
    { error: 'expected a command string or a list of arguments' }),
  cwd: template(['port', 'version']).default('.'),
  env: templatedEnv.default({}),
  ports: portRange
})

const tls = z.strictObject({ ca: z.string(), cert: z.string(), key: z.string() })

const ENGINE_HELP = 'expected unix:///path/to/docker.sock or tcp://host:2376'
const engineUrl = z.string({ error: ENGINE_HELP }).refine(s => {
  if (s.startsWith('unix:///')) return s.length > 'unix:///'.length
  const m = /^tcp:\/\/([^/]+)\/?$/.exec(s)
  return m !== null && (typeof splitHostPort(m[1], 1) !== 'string' || (isValidHost(m[1]) && !m[1].includes(':')))
}, ENGINE_HELP)

const engine = z.union([
  engineUrl,
  z.strictObject({ url: engineUrl, tls: tls.optional() })
], { error: 'expected an engine address such as unix:///var/run/docker.sock' })

const dockerSpec = z.strictObject({
  engines: z.array(engine).min(1, 'at least one engine').default([...DEFAULTS.docker.engines]),
  tls: tls.optional(),
  image: z.string({ error: 'expected an image name' }).min(1, 'must not be empty').superRefine(placeholders(['version'])),
  // The app's port inside the container (bridge: published on a free host port); required
  // with network: bridge (the default), unused with host (check.ts says so).
  port: port.min(1, 'port must be 1-65535').optional(),
  // bridge (default): the engine publishes `port`; host: the container shares the
  // engine host's network and listens on {port}, a port baton takes from `ports`.
  network: z.enum(['bridge', 'host'], { error: 'expected bridge or host' }).optional(),
  ports: portRange.optional(),
  env: templatedEnv.default({}),
  init: z.boolean({ error: 'expected true or false' }).default(DEFAULTS.docker.init)
})

const pool = z.strictObject({
  size: wholeNumber('instances').min(1, 'at least 1').max(1000, 'at most 1000').optional(),
  balance: z.enum(['least-request', 'round-robin'], { error: 'expected least-request or round-robin' }).default(DEFAULTS.pool.balance),
  version: stringish.default(DEFAULTS.pool.version),
  process: processSpec.optional(),
  docker: dockerSpec.optional(),
  servers: z.array(hostPort(1), { error: 'expected a list of host:port' }).min(1, 'at least one server').optional(),
  readiness: readiness.optional(),
  rollout: rollout.prefault({})
})

const poolName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, 'pool names use letters, digits, - and _ (at most 63, starting with a letter or digit)')

/** Proxy worker processes: a count, or `auto` for one per CPU core (README "Processes"). */
const workers = z.union([
  z.literal('auto'),
  wholeNumber('workers').min(1, 'at least 1').max(MAX_WORKERS, `at most ${MAX_WORKERS}`)
], { error: 'expected a number of workers or auto' }).default(DEFAULTS.workers)

/** Upgrading baton itself (README "Upgrading baton"). */
const upgrade = z.strictObject({
  timeout: positiveDuration.default(DEFAULTS.upgrade.timeout),
  drainTimeout: duration.default(DEFAULTS.upgrade.drainTimeout)
})

export const configSchema = z.strictObject({
  workers,
  upgrade: upgrade.prefault({}),
  listen: z.array(listener, { error: 'expected a list of listeners such as - port: 8080' }).min(1, 'at least one listener'),
  admin: admin.prefault({}),
  proxy: proxy.prefault({}),
  accessLog: accessLog.optional(),
  routes: z.array(route, { error: 'expected a list of routes' })
    .min(1, 'needs at least one route (or leave routes: out when there is only one pool)').optional(),
  // An empty pools: map is reported by crossCheck (zod's record hides some keys).
  pools: z.record(poolName, pool, { error: 'expected a map of pools' })
}, { error: 'expected a map of settings (listen:, pools:, ...)' })

export type RawConfig = z.output<typeof configSchema>
export type RawPool = z.output<typeof pool>
export type ReadinessSpec = z.output<typeof readiness>
export type RolloutSpec = z.output<typeof rollout>
export type CanarySpec = z.output<typeof canary>
export type BlueGreenSpec = z.output<typeof blueGreen>
export type ProcessSpec = z.output<typeof processSpec>
export type DockerSpec = z.output<typeof dockerSpec>
export {
  rollout as rolloutSchema, canaryStep as canaryStepSchema, env as envSchema, scaled as scaledSchema, duration as durationSchema,
  pool as poolSchema, listener as listenerSchema, admin as adminSchema, route as routeSchema
}
