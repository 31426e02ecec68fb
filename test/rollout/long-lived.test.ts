import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { recordEvents, type BatonEvent } from '../helpers/events.js'
import { startLoad } from '../helpers/load.js'
import { demoConfig, getPool, startRollout, waitRollout } from '../helpers/pool.js'
import { present } from '../helpers/views.js'

/**
 * SPEC §9: long-lived connections do not stretch a rollout. An old instance
 * with no HTTP request left and only WebSockets open keeps them until
 * drainTimeout (then 1001) but no longer holds its batch, up to
 * rollout.maxDraining such instances; every WebSocket still gets its full
 * drainTimeout and every request is answered.
 */

interface Socket { ws: WebSocket, closedAt?: number, code?: number }

async function openOne (url: string): Promise<Socket> {
  const s: Socket = { ws: new WebSocket(url.replace('http', 'ws') + '/ws') }
  s.ws.on('close', code => { s.closedAt = Date.now(); s.code = code })
  s.ws.on('error', () => undefined)
  await new Promise<void>((resolve, reject) => { s.ws.once('open', () => resolve()); s.ws.once('error', reject) })
  return s
}

/** Opens WebSockets one at a time until every instance of the pool holds at least one, as its `upgrades` count says (bounded). */
async function spreadWebSockets (url: string, adminUrl: string, size: number): Promise<Socket[]> {
  const sockets: Socket[] = []
  for (let k = 0; k < 40; k++) {
    sockets.push(await openOne(url))
    const pool = await getPool(adminUrl)
    if (sockets.length >= size && pool.instances.every(i => i.upgrades >= 1)) return sockets
  }
  throw new Error('could not get a WebSocket onto every instance')
}

const RUNNING = new Set(['starting', 'ready', 'serving', 'draining'])

/** The most instances running at once, replayed from the instance events. */
function maxRunning (initial: string[], events: BatonEvent[]): number {
  const state = new Map(initial.map(id => [id, 'serving']))
  let max = state.size
  for (const e of events) {
    if (e.type !== 'instance') continue
    state.set(e.data.instance, e.data.state)
    max = Math.max(max, [...state.values()].filter(s => RUNNING.has(s)).length)
  }
  return max
}

describe('WebSockets do not stretch a rollout', () => {
  let baton: RunningBaton | undefined
  afterEach(async () => { await baton?.kill('SIGKILL'); baton = undefined })

  for (const maxDraining of [undefined, 1]) {
    it(`rolls 4 instances holding WebSockets in about one drainTimeout, not four (maxDraining ${maxDraining ?? 'default: the size'})`, async () => {
      // Long enough that the batches (a few seconds each on a busy machine) all fit in one drainTimeout.
      const drainMs = 15_000
      baton = await startBaton(demoConfig({
        size: 4,
        rollout: { maxSurge: 1, minReady: '500ms', drainTimeout: `${drainMs}ms`, ...(maxDraining === undefined ? {} : { maxDraining }) }
      }))
      const sockets = await spreadWebSockets(baton.url, baton.adminUrl, 4)
      const old = (await getPool(baton.adminUrl)).instances.map(i => i.id)
      const rec = recordEvents(baton.adminUrl)
      await rec.ready
      const load = startLoad(baton.url, { keepAlive: 4, close: 1, slow: 2, slowMs: 1000 })
      await new Promise(resolve => setTimeout(resolve, 500))

      const r = await startRollout(baton.adminUrl, { version: 'v2' })
      const done = await waitRollout(baton.adminUrl, r.id, 120_000)
      const result = await load.stop()
      rec.close()
      for (const s of sockets) s.ws.close()
      const wall = Date.parse(present(done.finishedAt, 'finishedAt')) - Date.parse(done.startedAt)
      const drainStart = new Map(rec.events.filter(e => e.type === 'instance' && e.data.state === 'draining').map(e => [e.data.instance, e.at]))
      const peak = maxRunning(old, rec.events)
      console.log(`WebSockets (maxDraining ${String(maxDraining)}): ${sockets.length} sockets, rollout ${wall} ms (drainTimeout ${drainMs} ms), max running ${peak}, ${result.sent} requests, ${result.failed} failed`)

      expect(done.status, JSON.stringify(done.events)).toBe('succeeded')
      expect(result.failed).toBe(0)
      expect(result.samples).toEqual([])
      // Every WebSocket was closed cleanly, and not before its instance had drained for drainTimeout.
      for (const s of sockets) {
        expect(s.code).toBe(1001)
        const closedAt = present(s.closedAt, 'a close')
        expect(closedAt - Math.min(...drainStart.values())).toBeGreaterThanOrEqual(drainMs - 200)
      }
      const drains = [...drainStart.values()]
      const firstStop = Math.min(...rec.events.filter(e => e.type === 'instance' && old.includes(e.data.instance) && e.data.state === 'stopped').map(e => e.at))
      if (maxDraining === undefined) {
        // The old instances drained side by side: the last one began before the first one was gone
        // (one after the other, as before, takes 4 × drainTimeout).
        expect(drains).toHaveLength(4)
        expect(Math.max(...drains)).toBeLessThan(firstStop)
        expect(wall).toBeLessThan(2 * drainMs)
        expect(peak).toBeGreaterThan(4 + 1)
        expect(peak).toBeLessThanOrEqual(4 + 1 + 4)
      } else {
        // One old instance may drain beside the surge: never more running than size + maxSurge + 1.
        expect(peak).toBe(4 + 1 + 1)
        expect(wall).toBeLessThan(3.5 * drainMs)
      }
    }, 150_000)
  }
})
