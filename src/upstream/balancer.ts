import type { Upstream } from './upstream.js'

const ROUNDS_OF_SKIPS = 2
/** The turn counter starts over long before it loses integer precision. */
const TURN_WRAP = 1e9

/**
 * Chooses an upstream among a pool's eligible ones. For a retry, `exclude` is
 * the upstream whose attempt just failed and `tried` every upstream this
 * request has tried: a retry goes to one not tried yet when there is one,
 * else to any but the one that just failed, else (a pool of one) to it again.
 */
export interface Balancer {
  pick (list: readonly Upstream[], exclude: Upstream | undefined, tried?: readonly Upstream[]): Upstream | undefined
}

/** Where a retry may go (allocates, but only on a retry). */
function retryCandidates (list: readonly Upstream[], exclude: Upstream, tried: readonly Upstream[] | undefined): readonly Upstream[] {
  let c = list.filter(u => u !== exclude && (tried === undefined || !tried.includes(u)))
  if (c.length === 0) c = list.filter(u => u !== exclude)
  return c.length === 0 ? list : c
}

/**
 * Least-request by the power of two choices: two random picks, the one with
 * fewer requests in flight per unit of weight wins. O(1), no shared ordering,
 * and it sends little to a slow-starting instance.
 */
export class LeastRequest implements Balancer {
  pick (all: readonly Upstream[], exclude: Upstream | undefined, tried?: readonly Upstream[]): Upstream | undefined {
    const list = exclude === undefined || all.length < 2 ? all : retryCandidates(all, exclude, tried)
    const n = list.length
    if (n === 0) return undefined
    if (n === 1) return list[0]
    const i = (Math.random() * n) | 0
    let j = (Math.random() * (n - 1)) | 0
    if (j >= i) j++
    const a = list[i]
    const b = list[j]
    return (a.inflight + 1) / a.weight <= (b.inflight + 1) / b.weight ? a : b
  }
}

/**
 * Round-robin; a slow-starting instance is skipped in proportion to its weight.
 * A retry (`exclude` set) takes the next instance in turn without moving the
 * turn on, so that a dead instance does not become the first try of every
 * request that follows it.
 */
export class RoundRobin implements Balancer {
  private next = 0
  pick (list: readonly Upstream[], exclude: Upstream | undefined, tried?: readonly Upstream[]): Upstream | undefined {
    const n = list.length
    if (n === 0) return undefined
    if (exclude !== undefined && n > 1) {
      const candidates = retryCandidates(list, exclude, tried)
      for (let i = 0; i < n; i++) {
        const u = list[(this.next + i) % n]
        if (candidates.includes(u)) return u
      }
    }
    // Bounded: with every member slow-starting, the turn goes on after two rounds.
    for (let tries = 0; tries < n * ROUNDS_OF_SKIPS; tries++) {
      const u = list[this.next++ % n]
      if (this.next > TURN_WRAP) this.next = 0
      if (u.weight < 1 && Math.random() > u.weight) continue
      return u
    }
    return list[this.next++ % n]
  }
}

export function createBalancer (kind: 'least-request' | 'round-robin'): Balancer {
  return kind === 'round-robin' ? new RoundRobin() : new LeastRequest()
}
