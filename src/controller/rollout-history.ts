import type { Rollout } from '../rollout/rollout.js'

/**
 * Every pool's rollout records, by id, the last `limit` of each pool kept
 * (like Kubernetes' revisionHistoryLimit): each holds up to 10,000 instance
 * transitions, so keeping them all would grow without end on a long-lived
 * proxy. A rollout that is still active is never dropped.
 */
export class RolloutHistory {
  private readonly byId = new Map<string, Rollout>()

  get (id: string): Rollout | undefined { return this.byId.get(id) }

  /** A pool's rollouts kept, newest first. */
  ofPool (pool: string): Rollout[] {
    return [...this.byId.values()].filter(r => r.pool === pool).reverse()
  }

  add (r: Rollout, limit: number): void {
    this.byId.set(r.id, r)
    const mine = [...this.byId.values()].filter(x => x.pool === r.pool)
    let excess = mine.length - limit
    // Oldest first (a Map keeps insertion order).
    for (const old of mine) {
      if (excess <= 0) break
      if (old.active) continue
      this.byId.delete(old.id)
      excess--
    }
  }
}
