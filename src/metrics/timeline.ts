import { BUCKETS, Slot, type RevisionCounts, type SecondCounts, type TrafficSecond } from './traffic.js'

/** Seconds of traffic a pool keeps: an hour, enough for the report of any rollout that is not older. */
const KEEP_SECONDS = 3600

/** One second of a pool, summed over every data plane that reported it. */
export interface PoolSecond {
  /** Epoch second. */
  t: number
  /** By revision and version of the instance that answered (a second has one or two, rarely more). */
  revisions: RevisionCounts[]
  /** Requests no instance answered. */
  unanswered: SecondCounts
}

export const emptyCounts = (): SecondCounts => ({ counts: new Uint32Array(Slot.Size), hist: new Uint32Array(BUCKETS), max: 0 })

export function addInto (into: SecondCounts, c: SecondCounts): void {
  for (let i = 0; i < c.counts.length; i++) into.counts[i] += c.counts[i]
  for (let i = 0; i < c.hist.length; i++) into.hist[i] += c.hist[i]
  if (c.max > into.max) into.max = c.max
}

/**
 * A pool's traffic second by second for the last hour, kept by the
 * controller from what the data planes report (rollout reports and canary
 * analysis read it). Seconds from several data planes add up.
 */
export class PoolTraffic {
  /** Oldest first. */
  private readonly seconds: PoolSecond[] = []

  add (s: TrafficSecond): void {
    const second = this.secondAt(s.t)
    for (const v of s.versions) {
      let c = second.revisions.find(x => x.revision === v.revision && x.version === v.version)
      if (c === undefined) {
        c = { version: v.version, revision: v.revision, ...emptyCounts() }
        second.revisions.push(c)
      }
      addInto(c, v)
    }
    if (s.unanswered !== undefined) addInto(second.unanswered, s.unanswered)
  }

  /** The seconds within [from, to] (epoch seconds), oldest first. */
  range (from: number, to: number): PoolSecond[] {
    return this.seconds.filter(s => s.t >= from && s.t <= to)
  }

  private secondAt (t: number): PoolSecond {
    // Reports come in order, one second after another: search from the end.
    for (let i = this.seconds.length - 1; i >= 0; i--) {
      const s = this.seconds[i]
      if (s.t === t) return s
      if (s.t < t) {
        const fresh = { t, revisions: [], unanswered: emptyCounts() }
        this.seconds.splice(i + 1, 0, fresh)
        this.trim()
        return fresh
      }
    }
    const first = { t, revisions: [], unanswered: emptyCounts() }
    this.seconds.unshift(first)
    this.trim()
    return first
  }

  private trim (): void {
    if (this.seconds.length > KEEP_SECONDS) this.seconds.splice(0, this.seconds.length - KEEP_SECONDS)
  }
}

/** Every revision's counts and the unanswered ones of one second. */
export function allCounts (s: PoolSecond): SecondCounts[] {
  return [...s.revisions, s.unanswered]
}

/** One second's counts summed by version label (metrics, the event stream and reports are by version). */
export function byVersion (s: PoolSecond): Map<string, SecondCounts> {
  const out = new Map<string, SecondCounts>()
  for (const r of s.revisions) {
    let c = out.get(r.version)
    if (c === undefined) {
      c = emptyCounts()
      out.set(r.version, c)
    }
    addInto(c, r)
  }
  return out
}
