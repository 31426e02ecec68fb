import { afterEach, describe, expect, it } from 'vitest'
import { XMLValidator } from 'fast-xml-parser'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli, startBaton, type RunningBaton } from '../helpers/baton.js'
import { startLoad } from '../helpers/load.js'
import { adminJson, demoConfig, startRollout, waitRollout } from '../helpers/pool.js'
import { present } from '../helpers/views.js'

/** The rollout report agrees with a client that counts on its own, and its SVG draws it. */
describe('the rollout report', () => {
  let baton: RunningBaton | undefined
  afterEach(async () => { await baton?.kill('SIGKILL'); baton = undefined })

  it('counts exactly what the clients sent, by outcome, per phase and per batch', async () => {
    baton = await startBaton(demoConfig({ size: 3, rollout: { minReady: '500ms' } }))
    const load = startLoad(baton.url, { keepAlive: 4, close: 1, posts: 1, slow: 1, slowMs: 800 })
    let fails = 0
    let failing = true
    const failer = (async () => {
      while (failing) {
        const res = await fetch(`${baton!.url}/fail`)
        await res.text()
        if (res.status === 500) fails++
        await new Promise(resolve => setTimeout(resolve, 50))
      }
    })()
    await new Promise(resolve => setTimeout(resolve, 1500))
    const r = await startRollout(baton.adminUrl, { version: 'v2' })
    expect((await waitRollout(baton.adminUrl, r.id)).status).toBe('succeeded')
    await new Promise(resolve => setTimeout(resolve, 1500))
    failing = false
    await failer
    const client = await load.stop()
    // Let the last second roll into the timeline.
    await new Promise(resolve => setTimeout(resolve, 1200))

    const { body } = await adminJson(baton.adminUrl, `/v1/rollouts/${r.id}`)
    const report = body.report
    const total = report.phases.reduce((n, p) => n + p.requests, 0)
    const failed = report.phases.reduce((n, p) => n + p.failed, 0)
    console.log(`report: client sent ${client.sent} + ${fails} /fail; baton counted ${total} (${failed} failed); during the rollout ${report.requests}`)
    expect(client.failed).toBe(0)
    expect(total).toBe(client.sent + fails)
    expect(failed).toBe(fails)
    expect(report.failed.baton5xx + report.failed.upstreamFailed).toBe(0)
    expect(report.failed.app5xx).toBe(report.failed.total)
    expect(report.phases.map((p) => p.name)).toEqual(['before', 'batch 1', 'batch 2', 'batch 3', 'after'])
    for (const p of report.phases) {
      expect(p.requests).toBeGreaterThan(0)
      const [p50, p99] = [present(p.p50, 'p50'), present(p.p99, 'p99')]
      expect(p50).toBeGreaterThan(0)
      expect(p99).toBeGreaterThanOrEqual(p50)
      expect(p.max).toBeGreaterThanOrEqual(p99 / 1.25) // p99 is a bucket's upper bound
    }
    // The slow requests (800 ms) show in the max of the phases.
    expect(Math.max(...report.phases.map(p => p.max ?? 0))).toBeGreaterThanOrEqual(0.75)
    expect(report.batches).toHaveLength(3)
    for (const b of report.batches) {
      expect(b.instances).toHaveLength(1)
      const [ready, soaked, drainStarted] = [present(b.ready, 'ready'), present(b.soaked, 'soaked'), present(b.drainStarted, 'drainStarted')]
      expect(b.started).toBeLessThan(ready)
      expect(soaked - ready).toBe(500)
      expect(drainStarted).toBeGreaterThanOrEqual(soaked - 5)
      expect(b.stopped).toBeGreaterThanOrEqual(drainStarted)
    }
    // Traffic moves from v1 to v2 over the seconds of the report.
    const first = report.seconds[0].byVersion
    const last = report.seconds[report.seconds.length - 1].byVersion
    expect(first.v1).toBeGreaterThan(0)
    expect(first.v2 ?? 0).toBe(0)
    expect(last.v2).toBeGreaterThan(0)
    expect(last.v1 ?? 0).toBe(0)

    const svgRes = await fetch(`${baton.adminUrl}/v1/rollouts/${r.id}/report.svg`)
    expect(svgRes.headers.get('content-type')).toBe('image/svg+xml')
    const svg = await svgRes.text()
    expect(XMLValidator.validate(svg)).toBe(true)
    expect(svg).toContain('data-version="v1"')
    expect(svg).toContain('data-version="v2"')
    expect(svg).toContain('id="p99"')
    expect(svg.match(/class="phase soak"/g)).toHaveLength(3)
    expect(svg.match(/class="failure"/g)?.length ?? 0).toBeGreaterThan(0)

    // The CLI: `baton report ID --svg FILE` prints the summary and writes the same picture.
    const file = join(baton.dir, 'rollout.svg')
    const cli = await runCli(['report', r.id, '--svg', file, '--admin', baton.adminUrl])
    expect(cli.code).toBe(0)
    expect(cli.stdout).toMatch(new RegExp(`users saw: ${String(report.requests)} requests during the rollout, ${String(report.failed.total)} failed`))
    expect(cli.stdout).toMatch(/batch 3 +\d+ req +p50/)
    expect(XMLValidator.validate(readFileSync(file, 'utf8'))).toBe(true)
    const missing = await runCli(['report', 'nope', '--admin', baton.adminUrl])
    expect(missing.code).toBe(1)
    expect(missing.stderr.split('\n')).toHaveLength(1)
  }, 90_000)

  it('rollout --watch ends with what the users saw', async () => {
    baton = await startBaton(demoConfig({ size: 1, rollout: { minReady: '300ms' } }))
    const load = startLoad(baton.url, { keepAlive: 2 })
    const cli = await runCli(['rollout', 'web', '--version', 'v2', '--watch', '--admin', baton.adminUrl])
    const client = await load.stop()
    expect(cli.code).toBe(0)
    expect(cli.stdout).toMatch(/users saw: \d+ requests during the rollout, 0 failed/)
    expect(client.failed).toBe(0)
  }, 60_000)
})
