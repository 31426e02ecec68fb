import { XMLValidator } from 'fast-xml-parser'
import { afterEach, describe, expect, it } from 'vitest'
import { runCli, startBaton, type RunningBaton } from '../helpers/baton.js'
import { recordEvents } from '../helpers/events.js'
import { startLoad } from '../helpers/load.js'
import { adminJson, demoConfig, getPool, startRollout, waitRollout } from '../helpers/pool.js'
import type { RolloutAnswer } from '../helpers/views.js'

/**
 * SPEC §9 canaries with real processes under load: the share of each step is
 * its weight whatever the instance counts; the analysis rolls back a version
 * that errs or is slow, with its reason; minRequests waits; pause: manual,
 * resume, promote; header pinning. Every request is counted by the client
 * and none may fail because of baton.
 */

/** Polls the rollout until `pred` holds (bounded; the error shows its events). */
async function until (adminUrl: string, id: string, pred: (r: RolloutAnswer) => boolean, timeoutMs = 60_000): Promise<RolloutAnswer> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const r = (await adminJson(adminUrl, `/v1/rollouts/${id}`)).body
    if (pred(r)) return r
    if (Date.now() > end) throw new Error(`rollout ${id} never got there: ${JSON.stringify(r.events.map(e => e.message))}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

const canaryRollout = (canary: Record<string, unknown>, more: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ strategy: 'canary', canary, minReady: '300ms', drainTimeout: '5s', ...more })

describe('canary', () => {
  let baton: RunningBaton | undefined
  afterEach(async () => { await baton?.kill('SIGKILL'); baton = undefined })

  it('sends each step\'s weight of requests to the new revision, whatever the instance counts (1 new among 4 old)', async () => {
    // Pauses long enough for 800 requests a step even on a busy machine (a quiet one sends thousands).
    const steps = [{ weight: 5, pause: '6s' }, { weight: 25, pause: '5s' }, { weight: 50, pause: '5s' }]
    baton = await startBaton(demoConfig({ size: 4, rollout: canaryRollout({ steps, analysis: { minRequests: 20, maxErrorRate: '1%' } }) }))
    const answers: Array<{ at: number, version: string | undefined }> = []
    const rec = recordEvents(baton.adminUrl)
    await rec.ready
    const load = startLoad(baton.url, { keepAlive: 8, onAnswer: (version, _status, _sent, at) => answers.push({ at, version }) })
    await new Promise(resolve => setTimeout(resolve, 500))
    const r = await startRollout(baton.adminUrl, { version: 'v2' })
    const done = await waitRollout(baton.adminUrl, r.id)
    const result = await load.stop()
    rec.close()

    expect(done.status, JSON.stringify(done.events)).toBe('succeeded')
    expect(result.failed).toBe(0)
    expect(done.strategy).toBe('canary')
    expect(done.analysis.map(a => [a.step, a.verdict])).toEqual([[1, 'pass'], [2, 'pass'], [3, 'pass']])
    // Steps 1 and 2 ran one new instance beside the 4 old ones (step 3's second one starts once step 2 passed).
    const step2Judged = Date.parse(done.events.find(e => e.message.startsWith('step 2 analysis'))?.at ?? '')
    const earlyNew = new Set(rec.events.filter(e => e.type === 'instance' && e.data.version === 'v2' && e.data.state === 'starting' && e.at < step2Judged).map(e => e.data.instance))
    expect(earlyNew.size).toBe(1)
    const lines: string[] = []
    for (const a of done.analysis) {
      const inWindow = answers.filter(x => x.at >= a.from && x.at < a.to)
      const share = (100 * inWindow.filter(x => x.version === 'v2').length) / inWindow.length
      const weight = steps[a.step - 1].weight
      const served = a.revisions.v2.requests + a.revisions.v1.requests
      lines.push(`step ${a.step}: weight ${weight}%, clients saw ${share.toFixed(2)}% of ${inWindow.length} requests on v2, baton counted ${(100 * a.revisions.v2.requests / served).toFixed(2)}% of ${served}`)
      expect(inWindow.length).toBeGreaterThanOrEqual(800)
      expect(Math.abs(share - weight)).toBeLessThanOrEqual(2)
      expect(Math.abs((100 * a.revisions.v2.requests) / served - weight)).toBeLessThanOrEqual(1)
    }
    console.log(`canary shares: ${result.sent} requests sent, ${result.failed} failed\n  ${lines.join('\n  ')}`)
    expect(done.weight).toBe(100)
    // The report marks each step and its verdict on the per-version traffic.
    expect(done.report.turns.map(t => t.label)).toEqual(['step 1 · 5%', 'step 2 · 25%', 'step 3 · 50%'])
    expect(done.report.verdicts.map(v => `${v.step} ${v.verdict}`)).toEqual(['1 pass', '2 pass', '3 pass'])
    const svg = await (await fetch(`${baton.adminUrl}/v1/rollouts/${r.id}/report.svg`)).text()
    expect(XMLValidator.validate(svg)).toBe(true)
    expect(svg.match(/class="turn"/g)).toHaveLength(3)
    expect(svg.match(/class="verdict verdict-pass"/g)).toHaveLength(3)
    expect(svg).toContain('data-version="v2"')
    const pool = await getPool(baton.adminUrl)
    expect(pool.instances.filter(i => i.state === 'serving' && i.version === 'v2')).toHaveLength(4)
    expect(pool.instances).toHaveLength(4)
  }, 120_000)

  for (const c of [
    { name: 'answers 500 to 20% of requests', env: { ERROR_RATE: '0.2' }, analysis: { minRequests: 50, maxErrorRate: '1%' }, reason: /^step \d analysis: error rate (1[89]|2[01])(\.\d+)?% of v2 \(\d+ of \d+ attempts\) over maxErrorRate 1%$/ },
    { name: 'is 40 ms slower', env: { ADDED_LATENCY: '40' }, analysis: { minRequests: 50, maxP99Ratio: 1.5 }, reason: /^step \d analysis: p99 \d+ ms of v2 is \d+\.\d\d× the \d+(\.\d)? ms of v1, over maxP99Ratio 1\.5$/ }
  ]) {
    it(`rolls back a version that ${c.name}, by the analysis, with the reason in the rollout`, async () => {
      baton = await startBaton(demoConfig({ size: 4, rollout: canaryRollout({ steps: [{ weight: 10, pause: '4s' }, { weight: 50, pause: '4s' }], analysis: c.analysis }) }))
      let metBad = 0
      const load = startLoad(baton.url, { keepAlive: 6, close: 2, onAnswer: v => { if (v === 'v2') metBad++ } })
      await new Promise(resolve => setTimeout(resolve, 500))
      const r = await startRollout(baton.adminUrl, { version: 'v2', env: c.env })
      const done = await waitRollout(baton.adminUrl, r.id)
      await new Promise(resolve => setTimeout(resolve, 500))
      const result = await load.stop()
      console.log(`canary rollback (${c.name}): ${result.sent} requests, ${metBad} met v2, ${result.failed - result.batonFailed} app errors, ${result.batonFailed} failed by baton; ${done.error ?? ''}`)

      expect(done.status).toBe('rolled_back')
      expect(done.error).toMatch(c.reason)
      // Judged at step 1 (on a very busy machine latency noise could let a slow one pass step 1: then step 2 catches it).
      const last = done.analysis.at(-1)
      expect(last).toMatchObject({ verdict: 'fail' })
      expect(done.analysis.slice(0, -1).every(a => a.verdict === 'pass')).toBe(true)
      const svg = await (await fetch(`${baton.adminUrl}/v1/rollouts/${r.id}/report.svg`)).text()
      expect(XMLValidator.validate(svg)).toBe(true)
      expect(svg).toContain('class="verdict verdict-fail"')
      expect(done.report.turns.map(t => t.label).slice(-1)).toEqual(['rollback'])
      const cli = await runCli(['report', r.id, '--admin', baton.adminUrl])
      expect(cli.stdout).toContain(`step ${last?.step ?? 0} fail: ${last?.reason ?? ''}`)
      expect(result.batonFailed).toBe(0)
      // Only the steps' shares met the bad version (10 %, at worst 50 % for a while).
      expect(metBad).toBeLessThan(result.sent * (done.analysis.length === 1 ? 0.2 : 0.5))
      const pool = await getPool(baton.adminUrl)
      expect(pool.instances.filter(i => i.state === 'serving' && i.version === 'v1')).toHaveLength(4)
      expect(pool.instances.filter(i => i.state !== 'failed')).toHaveLength(4)
    }, 90_000)
  }

  it('minRequests: a step without enough traffic waits one more pause; enough by then passes, still not enough fails', async () => {
    baton = await startBaton(demoConfig({ size: 2, rollout: canaryRollout({ steps: [{ weight: 50, pause: '3s' }], analysis: { minRequests: 50 } }) }))
    // No traffic at all in the first pause: it waits; traffic in the second: it passes.
    const r = await startRollout(baton.adminUrl, { version: 'v2' })
    await until(baton.adminUrl, r.id, x => x.analysis.length === 1)
    const waited = (await adminJson(baton.adminUrl, `/v1/rollouts/${r.id}`)).body
    expect(waited.analysis[0]).toMatchObject({ step: 1, verdict: 'wait' })
    expect(waited.status).toBe('running')
    const load = startLoad(baton.url, { keepAlive: 6 })
    const done = await waitRollout(baton.adminUrl, r.id)
    const result = await load.stop()
    expect(done.status, JSON.stringify(done.events)).toBe('succeeded')
    expect(done.analysis.map(a => a.verdict)).toEqual(['wait', 'pass'])
    expect(result.failed).toBe(0)

    // No traffic in either pause: it fails as not enough traffic, and rolls back.
    const again = await startRollout(baton.adminUrl, { version: 'v3' })
    const failed = await waitRollout(baton.adminUrl, again.id)
    console.log(`minRequests: ${result.sent} requests in the second pause; then ${failed.error ?? ''}`)
    expect(failed.status).toBe('rolled_back')
    expect(failed.error).toBe('step 1 analysis: not enough traffic: 0 of the 50 requests needed reached v3 in two pauses')
  }, 90_000)

  it('pause: manual holds a step (status paused) until resume, which judges it; then the next step', async () => {
    baton = await startBaton(demoConfig({ size: 2, rollout: canaryRollout({ steps: [{ weight: 20, pause: 'manual' }, { weight: 50, pause: '2s' }], analysis: { maxErrorRate: '1%' } }) }))
    const load = startLoad(baton.url, { keepAlive: 4 })
    const r = await startRollout(baton.adminUrl, { version: 'v2' })
    const paused = await until(baton.adminUrl, r.id, x => x.status === 'paused')
    expect(paused).toMatchObject({ step: 1, weight: 20, error: null })
    expect(paused.events.at(-1)?.message).toBe('step 1: paused until resume (pause: manual)')
    // It stays paused: nothing judged, nothing moves.
    await new Promise(resolve => setTimeout(resolve, 1500))
    const still = (await adminJson(baton.adminUrl, `/v1/rollouts/${r.id}`)).body
    expect(still).toMatchObject({ status: 'paused', step: 1, analysis: [] })
    const status = await runCli(['status', 'web', '--admin', baton.adminUrl])
    expect(status.stdout).toMatch(/rollout web-2-\w+ paused \(\d\/2 updated, revision 1 \(v1\) -> revision 2 \(v2\); canary step 1, 20% to v2\)/)
    const resumed = await runCli(['resume', 'web', '--admin', baton.adminUrl])
    expect(resumed.code, resumed.stderr).toBe(0)
    const done = await waitRollout(baton.adminUrl, r.id)
    const result = await load.stop()
    expect(done.status).toBe('succeeded')
    expect(done.analysis.map(a => [a.step, a.verdict])).toEqual([[1, 'pass'], [2, 'pass']])
    expect(done.events.map(e => e.message)).toContain('resumed: judging step 1')
    expect(result.failed).toBe(0)
  }, 90_000)

  it('promote (baton promote POOL) skips the remaining steps; a rolling rollout has none to skip (409)', async () => {
    baton = await startBaton(demoConfig({ size: 3, rollout: canaryRollout({ steps: [{ weight: 10, pause: '1h' }, { weight: 50, pause: '1h' }] }) }))
    const load = startLoad(baton.url, { keepAlive: 4 })
    const r = await startRollout(baton.adminUrl, { version: 'v2' })
    await until(baton.adminUrl, r.id, x => x.step === 1)
    const promoted = await runCli(['promote', 'web', '--admin', baton.adminUrl])
    expect(promoted.code, promoted.stderr).toBe(0)
    expect(promoted.stdout).toMatch(/promoted: the remaining steps are skipped/)
    const done = await waitRollout(baton.adminUrl, r.id)
    expect(done.status).toBe('succeeded')
    expect(done.analysis).toEqual([])
    expect(done.events.map(e => e.message)).toContain('promoted: the remaining steps are skipped; the rest of the pool is replaced as a rolling update')

    const rolling = await startRollout(baton.adminUrl, { version: 'v3', strategy: { strategy: 'rolling' } })
    const refused = await adminJson(baton.adminUrl, `/v1/rollouts/${rolling.id}/promote`, { method: 'POST' })
    expect(refused.status).toBe(409)
    expect(refused.body.code).toBe('BATON_ERR_NOTHING_TO_PROMOTE')
    expect((await waitRollout(baton.adminUrl, rolling.id)).status).toBe('succeeded')
    const result = await load.stop()
    expect(result.failed).toBe(0)
  }, 90_000)

  it('rollout --strategy canary --watch shows each step, its weight and its verdict', async () => {
    // The pool rolls by default; the command asks for its canary steps for this one rollout.
    baton = await startBaton(demoConfig({ size: 2, rollout: canaryRollout({ steps: [{ weight: 10, pause: '2s' }, { weight: 60, pause: '2s' }], analysis: { maxErrorRate: '1%' } }, { strategy: 'rolling' }) }))
    const load = startLoad(baton.url, { keepAlive: 4 })
    const cli = await runCli(['rollout', 'web', '--version', 'v2', '--strategy', 'canary', '--watch', '--admin', baton.adminUrl])
    const result = await load.stop()
    expect(cli.code, cli.stderr).toBe(0)
    expect(cli.stdout).toMatch(/step 1\/2: 10% of requests to revision 2 \(v2\) for 2 s/)
    expect(cli.stdout).toMatch(/progress: \d\/2 updated; step 1, 10% to v2/)
    expect(cli.stdout).toMatch(/step 1 analysis: pass: \d+ requests to v2: error rate 0% ≤ 1%/)
    expect(cli.stdout).toMatch(/step 2\/2: 60% of requests/)
    expect(cli.stdout).toMatch(/step 2 analysis: pass/)
    expect(cli.stdout).toMatch(/step 2 pass: /)
    expect(result.failed).toBe(0)
  }, 60_000)

  it('pins by header: always to the new revision, never to the old one, the rest by weight; abort sends everything back', async () => {
    baton = await startBaton(demoConfig({ size: 3, rollout: canaryRollout({ steps: [{ weight: 10, pause: 'manual' }], header: 'X-Baton-Canary' }) }))
    const load = startLoad(baton.url, { keepAlive: 4 })
    const r = await startRollout(baton.adminUrl, { version: 'v2' })
    await until(baton.adminUrl, r.id, x => x.status === 'paused' && x.step === 1)
    const versions = async (pin: string | undefined, n: number): Promise<Record<string, number>> => {
      const seen: Record<string, number> = {}
      for (let k = 0; k < n; k++) {
        const res = await fetch(baton!.url + '/', { headers: pin === undefined ? {} : { 'x-baton-canary': pin } })
        await res.text()
        const v = `${res.status} ${res.headers.get('x-app-version') ?? ''}`
        seen[v] = (seen[v] ?? 0) + 1
      }
      return seen
    }
    expect(await versions('always', 40)).toEqual({ '200 v2': 40 })
    expect(await versions('never', 40)).toEqual({ '200 v1': 40 })
    expect(await versions('ALWAYS', 10)).toEqual({ '200 v2': 10 })
    const aborted = await adminJson(baton.adminUrl, `/v1/rollouts/${r.id}/abort`, { method: 'POST' })
    expect(aborted.status).toBe(200)
    const done = await waitRollout(baton.adminUrl, r.id)
    expect(done.status).toBe('aborted')
    expect(await versions(undefined, 20)).toEqual({ '200 v1': 20 })
    const result = await load.stop()
    expect(result.failed).toBe(0)
  }, 60_000)
})
