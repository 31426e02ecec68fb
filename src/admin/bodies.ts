import { z } from 'zod'
import { envSchema, rolloutSchema } from '../config/schema.js'
import { AdminError } from './errors.js'

/** The rollout keys a rollout may override: all but historyLimit, which is about the pool's records. */
const strategyKeys = rolloutSchema.omit({ historyLimit: true }).shape

/**
 * A rollout's strategy overrides: those keys without their defaults, so a
 * key left out keeps the pool's setting (`.partial()` would fill in every
 * default and silently override the pool's config).
 */
type Overrides = { [K in keyof typeof strategyKeys]: z.ZodOptional<ReturnType<(typeof strategyKeys)[K]['unwrap']>> }
const strategyBody = z.strictObject(Object.fromEntries(
  Object.entries(strategyKeys).map(([k, s]) => [k, s.unwrap().optional()])
) as Overrides).superRefine((s, ctx) => {
  // As in a config (check.ts): a canary's weights must not go down.
  const steps = s.canary?.steps ?? []
  for (let i = 1; i < steps.length; i++) {
    if (steps[i].weight < steps[i - 1].weight) {
      ctx.addIssue({ code: 'custom', path: ['canary', 'steps', i, 'weight'], message: `weights must not go down from step to step (the one before has ${steps[i - 1].weight})` })
    }
  }
})

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
  throw new AdminError(400, 'BATON_ERR_ADMIN_BAD_BODY', where === '' ? `bad request body: ${message}` : `bad request body: ${where}: ${message}`)
}
