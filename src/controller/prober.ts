import { request } from 'node:http'
import type { ReadinessSpec } from '../config/types.js'

/** One HTTP GET; resolves true on 2xx/3xx within `timeoutMs`. Never rejects. */
export async function probeOnce (host: string, port: number, path: string, timeoutMs: number): Promise<boolean> {
  return await new Promise<boolean>(resolve => {
    let settled = false
    const settle = (ok: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(deadline)
      resolve(ok)
    }
    // A fresh connection per probe, as Kubernetes does: a probe must not ride
    // on (or keep alive) a socket that the proxy's pool could be using.
    const req = request({ host, port, path, method: 'GET', agent: false, headers: { 'user-agent': 'baton-probe', connection: 'close' } }, res => {
      res.resume()
      const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 400
      res.once('end', () => settle(ok))
      res.once('error', () => settle(false))
      res.once('close', () => settle(false)) // after 'end' this changes nothing
    })
    // A deadline for the whole probe, not an idle timeout: an app that
    // trickles its answer byte by byte still fails it.
    const deadline = setTimeout(() => { req.destroy(); settle(false) }, timeoutMs)
    req.once('error', () => settle(false))
    req.end()
  })
}

export type ProbeVerdict = 'up' | 'down'

/**
 * Probes an address every `interval` and reports a verdict each time the
 * success or failure threshold is crossed (a Kubernetes probe). It starts
 * neither up nor down: the first verdict needs its threshold too.
 */
export class Prober {
  private timer: NodeJS.Timeout | undefined
  private successes = 0
  private failures = 0
  private verdict: ProbeVerdict | undefined
  private stopped = false

  constructor (
    private readonly host: string,
    private readonly port: number,
    private readonly spec: ReadinessSpec,
    private readonly onVerdict: (v: ProbeVerdict) => void
  ) {}

  start (): void {
    this.stopped = false
    void this.tick()
  }

  stop (): void {
    this.stopped = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  get current (): ProbeVerdict | undefined { return this.verdict }

  private async tick (): Promise<void> {
    const ok = await probeOnce(this.host, this.port, this.spec.path, this.spec.timeout)
    if (this.stopped) return
    if (ok) { this.successes++; this.failures = 0 } else { this.failures++; this.successes = 0 }
    if (this.verdict !== 'up' && this.successes >= this.spec.successThreshold) this.report('up')
    else if (this.verdict !== 'down' && this.failures >= this.spec.failureThreshold) this.report('down')
    if (this.stopped) return
    this.timer = setTimeout(() => { void this.tick() }, this.spec.interval)
    this.timer.unref()
  }

  private report (v: ProbeVerdict): void {
    this.verdict = v
    this.onVerdict(v)
  }
}
