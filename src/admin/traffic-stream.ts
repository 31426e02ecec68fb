import { byVersion, type PoolSecond, type PoolTraffic } from '../metrics/timeline.js'
import { quantile, Slot, type SecondCounts } from '../metrics/traffic.js'

/**
 * `event: traffic` on GET /v1/events: once a second, per pool, the second
 * that just ended, per version. It reads the per-second timeline the
 * controller keeps from the data planes' reports (rollout reports read the
 * same), so nothing is added to the request path.
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

function versionSecond (version: string, s: SecondCounts): VersionSecond {
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

function eventOf (pool: string, t: number, second: PoolSecond | undefined): TrafficEvent {
  const versions: VersionSecond[] = []
  if (second !== undefined) {
    for (const [version, c] of byVersion(second)) versions.push(versionSecond(version, c))
    if (second.unanswered.counts[Slot.Requests] > 0) versions.push(versionSecond('', second.unanswered))
  }
  return { type: 'traffic', pool, t: t * 1000, versions }
}

/**
 * The events for every second in [from, to] (epoch seconds), oldest first,
 * a second without traffic included (with no versions): what the stream
 * sends, second by second (GET /v1/pools/NAME/traffic).
 */
export function trafficBetween (pool: string, traffic: PoolTraffic, from: number, to: number): TrafficEvent[] {
  const byT = new Map(traffic.range(from, to).map(s => [s.t, s]))
  const events: TrafficEvent[] = []
  for (let t = from; t <= to; t++) events.push(eventOf(pool, t, byT.get(t)))
  return events
}

/** How far back GET /v1/pools/NAME/traffic goes: the live page's chart. */
export const RECENT_SECONDS = 300
