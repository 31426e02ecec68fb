import { z } from 'zod'
import { resolveScaled } from '../config/duration.js'
import { envSchema, rolloutSchema, type RolloutSpec } from '../config/schema.js'
import { AdminError } from './server.js'

/**
 * A rollout's strategy overrides: the config's rollout keys without their
 * defaults, so a key left out keeps the pool's setting (`.partial()` would
 * fill in every default and silently override the pool's config).
 */
type Overrides = { [K in keyof typeof rolloutSchema.shape]: z.ZodOptional<ReturnType<(typeof rolloutSchema.shape)[K]['unwrap']>> }
const strategyBody = z.strictObject(Object.fromEntries(
  Object.entries(rolloutSchema.shape).map(([k, s]) => [k, s.unwrap().optional()])
) as Overrides)

/** Admin request bodies, validated with the same schema pieces as the config. */
export const rolloutBody = z.strictObject({
  version: z.union([z.string().min(1), z.number()]).transform(String).optional(),
  env: envSchema.optional(),
  command: z.union([z.string().min(1), z.array(z.string()).min(1)]).optional(),
  image: z.string().min(1).optional(),
  strategy: strategyBody.optional()
})

export type RolloutBody = z.output<typeof rolloutBody>

/** Parses a body or throws a 400 that names the first bad field. */
export function parseBody<T extends z.ZodType> (schema: T, body: unknown): z.output<T> {
  const r = schema.safeParse(body)
  if (r.success) return r.data
  const issue = r.error.issues[0]
  const path = issue.path.map(String).join('.')
  const where = issue.code === 'unrecognized_keys'
    ? [path, issue.keys[0]].filter(s => s !== '').join('.')
    : path
  const message = issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message
  throw new AdminError(400, where === '' ? `bad request body: ${message}` : `bad request body: ${where}: ${message}`)
}

/**
 * 400 when a body's strategy over the pool's own leaves maxSurge and
 * maxUnavailable both 0 for the pool's size: the rollout could never move
 * (the config check refuses the same for a pool).
 */
export function checkMovable (pool: RolloutSpec, size: number, strategy: RolloutBody['strategy']): void {
  if (strategy === undefined) return
  const s = { ...pool, ...strategy }
  if (resolveScaled(s.maxSurge, size, 'up') === 0 && resolveScaled(s.maxUnavailable, size, 'down') === 0) {
    throw new AdminError(400, `bad request body: strategy: maxSurge ${String(s.maxSurge)} with maxUnavailable ${String(s.maxUnavailable)} for ${size} instance(s): the rollout could never move`)
  }
}
