import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { makeCert, tempDir } from '../helpers/certs.js'
import { h2Close, h2Request, h2Session } from '../helpers/h2.js'
import { config, cpuMs, metric, rssMiB } from '../helpers/http.js'
import { startProc } from '../helpers/procs.js'

const FLOOD = fileURLToPath(new URL('../fixtures/h2-flood.mjs', import.meta.url))

// Hostile HTTP/2 clients (README "HTTP/2"): a flood of streams reset as soon
// as they are opened (the "rapid reset" shape, CVE-2023-44487), of SETTINGS
// and of PINGs, and oversized header lists, each on its own connection while
// a well-behaved client keeps sending on another. Each must end with the
// hostile connection closed (or its stream refused), the other client served
// without a failure, and baton's CPU and memory bounded.

/** A turn of the event loop, so that a loop of writes lets sockets and timers run. */
const tick = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))

interface Victim { ok: number, failed: number, maxMs: number, stop: () => Promise<void> }

describe('HTTP/2 floods', () => {
  let backend: Backend
  let baton: RunningBaton
  let port: number

  beforeAll(async () => {
    const dir = tempDir()
    makeCert(dir, { names: ['h2.test'], file: 'h2' })
    backend = await startBackend({ NAME: 'app' })
    baton = await startBaton(config({ web: { servers: [backend.address] } }, {
      listen: [{ port: 0, host: '127.0.0.1', tls: { certificates: [{ cert: 'h2.pem', key: 'h2.key' }] } }]
    }), { dir })
    port = baton.ports[0]
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await backend.kill()
  })

  /** A well-behaved client sending one request after another on its own session. */
  function victim (): Victim {
    const session = h2Session(port)
    const v: Victim = { ok: 0, failed: 0, maxMs: 0, stop: async () => undefined }
    let running = true
    const loop = (async () => {
      while (running) {
        if (session.closed || session.destroyed) { v.failed++; break }
        const t = performance.now()
        try {
          const r = await h2Request(session, { ':path': '/whoami' })
          if (r.status === 200) v.ok++
          else v.failed++
        } catch {
          v.failed++
        }
        v.maxMs = Math.max(v.maxMs, performance.now() - t)
        await tick()
      }
    })()
    v.stop = async () => { running = false; await loop; await h2Close(session) }
    return v
  }

  interface Attack { connections: number, frames: number, lastedMs: Array<number | null>, goaways: number, cpuMsPerS: number, rssGrowth: number, victim: Victim }

  /**
   * For `ms`, the flood fixture (its own process) opens one hostile
   * connection after another and floods each until baton closes it; a
   * victim sends meanwhile on its own session. Reports what baton spent.
   */
  async function underAttack (kind: 'reset' | 'settings' | 'ping', ms: number): Promise<Attack> {
    const v = victim()
    // The victim is up before the attack begins.
    while (v.ok < 5) await tick()
    // The proxy workers hold the connections (the supervisor only passes sockets on).
    const pids = baton.workerPids()
    const cpu = (): number => pids.reduce((n, pid) => n + cpuMs(pid), 0)
    const rss = (): number => pids.reduce((n, pid) => n + rssMiB(pid), 0)
    const cpu0 = cpu()
    const rss0 = rss()
    let rssPeak = rss0
    const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, rss()) }, 100)
    const started = performance.now()
    const flood = startProc(process.execPath, [FLOOD, String(port), kind, String(ms)])
    const line = await flood.waitLine(l => typeof l.connections === 'number', ms + 10_000)
    const elapsed = (performance.now() - started) / 1000
    clearInterval(sampler)
    const a: Attack = {
      connections: line.connections as number,
      frames: line.frames as number,
      lastedMs: line.lastedMs as Array<number | null>,
      goaways: line.goaways as number,
      cpuMsPerS: (cpu() - cpu0) / elapsed,
      rssGrowth: rssPeak - rss0,
      victim: v
    }
    await v.stop()
    const lasted = a.lastedMs.filter((x): x is number => x !== null)
    console.log(`${kind} flood: ${a.connections} hostile connections in ${elapsed.toFixed(1)} s (${a.frames} frames written), ` +
      `${a.connections - lasted.length} not closed by baton; closed within ${Math.min(...lasted)}-${Math.max(...lasted)} ms, ${a.goaways} with GOAWAY; ` +
      `baton CPU ${Math.round(a.cpuMsPerS)} ms/s, RSS +${a.rssGrowth.toFixed(1)} MiB; victim ${v.ok} ok, ${v.failed} failed, slowest ${Math.round(v.maxMs)} ms`)
    return a
  }

  it('a rapid-reset flood (HEADERS then RST_STREAM, over and over) gets each connection closed; the other client is served throughout', async () => {
    const a = await underAttack('reset', 4_000)
    expect(a.connections).toBeGreaterThan(1)
    expect(a.lastedMs.filter(x => x === null), 'connections baton did not close within 3 s').toEqual([])
    expect(a.victim.failed).toBe(0)
    expect(a.victim.ok).toBeGreaterThan(5)
    expect(a.rssGrowth).toBeLessThan(100)
    expect(await metric(baton.adminUrl, 'baton_client_errors_total', { code: 'h2_reset_flood' })).toBeGreaterThanOrEqual(a.connections - 1)
    // baton takes new clients.
    const s = h2Session(port)
    expect((await h2Request(s, { ':path': '/whoami' })).status).toBe(200)
    await h2Close(s)
  })

  it('a SETTINGS flood and a PING flood get each connection closed', async () => {
    for (const kind of ['settings', 'ping'] as const) {
      const a = await underAttack(kind, 2_000)
      expect(a.lastedMs.filter(x => x === null), `${kind}: connections baton did not close within 3 s`).toEqual([])
      expect(a.victim.failed).toBe(0)
    }
  })

  it('an oversized header list is refused on its stream; the session and others go on', async () => {
    const s = h2Session(port)
    // Over maxHeaderSize (16 KiB): Node answers 431 on that stream.
    expect((await h2Request(s, { ':path': '/whoami', 'x-big': 'x'.repeat(20_000) })).status).toBe(431)
    // More than 100 fields: baton answers 431, as for HTTP/1.1.
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`x-h${i}`, 'v']))
    const r = await h2Request(s, { ':path': '/whoami', ...many })
    expect(r.status).toBe(431)
    expect(r.text).toBe('baton: the request has more than 100 header fields\n')
    // The same session serves on.
    expect((await h2Request(s, { ':path': '/whoami' })).text).toBe('app')
    const other = h2Session(port)
    expect((await h2Request(other, { ':path': '/whoami' })).status).toBe(200)
    await h2Close(other)
    await h2Close(s)
  })
})
