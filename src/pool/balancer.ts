import type { Upstream } from './upstream.js'

/**
 * Chooses an upstream among a pool's eligible ones. `exclude` holds upstreams
 * already tried for this request (a retry goes elsewhere when it can).
 */
export interface Balancer {
  pick (list: readonly Upstream[], exclude: Upstream | undefined): Upstream | undefined
}

/**
 * Least-request by the power of two choices: two random picks, the one with
 * fewer requests in flight per unit of weight wins. O(1), no shared ordering,
 * and it sends little to a slow-starting instance.
 */
export class LeastRequest implements Balancer {
  pick (list: readonly Upstream[], exclude: Upstream | undefined): Upstream | undefined {
    const n = list.length
    if (n === 0) return undefined
    if (n === 1) return list[0]
    let a = list[(Math.random() * n) | 0]
    let b = list[(Math.random() * (n - 1)) | 0]
    if (b === a) b = list[n - 1]
    if (a === exclude) a = b
    else if (b === exclude) b = a
    return (a.inflight + 1) / a.weight <= (b.inflight + 1) / b.weight ? a : b
  }
}

/** Round-robin; a slow-starting instance is skipped in proportion to its weight. */
export class RoundRobin implements Balancer {
  private next = 0
  pick (list: readonly Upstream[], exclude: Upstream | undefined): Upstream | undefined {
    const n = list.length
    if (n === 0) return undefined
    for (let tries = 0; tries < n * 2; tries++) {
      const u = list[this.next++ % n]
      if (this.next > 1e9) this.next = 0
      if (u === exclude && n > 1) continue
      if (u.weight < 1 && Math.random() > u.weight) continue
      return u
    }
    return list[this.next++ % n]
  }
}

export function createBalancer (kind: 'least-request' | 'round-robin'): Balancer {
  return kind === 'round-robin' ? new RoundRobin() : new LeastRequest()
}
