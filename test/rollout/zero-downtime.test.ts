import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { startLoad } from '../helpers/load.js'
import { demoConfig, getPool, startRollout, waitRollout } from '../helpers/pool.js'

/**
 * G1: under continuous load of every kind, a rollout of 4 instances to v2 ends
 * with 0 failed requests and every long request complete, whether the app
 * shuts down gracefully or exits at once on SIGTERM.
 */

interface WsProbe { opened: number, echoed: number, closedAt: number | undefined, code: number | undefined, ws: WebSocket }

async function openWebSockets (url: string, n: number): Promise<WsProbe[]> {
  return await Promise.all(Array.from({ length: n }, async () => {
    const ws = new WebSocket(url.replace('http', 'ws') + '/ws')
    const probe: WsProbe = { opened: 0, echoed: 0, closedAt: undefined, code: undefined, ws }
    ws.on('message', (m) => { if (String(m) === 'ping') probe.echoed++ })
    ws.on('close', (code) => { probe.closedAt = Date.now(); probe.code = code })
    ws.on('error', () => undefined)
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
    probe.opened = Date.now()
    return probe
  }))
}

describe('a rollout under load loses nothing', () => {
  let baton: RunningBaton | undefined
  afterEach(async () => { await baton?.kill('SIGKILL'); baton = undefined })

  for (const exitOnTerm of [false, true]) {
    it(`rolls 4 instances to v2 with 0 failed requests (app ${exitOnTerm ? 'exits at once on SIGTERM' : 'shuts down gracefully'})`, async () => {
      const drainMs = 4000
      baton = await startBaton(demoConfig({
        size: 4,
        env: exitOnTerm ? { EXIT_ON_TERM: 'now' } : {},
        rollout: { minReady: '500ms', drainTimeout: `${drainMs}ms` }
      }))
      const sockets = await openWebSockets(baton.url, 4)
      const pinger = setInterval(() => { for (const p of sockets) if (p.closedAt === undefined) p.ws.send('ping') }, 100)
      const load = startLoad(baton.url, { keepAlive: 6, close: 3, posts: 3, postBytes: 16_384, slow: 4, slowMs: 2000, maxMs: 120_000 })
      await new Promise(resolve => setTimeout(resolve, 1000))

      const started = Date.now()
      const r = await startRollout(baton.adminUrl, { version: 'v2' })
      const done = await waitRollout(baton.adminUrl, r.id)
      // Keep the load on a little after the end: the new instances must serve it.
      await new Promise(resolve => setTimeout(resolve, 1000))
      const result = await load.stop()
      clearInterval(pinger)
      for (const p of sockets) p.ws.close()

      console.log(`rollout (exitOnTerm=${String(exitOnTerm)}): ${result.sent} requests sent, ${result.failed} failed, ${result.slowOk} slow ones complete, versions ${JSON.stringify(result.versions)}, took ${Date.now() - started} ms`)
      expect(done.status, JSON.stringify(done.events)).toBe('succeeded')
      expect(result.samples).toEqual([])
      expect(result.failed).toBe(0)
      expect(result.sent).toBeGreaterThan(500)
      expect(result.slowOk).toBeGreaterThan(4)
      expect(result.versions.v1).toBeGreaterThan(0)
      expect(result.versions.v2).toBeGreaterThan(0)

      const pool = await getPool(baton.adminUrl)
      expect(pool.version).toBe('v2')
      expect(pool.instances.filter((i) => i.state === 'serving' && i.version === 'v2')).toHaveLength(4)
      expect(pool.instances).toHaveLength(4)

      // G7: WebSockets were tunnelled and echoed, and were closed at drainTimeout, not at once.
      for (const p of sockets) {
        expect(p.echoed).toBeGreaterThan(5)
        expect(p.closedAt).toBeDefined()
        expect(p.closedAt! - started).toBeGreaterThanOrEqual(drainMs - 200)
        // ... with a clean 1001 (going away) between two frames, not a cut connection.
        expect(p.code).toBe(1001)
      }
    }, 120_000)
  }
})
