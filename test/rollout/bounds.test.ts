import { afterEach, describe, expect, it } from 'vitest'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { recordEvents } from '../helpers/events.js'
import { startLoad } from '../helpers/load.js'
import { demoConfig, startRollout, waitRollout } from '../helpers/pool.js'
import { present } from '../helpers/views.js'
import type { BatonEvent } from '../helpers/events.js'

const RUNNING = new Set(['starting', 'ready', 'serving', 'draining'])

/** Replays instance events and checks the surge and unavailable bounds (README "What it guarantees") after every one of them. */
function checkBounds (initial: Map<string, string>, events: BatonEvent[], size: number, surge: number, unavailable: number): { maxRunning: number, minAvailable: number } {
  const state = new Map(initial)
  let maxRunning = 0
  let minAvailable = Infinity
  for (const e of events) {
    if (e.type !== 'instance') continue
    state.set(e.data.instance, e.data.state)
    const states = [...state.values()]
    const running = states.filter(s => RUNNING.has(s)).length
    const available = states.filter(s => s === 'serving').length
    maxRunning = Math.max(maxRunning, running)
    minAvailable = Math.min(minAvailable, available)
    expect(running, `after ${JSON.stringify(e.data)}`).toBeLessThanOrEqual(size + surge)
    expect(available, `after ${JSON.stringify(e.data)}`).toBeGreaterThanOrEqual(size - unavailable)
  }
  return { maxRunning, minAvailable }
}

describe('rollout bounds and pace', () => {
  let baton: RunningBaton | undefined
  afterEach(async () => { await baton?.kill('SIGKILL'); baton = undefined })

  for (const [surge, unavailable] of [[2, 1], [1, 0], [0, 1]]) {
    it(`maxSurge ${surge} / maxUnavailable ${unavailable}: the bounds hold at every state change`, async () => {
      baton = await startBaton(demoConfig({ size: 4, rollout: { maxSurge: surge, maxUnavailable: unavailable, minReady: '300ms' } }))
      const rec = recordEvents(baton.adminUrl)
      await rec.ready
      const load = startLoad(baton.url, { keepAlive: 4 })
      const r = await startRollout(baton.adminUrl, { version: 'v2' })
      expect((await waitRollout(baton.adminUrl, r.id)).status).toBe('succeeded')
      const result = await load.stop()
      rec.close()
      // The four v1 instances were serving before the stream opened.
      const v1 = new Set(rec.events.filter(e => e.type === 'instance' && e.data.version === 'v1').map(e => e.data.instance as string))
      const initial = new Map([...v1].map(id => [id, 'serving']))
      const { maxRunning, minAvailable } = checkBounds(initial, rec.events, 4, surge, unavailable)
      console.log(`surge ${surge}/unavailable ${unavailable}: ${rec.events.length} events, max running ${maxRunning}, min available ${minAvailable}, ${result.sent} requests, ${result.failed} failed`)
      expect(v1.size).toBe(4)
      expect(maxRunning).toBe(4 + surge)
      expect(result.failed).toBe(0)
    }, 90_000)
  }

  it('a rollout wastes no time: wall time within 10% of its batches\' own phases', async () => {
    const minReady = 1000
    baton = await startBaton(demoConfig({ size: 4, readyDelayMs: 300, rollout: { maxSurge: 1, maxUnavailable: 0, minReady: `${minReady}ms` } }))
    const rec = recordEvents(baton.adminUrl)
    await rec.ready
    const t0 = Date.now()
    const r = await startRollout(baton.adminUrl, { version: 'v2' })
    const done = await waitRollout(baton.adminUrl, r.id)
    const wall = Date.parse(present(done.finishedAt, 'finishedAt')) - Date.parse(done.startedAt)
    rec.close()
    expect(done.status).toBe('succeeded')
    // Ideal: for each batch, start→serving of the new instance + minReady + draining→stopped of the old one.
    const firstAt = (id: string, state: string): number | undefined => rec.events.find(e => e.type === 'instance' && e.data.instance === id && e.data.state === state)?.at
    const ids = (version: string): string[] => [...new Set(rec.events.filter(e => e.type === 'instance' && e.data.version === version).map(e => e.data.instance as string))]
    let ideal = 0
    for (const id of ids('v2')) ideal += firstAt(id, 'serving')! - firstAt(id, 'starting')! + minReady
    for (const id of ids('v1')) ideal += firstAt(id, 'stopped')! - firstAt(id, 'draining')!
    console.log(`wall ${wall} ms, ideal ${ideal} ms (ratio ${(wall / ideal).toFixed(3)}), measured from ${t0}`)
    expect(ids('v2')).toHaveLength(4)
    expect(wall).toBeLessThanOrEqual(ideal * 1.1)
  }, 90_000)
})
