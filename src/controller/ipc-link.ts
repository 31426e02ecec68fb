import client from 'prom-client'
import type { MetricsJson } from '../metrics/registry.js'
import type { TrafficSecond } from '../metrics/traffic.js'
import type { SupervisorLink, WorkerCommand, WorkerInfo, WorkerReport } from '../supervisor/protocol.js'
import type { DataPlaneLink, DataPlaneReports, MemberCounts, TableSnapshot } from './data-plane-link.js'

/** Status and /metrics wait this long for the workers' counts; a worker that does not answer is left out. */
const QUERY_TIMEOUT_MS = 2_000
/** A second that a worker has not reported this long after it ended is handed on without it. */
const SECOND_OVERDUE_MS = 3_000
const SECOND_MS = 1_000

interface Worker {
  applied: number
  /** The last epoch second it reported. */
  lastSecond: number
}

interface Pending {
  waiting: Set<number>
  done: () => void
  onReport?: (r: WorkerReport) => void
}

interface Left {
  /** Workers that have nothing in flight on it any more. */
  idle: Set<number>
  /** Workers that have no HTTP request in flight on it, only upgraded connections. */
  quiet: Set<number>
  reported: boolean
  quietReported: boolean
}

const now = (): number => Math.floor(Date.now() / SECOND_MS)

/**
 * The seam over IPC (docs/architecture.md): one link from the controller to
 * every live proxy worker, current generation and draining older ones, all
 * reached through the supervisor. A table is applied once every live worker
 * acknowledged it; a member is drained once no live worker has anything in
 * flight on it; counts and metrics are gathered from all of them; a second
 * of traffic is handed on once every live worker reported it. A worker that
 * dies counts as having acknowledged, drained and reported everything.
 *
 * While `held` (a controller that adopts instances after an upgrade or a
 * restart, not serving yet) nothing reaches the workers: they keep the
 * serving controller's table until `release`.
 */
export class IpcDataPlaneLink implements DataPlaneLink {
  private reports: DataPlaneReports | undefined
  private readonly workers = new Map<number, Worker>()
  private held: boolean
  /** Added to the table's own version on the wire, so that a new controller's tables supersede its predecessor's. */
  private base: number
  private lastTable: TableSnapshot | undefined
  private readonly acks: Array<{ version: number, resolve: () => void }> = []
  private inTable = new Set<string>()
  /** Per member: the wire version at which it last entered the table. */
  private readonly enteredAt = new Map<string, number>()
  private readonly left = new Map<string, Left>()
  private readonly pending = new Map<string, Pending>()
  private readonly traffic = new Map<number, TrafficSecond[]>()
  private lastSecond = now() - 1
  private rid = 0
  private overdue: NodeJS.Timeout | undefined
  /** Counters of workers that drained and exited (summed, once there are several). */
  private retiredMetrics: MetricsJson[] = []
  /** Workers whose last counters came: no longer asked, or they would count twice. */
  private readonly finished = new Set<number>()
  /** Called when a drained worker's last counters came (the state a next controller gets changed). */
  onRetired: (() => void) | undefined

  constructor (private readonly supervisor: SupervisorLink, o: { hold: boolean, tableVersionFrom: number }) {
    this.held = o.hold
    this.base = o.tableVersionFrom
  }

  connect (reports: DataPlaneReports): void {
    this.reports = reports
    this.overdue = setInterval(() => this.flushTraffic(), SECOND_MS)
    this.overdue.unref()
  }

  /** This controller serves from now on: its latest table goes out, numbered above every earlier one. */
  release (tableVersionFrom: number): void {
    if (!this.held) return
    this.held = false
    const local = this.lastTable?.version ?? 0
    this.base = Math.max(this.base, tableVersionFrom - local + 1)
    if (this.lastTable !== undefined) void this.publish(this.lastTable)
  }

  get holding (): boolean { return this.held }

  // ── the supervisor's news ──────────────────────────────────────────────

  /** The live workers changed (one started listening, one died or finished draining). */
  setWorkers (list: WorkerInfo[]): void {
    const live = new Set(list.map(w => w.wid))
    for (const wid of this.workers.keys()) if (!live.has(wid)) { this.workers.delete(wid); this.finished.delete(wid) }
    for (const w of list) {
      const known = this.workers.get(w.wid)
      if (known !== undefined) { known.applied = Math.max(known.applied, w.applied); continue }
      this.workers.set(w.wid, { applied: w.applied, lastSecond: now() - 1 })
      // It started with the latest table: members that had left it before are nothing to it.
      for (const l of this.left.values()) l.idle.add(w.wid)
    }
    this.settleAll()
  }

  /** A report of one worker. */
  report (wid: number, r: WorkerReport): void {
    const w = this.workers.get(wid)
    switch (r.type) {
      case 'applied':
        if (w !== undefined) { w.applied = Math.max(w.applied, r.version); this.settleAcks() }
        return
      case 'idle':
      case 'quiet': {
        const l = this.left.get(r.id)
        if (l === undefined || (this.enteredAt.get(r.id) ?? 0) > r.version) return
        ;(r.type === 'idle' ? l.idle : l.quiet).add(wid)
        this.settleIdle(r.id, l)
        return
      }
      case 'final':
        this.finished.add(wid)
        this.retiredMetrics.push(r.metrics)
        void this.collapseRetired().then(() => this.onRetired?.())
        return
      case 'traffic':
        if (w === undefined || r.second <= this.lastSecond) return
        w.lastSecond = Math.max(w.lastSecond, r.second)
        if (r.seconds.length > 0) {
          const list = this.traffic.get(r.second) ?? []
          list.push(...r.seconds)
          this.traffic.set(r.second, list)
        } else if (!this.traffic.has(r.second)) {
          this.traffic.set(r.second, [])
        }
        this.flushTraffic()
        return
      default: {
        const p = this.pending.get(r.rid)
        if (p === undefined || !p.waiting.has(wid)) return
        p.onReport?.(r)
        p.waiting.delete(wid)
        if (p.waiting.size === 0) { this.pending.delete(r.rid); p.done() }
      }
    }
  }

  // ── DataPlaneLink ──────────────────────────────────────────────────────

  async publish (table: TableSnapshot): Promise<void> {
    this.lastTable = table
    const version = table.version + this.base
    const members = new Set(table.pools.flatMap(p => p.members.map(m => m.id)))
    for (const id of members) {
      if (!this.inTable.has(id)) this.enteredAt.set(id, version)
      this.left.delete(id)
    }
    for (const id of this.inTable) if (!members.has(id)) this.left.set(id, { idle: new Set(), quiet: new Set(), reported: false, quietReported: false })
    this.inTable = members
    if (this.held) return
    this.supervisor.send({ type: 'table', table: { ...table, version } })
    await new Promise<void>(resolve => {
      this.acks.push({ version, resolve })
      this.settleAcks()
    })
  }

  async closeIdle (memberId: string): Promise<void> { await this.command('closeIdle', memberId) }

  async reopenLogs (): Promise<void> {
    if (this.held) return
    this.sendToWorkers({ type: 'reopenLogs' })
  }
  async endRemaining (memberId: string): Promise<void> { await this.command('endRemaining', memberId) }

  async forget (memberId: string): Promise<void> {
    this.left.delete(memberId)
    this.enteredAt.delete(memberId)
    await this.command('forget', memberId)
  }

  async counts (): Promise<MemberCounts[]> {
    const sums = new Map<string, MemberCounts>()
    await this.ask('counts', r => {
      if (r.type !== 'counts') return
      for (const c of r.counts) {
        const s = sums.get(c.id)
        if (s === undefined) sums.set(c.id, { ...c })
        else { s.inflight += c.inflight; s.requests += c.requests }
      }
    })
    return [...sums.values()]
  }

  async metrics (): Promise<MetricsJson[]> {
    const all: MetricsJson[] = []
    await this.ask('metrics', r => { if (r.type === 'metrics') all.push(r.metrics) })
    return [...all, ...this.retiredMetrics]
  }

  /** The retired workers' counters, for the state a next controller starts from. */
  retired (): MetricsJson[] { return this.retiredMetrics }

  addRetired (list: MetricsJson[]): void {
    this.retiredMetrics.push(...list)
  }

  /** Keeps one entry however many workers retired: their sum. */
  private async collapseRetired (): Promise<void> {
    if (this.retiredMetrics.length < 2) return
    const list = this.retiredMetrics
    this.retiredMetrics = [await client.AggregatorRegistry.aggregate(list).getMetricsAsJSON()]
  }

  close (): void {
    clearInterval(this.overdue)
  }

  // ── inside ─────────────────────────────────────────────────────────────

  private async command (op: 'closeIdle' | 'endRemaining' | 'forget', id: string): Promise<void> {
    if (this.held || this.workers.size === 0) return
    const rid = this.newRid()
    await new Promise<void>(resolve => {
      this.pending.set(rid, { waiting: new Set(this.workers.keys()), done: resolve })
      this.sendToWorkers({ type: 'command', rid, op, id })
    })
  }

  private async ask (what: 'counts' | 'metrics', onReport: (r: WorkerReport) => void): Promise<void> {
    if (this.held || this.workers.size === 0) return
    const rid = this.newRid()
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => { this.pending.delete(rid); resolve() }, QUERY_TIMEOUT_MS)
      const asked = [...this.workers.keys()].filter(wid => !this.finished.has(wid))
      this.pending.set(rid, { waiting: new Set(asked), onReport, done: () => { clearTimeout(timer); resolve() } })
      if (asked.length === 0) { this.pending.delete(rid); clearTimeout(timer); resolve(); return }
      this.sendToWorkers({ type: 'query', rid, what })
    })
  }

  private sendToWorkers (command: WorkerCommand): void {
    this.supervisor.send({ type: 'to-workers', command })
  }

  private newRid (): string {
    return `${process.pid}.${++this.rid}`
  }

  /** After the live workers changed: whatever waited on a worker that is gone may be complete. */
  private settleAll (): void {
    this.settleAcks()
    for (const [rid, p] of this.pending) {
      for (const wid of p.waiting) if (!this.workers.has(wid)) p.waiting.delete(wid)
      if (p.waiting.size === 0) { this.pending.delete(rid); p.done() }
    }
    for (const [id, l] of this.left) this.settleIdle(id, l)
    this.flushTraffic()
  }

  private settleAcks (): void {
    for (let i = this.acks.length - 1; i >= 0; i--) {
      const a = this.acks[i]
      if ([...this.workers.values()].every(w => w.applied >= a.version)) {
        this.acks.splice(i, 1)
        a.resolve()
      }
    }
  }

  /** Reports a member idle once every live worker is; quiet once every live worker is quiet or idle, and some still hold upgrades. */
  private settleIdle (id: string, l: Left): void {
    if (l.reported) return
    let allIdle = true
    let allQuiet = true
    for (const wid of this.workers.keys()) {
      if (!l.idle.has(wid)) allIdle = false
      if (!l.idle.has(wid) && !l.quiet.has(wid)) allQuiet = false
    }
    if (allIdle) {
      l.reported = true
      this.reports?.idle(id)
    } else if (allQuiet && !l.quietReported) {
      l.quietReported = true
      this.reports?.quiet(id)
    }
  }

  /** Hands on, in order, every second all live workers have reported, and any second overdue. */
  private flushTraffic (): void {
    if (this.traffic.size === 0) return
    let complete = Infinity
    for (const w of this.workers.values()) complete = Math.min(complete, w.lastSecond)
    const overdueBefore = Math.floor((Date.now() - SECOND_OVERDUE_MS) / SECOND_MS)
    for (const second of [...this.traffic.keys()].sort((a, b) => a - b)) {
      if (second > complete && second > overdueBefore) break
      const seconds = this.traffic.get(second) ?? []
      this.traffic.delete(second)
      this.lastSecond = second
      this.reports?.traffic(second, seconds)
    }
  }
}
