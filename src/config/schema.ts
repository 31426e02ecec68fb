import { z } from 'zod'
import { DEFAULTS } from './defaults.js'
import { parseDuration } from './duration.js'

// The schema validates the config at the edge: what passes is fully typed,
// defaulted and normalised (durations in ms), so nothing downstream re-checks.

const duration = z.string({ error: 'expected a duration such as 250ms, 2s or 5m' })
  .transform((text, ctx) => {
    const ms = parseDuration(text)
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration (use e.g. 250ms, 2s, 5m, 1h)` })
      return z.NEVER
    }
    return ms
  })

const port = z.number({ error: 'expected a port number' }).int('expected a whole port number')
  .min(0, 'port must be 0-65535').max(65535, 'port must be 0-65535')

const positiveInt = (what: string): z.ZodNumber =>
  z.number({ error: `expected a whole number of ${what}` }).int(`expected a whole number of ${what}`)

/** A count (`1`) or a percentage of the pool size (`25%`), as Kubernetes takes them. */
const scaled = z.union([
  positiveInt('instances').min(0, 'must not be negative'),
  z.string().regex(/^\d{1,3}%$/, 'expected a count or a percentage such as 25%')
], { error: 'expected a count or a percentage such as 25%' })

/** host:port, e.g. 127.0.0.1:9901 or [::1]:9901 */
const hostPort = z.string({ error: 'expected host:port' })
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port such as 127.0.0.1:3000')
  .refine(s => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'port must be 0-65535')

const stringish = z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string' }).transform(String)

const env = z.record(z.string(), stringish, { error: 'expected a map of NAME: value' })

const signal = z.enum(['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGKILL'], {
  error: 'expected a signal name such as SIGTERM'
})

const listener = z.strictObject({
  port,
  host: z.string().min(1).default(DEFAULTS.listenHost)
})

const admin = z.strictObject({
  listen: hostPort.default(DEFAULTS.adminListen),
  token: z.string().optional().transform(t => (t === undefined || t === '' ? undefined : t))
})

const timeouts = z.strictObject({
  connect: duration.default(DEFAULTS.proxy.timeouts.connect),
  headers: duration.default(DEFAULTS.proxy.timeouts.headers),
  idle: duration.default(DEFAULTS.proxy.timeouts.idle),
  upstream: duration.default(DEFAULTS.proxy.timeouts.upstream)
})

const proxy = z.strictObject({
  timeouts: timeouts.prefault({}),
  retries: positiveInt('retries').min(0, 'must not be negative').max(10, 'at most 10').default(DEFAULTS.proxy.retries),
  maxHeaderSize: positiveInt('bytes').min(1024, 'at least 1024').max(1_048_576, 'at most 1 MiB').default(DEFAULTS.proxy.maxHeaderSize)
})

const route = z.strictObject({
  match: z.strictObject({
    host: z.string().min(1).regex(/^(\*\.)?[A-Za-z0-9.-]+$/, 'expected a host name, or *.domain').optional(),
    pathPrefix: z.string().startsWith('/', 'must start with /').optional()
  }).prefault({}),
  pool: z.string({ error: 'expected a pool name' })
})

const readiness = z.strictObject({
  path: z.string().startsWith('/', 'must start with /').default(DEFAULTS.readiness.path),
  interval: duration.default(DEFAULTS.readiness.interval),
  timeout: duration.default(DEFAULTS.readiness.timeout),
  successThreshold: positiveInt('probes').min(1, 'at least 1').default(DEFAULTS.readiness.successThreshold),
  failureThreshold: positiveInt('probes').min(1, 'at least 1').default(DEFAULTS.readiness.failureThreshold),
  startTimeout: duration.default(DEFAULTS.readiness.startTimeout)
})

const rollout = z.strictObject({
  maxSurge: scaled.default(DEFAULTS.rollout.maxSurge),
  maxUnavailable: scaled.default(DEFAULTS.rollout.maxUnavailable),
  minReady: duration.default(DEFAULTS.rollout.minReady),
  slowStart: duration.default(DEFAULTS.rollout.slowStart),
  drainTimeout: duration.default(DEFAULTS.rollout.drainTimeout),
  stopSignal: signal.default(DEFAULTS.rollout.stopSignal),
  stopTimeout: duration.default(DEFAULTS.rollout.stopTimeout),
  progressDeadline: duration.default(DEFAULTS.rollout.progressDeadline),
  onFailure: z.enum(['rollback', 'pause'], { error: 'expected rollback or pause' }).default(DEFAULTS.rollout.onFailure)
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
  command: z.union([z.string().min(1), z.array(z.string()).min(1)], { error: 'expected a command string or an array of arguments' }),
  cwd: z.string().default('.'),
  env: env.default({}),
  ports: portRange
})

const tls = z.strictObject({ ca: z.string(), cert: z.string(), key: z.string() })

const engine = z.union([
  z.string().regex(/^(unix:\/\/\/|tcp:\/\/)/, 'expected unix:///path or tcp://host:port'),
  z.strictObject({ url: z.string().regex(/^(unix:\/\/\/|tcp:\/\/)/, 'expected unix:///path or tcp://host:port'), tls: tls.optional() })
], { error: 'expected an engine address such as unix:///var/run/docker.sock' })

const dockerSpec = z.strictObject({
  engines: z.array(engine).min(1, 'at least one engine').default([...DEFAULTS.docker.engines]),
  tls: tls.optional(),
  image: z.string({ error: 'expected an image name' }).min(1),
  port: port.min(1, 'port must be 1-65535'),
  env: env.default({}),
  init: z.boolean().default(DEFAULTS.docker.init)
})

const pool = z.strictObject({
  size: positiveInt('instances').min(1, 'at least 1').max(1000, 'at most 1000').optional(),
  balance: z.enum(['least-request', 'round-robin'], { error: 'expected least-request or round-robin' }).default(DEFAULTS.pool.balance),
  version: stringish.default(DEFAULTS.pool.version),
  process: processSpec.optional(),
  docker: dockerSpec.optional(),
  servers: z.array(hostPort).min(1, 'at least one server').optional(),
  readiness: readiness.optional(),
  rollout: rollout.prefault({})
})

export const configSchema = z.strictObject({
  listen: z.array(listener, { error: 'expected a list of listeners such as - port: 8080' }).min(1, 'at least one listener'),
  admin: admin.prefault({}),
  proxy: proxy.prefault({}),
  routes: z.array(route).optional(),
  pools: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, 'pool names use letters, digits, - and _'), pool, { error: 'expected a map of pools' })
})

export type RawConfig = z.output<typeof configSchema>
export type RawPool = z.output<typeof pool>
export type ReadinessSpec = z.output<typeof readiness>
export type RolloutSpec = z.output<typeof rollout>
export type ProcessSpec = z.output<typeof processSpec>
export type DockerSpec = z.output<typeof dockerSpec>
export { rollout as rolloutSchema, env as envSchema, scaled as scaledSchema, duration as durationSchema }
