import { afterEach, describe, expect, it } from 'vitest'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { recordEvents } from '../helpers/events.js'
import { send } from '../helpers/http.js'
import { startLoad } from '../helpers/load.js'
import { adminJson, demoConfig, getPool, startRollout, waitPool, waitRollout } from '../helpers/pool.js'
import { present } from '../helpers/views.js'

/**
 * SPEC §9 blue-green with real processes under load: a whole new set, ready
 * and reachable through previewRoute before the switch; no request to it
 * before the switch, none to the old set after it (but those already in
 * flight); the old set stopped after scaleDownDelay; a rollback within the
 * delay switches back at once. No request fails because of baton.
 */

interface Answer { version: string | undefined, status: number, sentAt: number, endedAt: number }

describe('blue-green', () => {
  let baton: RunningBaton | undefined
  afterEach(async () => { await baton?.kill('SIGKILL'); baton = undefined })

  it('switches every new request at once after the preview window, then stops the old set after scaleDownDelay', async () => {
    const delayMs = 3_000
    baton = await startBaton(demoConfig({
      size: 3,
      rollout: { strategy: 'blueGreen', minReady: '4s', drainTimeout: '5s', blueGreen: { previewRoute: { host: 'Preview.Test' }, scaleDownDelay: `${delayMs}ms` } }
    }))
    const answers: Answer[] = []
    const rec = recordEvents(baton.adminUrl)
    await rec.ready
    const load = startLoad(baton.url, { keepAlive: 6, close: 2, slow: 2, slowMs: 500, onAnswer: (version, status, sentAt, endedAt) => answers.push({ version, status, sentAt, endedAt }) })
    await new Promise(resolve => setTimeout(resolve, 500))
    const r = await startRollout(baton.adminUrl, { version: 'v2' })
    expect(r.strategy).toBe('blueGreen')

    // The new set serves (it soaks for minReady before the switch): the preview route reaches it, and only it.
    await waitPool(baton.adminUrl, p => p.instances.filter(i => i.version === 'v2' && i.state === 'serving').length === 3)
    const preview: string[] = []
    for (let k = 0; k < 20; k++) {
      const res = await send(baton.url + '/', { headers: { host: 'preview.test' } })
      preview.push(`${res.status} ${String(res.headers['x-app-version'])}`)
    }
    const before = (await adminJson(baton.adminUrl, `/v1/rollouts/${r.id}`)).body
    expect(before).toMatchObject({ step: 0, weight: 0 })
    expect(preview).toEqual(Array(20).fill('200 v2'))

    const done = await waitRollout(baton.adminUrl, r.id)
    const result = await load.stop()
    rec.close()
    // The switch takes from the controller's decision until every proxy worker applied the table.
    const switchingAt = Date.parse(present(done.events.find(e => e.message.startsWith('switching'))?.at, 'the switch decided'))
    const switchAt = Date.parse(present(done.events.find(e => e.message.startsWith('switched'))?.at, 'the switch applied'))
    const v1 = answers.filter(a => a.version === 'v1')
    const v2 = answers.filter(a => a.version === 'v2')
    const v1After = v1.filter(a => a.sentAt > switchAt).length
    const v2Before = v2.filter(a => a.endedAt < switchingAt).length
    const drains = rec.events.filter(e => e.type === 'instance' && e.data.version === 'v1' && e.data.state === 'draining').map(e => e.at)
    console.log(`blue-green: ${result.sent} requests, ${result.failed} failed; ${v1.length} v1 / ${v2.length} v2; v2 before the switch ${v2Before}, v1 sent after it ${v1After}; the switch took ${switchAt - switchingAt} ms to apply; old set drained ${Math.min(...drains) - switchAt} ms after the switch, rollout done ${Date.parse(present(done.finishedAt)) - switchAt} ms after it`)

    expect(done.status, JSON.stringify(done.events)).toBe('succeeded')
    expect(result.failed).toBe(0)
    expect(v1.length).toBeGreaterThan(100)
    expect(v2.length).toBeGreaterThan(100)
    // No request reached the new set before the switch began, none the old one after it was applied (in flight then excepted).
    expect(v2Before).toBe(0)
    expect(v1After).toBe(0)
    // The old set stayed ready for scaleDownDelay, then drained and stopped.
    expect(drains).toHaveLength(3)
    expect(Math.min(...drains) - switchAt).toBeGreaterThanOrEqual(delayMs - 50)
    expect(Date.parse(present(done.finishedAt)) - switchAt).toBeGreaterThanOrEqual(delayMs)
    const pool = await getPool(baton.adminUrl)
    expect(pool.instances.map(i => `${i.version} ${i.state}`)).toEqual(Array(3).fill('v2 serving'))
    // Once done, the preview route is gone: its host falls through to the config's routes.
    const after = await send(baton.url + '/', { headers: { host: 'preview.test' } })
    expect(after.status).toBe(200)
  }, 120_000)

  it('a rollback within scaleDownDelay switches back at once (202, not 409) and ends the rollout rolled_back', async () => {
    baton = await startBaton(demoConfig({ size: 2, rollout: { strategy: 'blueGreen', minReady: '500ms', drainTimeout: '5s', blueGreen: { scaleDownDelay: '30s' } } }))
    const answers: Answer[] = []
    const load = startLoad(baton.url, { keepAlive: 6, onAnswer: (version, status, sentAt, endedAt) => answers.push({ version, status, sentAt, endedAt }) })
    const r = await startRollout(baton.adminUrl, { version: 'v2' })
    await waitRolloutWhere(baton.adminUrl, r.id, x => x.step === 1)
    await new Promise(resolve => setTimeout(resolve, 500))
    const asked = Date.now()
    const back = await adminJson(baton.adminUrl, '/v1/pools/web/rollback', { method: 'POST' })
    const answered = Date.now()
    expect(back.status).toBe(202)
    expect(back.body).toMatchObject({ id: r.id, direction: 'back', weight: 0 })
    // A second one while it rolls back is refused: one rollout at a time.
    expect((await adminJson(baton.adminUrl, '/v1/pools/web/rollback', { method: 'POST' })).status).toBe(409)
    const done = await waitRollout(baton.adminUrl, r.id)
    const result = await load.stop()
    const v2After = answers.filter(a => a.version === 'v2' && a.sentAt > answered).length
    console.log(`blue-green rollback: ${result.sent} requests, ${result.failed} failed; ${answers.filter(a => a.version === 'v2' && a.sentAt > asked && a.sentAt <= answered).length} v2 answers sent during the rollback call, ${v2After} after it; rolled back ${Date.parse(present(done.finishedAt)) - asked} ms after the call`)

    expect(done.status).toBe('rolled_back')
    expect(done.error).toBeNull()
    expect(v2After).toBe(0)
    expect(answers.filter(a => a.version === 'v2').length).toBeGreaterThan(50)
    expect(result.failed).toBe(0)
    // It did not wait for scaleDownDelay (30 s): only for the new set's drain.
    expect(Date.parse(present(done.finishedAt)) - asked).toBeLessThan(10_000)
    const pool = await getPool(baton.adminUrl)
    expect(pool.instances.map(i => `${i.version} ${i.state}`)).toEqual(Array(2).fill('v1 serving'))
    expect(pool.version).toBe('v1')
  }, 90_000)
})

async function waitRolloutWhere (adminUrl: string, id: string, pred: (r: { step: number, status: string }) => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const r = (await adminJson(adminUrl, `/v1/rollouts/${id}`)).body
    if (pred(r)) return
    if (Date.now() > end) throw new Error(`rollout ${id} never got there: ${JSON.stringify(r.events.map(e => e.message))}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}
