import type { EventEmitter } from 'node:events'
import { quantile, Slot, type PoolTraffic, type SecondSample } from '../metrics/traffic.js'

/**
 * `event: traffic` on GET /v1/events: once a second, per pool, the second
 * that just ended, per version. It reads the per-second samples the pools
 * already keep for rollout reports, after the ticker has moved that second
 * into their timelines, so nothing is added to the request path.
 */

export interface VersionSecond {
  /** '' for requests that found no instance to go to. */
  version: string
  requests: number
  ok2xx: number
  redirect3xx: number
  client4xx: number
  /** 5xx answers: the app's and baton's own (no instance, upstream timeout). */
  server5xx: number
  /** Every request the client saw fail: the 5xx plus upstream failures retries could not hide (as in the report). */
  failed: number
  /** The client went away first: not a failure of the server side. */
  clientAborts: number
  /** Seconds; null without a request. */
  p99: number | null
}

export interface TrafficEvent {
  type: 'traffic'
  pool: string
  /** Start of the second, epoch ms. */
  t: number
  /** Versions that had traffic in that second; a version absent had none. */
  versions: VersionSecond[]
}

export interface TrafficSource { readonly name: string, readonly traffic: PoolTraffic }

function versionSecond (version: string, s: SecondSample): VersionSecond {
  const c = s.counts
  const server5xx = c[Slot.App5xx] + c[Slot.Baton5xx]
  return {
    version,
    requests: c[Slot.Requests],
    ok2xx: c[Slot.Ok2xx],
    redirect3xx: c[Slot.Redirect3xx],
    client4xx: c[Slot.Client4xx],
    server5xx,
    failed: server5xx + c[Slot.UpstreamFailed],
    clientAborts: c[Slot.ClientAborts],
    p99: quantile(s.hist, 0.99)
  }
}

/** One pool's numbers for `second` (epoch seconds), from the last sample of each version. */
export function trafficOf (pool: TrafficSource, second: number): TrafficEvent {
  const versions: VersionSecond[] = []
  for (const [version, samples] of pool.traffic.timeline) {
    const s = samples[samples.length - 1]
    if (s !== undefined && s.t === second) versions.push(versionSecond(version, s))
  }
  return { type: 'traffic', pool: pool.name, t: second * 1000, versions }
}

/**
 * The same events for every second in [from, to] (epoch seconds) that the
 * timeline holds, oldest first, a second without traffic included (with no
 * versions): what the stream would have sent (GET /v1/pools/NAME/traffic).
 */
export function trafficBetween (pool: TrafficSource, from: number, to: number): TrafficEvent[] {
  const events: TrafficEvent[] = []
  for (let t = from; t <= to; t++) events.push({ type: 'traffic', pool: pool.name, t: t * 1000, versions: [] })
  for (const [version, samples] of pool.traffic.timeline) {
    for (let i = samples.length - 1; i >= 0 && samples[i].t >= from; i--) {
      const s = samples[i]
      if (s.t <= to) events[s.t - from].versions.push(versionSecond(version, s))
    }
  }
  return events
}

/** How far back GET /v1/pools/NAME/traffic goes: the live page's chart. */
export const RECENT_SECONDS = 300

/** The last RECENT_SECONDS seconds that the ticker has moved into the timeline. */
export function recentTraffic (pool: TrafficSource, now = Date.now()): TrafficEvent[] {
  const to = Math.floor(now / 1000) - 1
  return trafficBetween(pool, to - RECENT_SECONDS + 1, to)
}

/**
 * Calls `send` with every pool's traffic event each time `ticks` emits
 * `tick` (the epoch second just rolled into the timelines); returns the
 * function that stops it.
 */
export function followTraffic (ticks: EventEmitter, pools: () => Iterable<TrafficSource>, send: (e: TrafficEvent) => void): () => void {
  const onTick = (second: number): void => {
    for (const p of pools()) send(trafficOf(p, second))
  }
  ticks.on('tick', onTick)
  return () => { ticks.off('tick', onTick) }
}
