import { availableParallelism } from 'node:os'
import type { Config } from './types.js'

/** How many proxy workers a config asks for: `auto` is one per CPU core (README "Processes"). */
export function workerCount (config: Pick<Config, 'workers'>): number {
  return config.workers === 'auto' ? Math.max(1, availableParallelism()) : config.workers
}
